"""Subresources: pods/binding, pods/eviction, */scale, and the pod streams (log, exec,
port-forward) that the apiserver relays to the kubelet of the pod's node, so a client
needs only the apiserver's address, as with Kubernetes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.api.node.v1 import node_pb2
from capstan.apierrors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    UnavailableError,
    from_rpc_error,
)
from capstan.client import ClientTLS
from capstan.grpc_server import channel_options
from capstan.machinery.kinds import Kind
from capstan.machinery.labels import selector_from_map, selector_from_proto
from capstan.machinery.violations import FieldViolation

from apiserver import grpc_parse
from apiserver.objects import Stored
from apiserver.registry import Registry, now

Handler = tuple[str, Callable[..., Any]]
KUBELET_SERVICE = "capstan.node.v1.Kubelet"
NODE_STATS_SERVICE = "capstan.node.v1.NodeStats"


def _set_condition(pod: Any, ctype: str, status: str, reason: str = "") -> None:
    for c in pod.status.conditions:
        if c.type == ctype:
            if c.status != status:
                c.last_transition_time.CopyFrom(now())
            c.status = status
            c.reason = reason
            return
    c = pod.status.conditions.add(type=ctype, status=status, reason=reason)
    c.last_transition_time.CopyFrom(now())


class Subresources:
    def __init__(
        self, registries: dict[str, Registry], *, kubelet_tls: ClientTLS | None = None
    ) -> None:
        self.registries = registries
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._kubelet_credentials = kubelet_tls.credentials() if kubelet_tls else None

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()

    def handlers(self, kind: Kind, registry: Registry) -> dict[str, Handler]:
        out: dict[str, Handler] = {}
        if "Scale" in kind.subresources:
            out["GetScale"] = ("unary", self._get_scale(registry))
            out["UpdateScale"] = ("unary", self._update_scale(registry))
        if kind.kind == "Pod":
            out["Bind"] = ("unary", self._bind(registry))
            out["Evict"] = ("unary", self._evict(registry))
            out["Logs"] = ("server_stream", self._logs)
            out["Exec"] = ("stream_stream", self._exec)
            out["PortForward"] = ("stream_stream", self._port_forward)
        return out

    # ------------------------------------------------------------- binding
    def _bind(self, pods: Registry) -> Callable[[bytes, Any], Awaitable[bytes]]:
        async def bind(req: bytes, _: Any) -> bytes:
            b = grpc_parse.parse(core_pb2.Binding, req)
            target = b.target
            if target.kind not in ("", "Node") or not target.name:
                raise InvalidError.for_object(
                    "Binding",
                    b.metadata.name,
                    [FieldViolation("target", "must name a Node (kind Node, name required)")],
                )

            def assign(pod: Any) -> None:
                if pod.metadata.HasField("deletion_timestamp"):
                    raise ConflictError(
                        f'pod "{pod.metadata.name}" is being deleted, cannot be assigned to a host'
                    )
                if b.metadata.uid and b.metadata.uid != pod.metadata.uid:
                    raise ConflictError(
                        f"Precondition failed: UID in precondition: {b.metadata.uid}, "
                        f"UID in object meta: {pod.metadata.uid}"
                    )
                if pod.spec.node_name:
                    raise ConflictError(
                        f"pod {pod.metadata.name} is already assigned to node "
                        f'"{pod.spec.node_name}"'
                    )
                pod.spec.node_name = target.name
                for k, v in b.metadata.annotations.items():
                    pod.metadata.annotations[k] = v
                _set_condition(pod, "PodScheduled", "True")

            stored = await pods.guaranteed_update(
                b.metadata.namespace, b.metadata.name, assign, validate=False
            )
            return stored.data

        return bind

    def _evict(self, pods: Registry) -> Callable[[bytes, Any], Awaitable[bytes]]:
        async def evict(req: bytes, _: Any) -> bytes:
            e = grpc_parse.parse(core_pb2.Eviction, req)
            opts = e.delete_options
            d = meta_pb2.DeleteRequest(
                namespace=e.metadata.namespace,
                name=e.metadata.name,
                preconditions=opts.preconditions,
                propagation_policy=opts.propagation_policy,
            )
            if opts.HasField("grace_period_seconds"):
                d.grace_period_seconds = opts.grace_period_seconds
            return (await pods.delete(d)).data

        return evict

    # --------------------------------------------------------------- scale
    @staticmethod
    def _scale_of(kind: Kind, stored: Stored) -> autoscaling_pb2.Scale:
        obj = stored.obj
        scale = autoscaling_pb2.Scale()
        m = scale.metadata
        m.name, m.namespace = obj.metadata.name, obj.metadata.namespace
        m.uid, m.resource_version = obj.metadata.uid, obj.metadata.resource_version
        m.creation_timestamp.CopyFrom(obj.metadata.creation_timestamp)
        scale.spec.replicas = obj.spec.replicas
        scale.status.replicas = obj.status.replicas
        sel = obj.spec.selector
        selector = (
            selector_from_map(sel)
            if kind.kind == "ReplicationController"
            else (selector_from_proto(sel))
        )
        scale.status.selector = str(selector)
        return scale

    def _get_scale(self, reg: Registry) -> Callable[[bytes, Any], Awaitable[bytes]]:
        async def get_scale(req: bytes, _: Any) -> bytes:
            r = grpc_parse.parse(meta_pb2.GetRequest, req)
            stored = await reg.get(r.namespace, r.name)
            return self._scale_of(reg.kind, stored).SerializeToString()

        return get_scale

    def _update_scale(self, reg: Registry) -> Callable[[bytes, Any], Awaitable[bytes]]:
        async def update_scale(req: bytes, _: Any) -> bytes:
            s = grpc_parse.parse(autoscaling_pb2.Scale, req)
            if s.spec.replicas < 0:
                raise InvalidError.for_object(
                    "Scale",
                    s.metadata.name,
                    [FieldViolation("spec.replicas", "must be greater than or equal to 0")],
                )
            rv = s.metadata.resource_version
            expected = int(rv) if rv.isdigit() and rv != "0" else None
            if rv and expected is None:
                raise BadRequestError(f"invalid resourceVersion {rv!r}")

            def set_replicas(obj: Any) -> None:
                obj.spec.replicas = s.spec.replicas

            stored = await reg.guaranteed_update(
                s.metadata.namespace, s.metadata.name, set_replicas, expected_rv=expected
            )
            return self._scale_of(reg.kind, stored).SerializeToString()

        return update_scale

    # ---------------------------------------------------- kubelet streams
    async def _kubelet(self, namespace: str, name: str) -> grpc.aio.Channel:
        """The channel to the kubelet running pod namespace/name."""
        pod = (await self.registries["Pod"].get(namespace, name)).obj
        node_name = pod.spec.node_name
        if not node_name:
            raise ForbiddenError(f'pod "{name}" is not scheduled to a node yet')
        return await self._kubelet_of_node(node_name)

    async def _kubelet_of_node(self, node_name: str) -> grpc.aio.Channel:
        node = (await self.registries["Node"].get("", node_name)).obj
        port = node.status.daemon_endpoints.kubelet_endpoint.port
        by_type = {a.type: a.address for a in node.status.addresses}
        host = by_type.get("InternalIP") or by_type.get("Hostname") or ""
        if not port or not host:
            raise ForbiddenError(f'node "{node_name}" does not publish a kubelet endpoint')
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        channel = self._channels.get(target)
        if channel is None:
            if self._kubelet_credentials is not None:
                channel = grpc.aio.secure_channel(
                    target, self._kubelet_credentials, options=channel_options()
                )
            else:
                channel = grpc.aio.insecure_channel(target, options=channel_options())
            self._channels[target] = channel
        return channel

    async def _logs(self, req: bytes, context: Any) -> AsyncIterator[bytes]:
        opts = grpc_parse.parse(core_pb2.PodLogOptions, req)
        channel = await self._kubelet(opts.namespace or "default", opts.name)
        call: Any = cast(Any, channel.unary_stream(f"/{KUBELET_SERVICE}/Logs"))(req)
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as e:
            raise _relay_error(e) from None

    async def node_stats(self, req: bytes, context: Any) -> AsyncIterator[bytes]:
        """capstan.node.v1.NodeStats/Get: one node's Kubelet/Stats, relayed."""
        r = grpc_parse.parse(node_pb2.NodeStatsRequest, req)
        if not r.node_name:
            raise BadRequestError("node_name is required")
        channel = await self._kubelet_of_node(r.node_name)
        call: Any = cast(Any, channel.unary_stream(f"/{KUBELET_SERVICE}/Stats"))(
            r.request.SerializeToString()
        )
        try:
            async for sample in call:
                yield sample
        except grpc.aio.AioRpcError as e:
            raise _relay_error(e) from None

    async def _relay(
        self,
        method: str,
        first: bytes,
        requests: AsyncIterator[bytes],
        namespace: str,
        name: str,
    ) -> AsyncIterator[bytes]:
        channel = await self._kubelet(namespace or "default", name)
        call: Any = cast(Any, channel.stream_stream(f"/{KUBELET_SERVICE}/{method}"))()
        await call.write(first)

        async def pump() -> None:
            async for item in requests:
                await call.write(item)
            await call.done_writing()

        pumping = asyncio.create_task(pump())
        try:
            while True:
                item = await call.read()
                if item is grpc.aio.EOF:
                    return
                yield item
        except grpc.aio.AioRpcError as e:
            raise _relay_error(e) from None
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await pumping
            call.cancel()

    async def _exec(self, requests: AsyncIterator[bytes], _: Any) -> AsyncIterator[bytes]:
        first = await anext(requests, None)
        if first is None:
            raise BadRequestError("exec: the first message must carry options")
        req = grpc_parse.parse(core_pb2.ExecRequest, first)
        if req.WhichOneof("request") != "options":
            raise BadRequestError("exec: the first message must carry options")
        o = req.options
        async for item in self._relay("Exec", first, requests, o.namespace, o.name):
            yield item

    async def _port_forward(self, requests: AsyncIterator[bytes], _: Any) -> AsyncIterator[bytes]:
        first = await anext(requests, None)
        if first is None:
            raise BadRequestError("port-forward: the first message must carry options")
        req = grpc_parse.parse(core_pb2.PortForwardRequest, first)
        if req.WhichOneof("request") != "options":
            raise BadRequestError("port-forward: the first message must carry options")
        o = req.options
        if not 0 < o.port < 65536:
            raise BadRequestError(f"port-forward: invalid port {o.port}")
        async for item in self._relay("PortForward", first, requests, o.namespace, o.name):
            yield item


def _relay_error(e: grpc.aio.AioRpcError) -> Exception:
    if e.code() == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError(f"kubelet unavailable: {e.details()}")
    return from_rpc_error(e)

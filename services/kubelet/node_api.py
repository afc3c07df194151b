"""The node API (capstan.node.v1.Kubelet): container logs, exec, port-forward and resource
usage. The apiserver relays the pods' log/exec/portforward subresources here, so clients only
ever talk to the apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import structlog
from capstan.api.core.v1 import core_pb2
from capstan.api.node.v1 import node_pb2
from capstan.apierrors import (
    ApiError,
    BadRequestError,
    InternalError,
    NotFoundError,
    UnavailableError,
)
from google.protobuf.message import Message

from kubelet.runtime import (
    LABEL_CONTAINER_NAME,
    LABEL_NODE,
    LABEL_POD_UID,
    SANDBOX_NAME,
    ContainerInfo,
    ContainerRuntime,
    RuntimeError_,
)

log = structlog.get_logger(__name__)

SERVICE = "capstan.node.v1.Kubelet"
Context = grpc.aio.ServicerContext[Any, Any]


def _api_error(e: Exception) -> ApiError:
    if isinstance(e, ApiError):
        return e
    if isinstance(e, RuntimeError_):
        return UnavailableError(f"container runtime: {e}")
    log.exception("node API request failed", exc_info=e)
    return InternalError(f"internal error: {type(e).__name__}")


class NodeApi:
    def __init__(
        self,
        runtime: ContainerRuntime,
        node_name: str,
        find_pod: Callable[[str, str], core_pb2.Pod | None],
        pods: Callable[[], list[core_pb2.Pod]],
    ) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self.find_pod = find_pod
        self.pods = pods
        # (container id) -> (cpu nanoseconds, at): the previous sample, for a usage rate.
        self._cpu_seen: dict[str, tuple[int, float]] = {}

    # ------------------------------------------------------------------ plumbing
    def handler(self) -> grpc.GenericRpcHandler:
        def streaming(
            fn: Callable[[Any, Context], AsyncIterator[Message]],
        ) -> Callable[[Any, Context], AsyncIterator[bytes]]:
            """One body for server-streaming and bidi methods: fn gets the request (or the
            request iterator); every failure becomes its ApiError status."""

            async def handle(request: Any, context: Context) -> AsyncIterator[bytes]:
                err: ApiError | None = None
                try:
                    async for item in fn(request, context):
                        yield item.SerializeToString()
                except Exception as e:
                    err = _api_error(e)
                if err is not None:
                    await context.abort(
                        err.code, err.message, trailing_metadata=err.trailing_metadata()
                    )

            return handle

        def server_stream(
            fn: Callable[[Any, Context], AsyncIterator[Message]], req_type: type[Message]
        ) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_stream_rpc_method_handler(
                streaming(fn), request_deserializer=req_type.FromString
            )

        def bidi(
            fn: Callable[[AsyncIterator[Any], Context], AsyncIterator[Message]],
            req_type: type[Message],
        ) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.stream_stream_rpc_method_handler(
                streaming(fn), request_deserializer=req_type.FromString
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Logs": server_stream(self.logs, core_pb2.PodLogOptions),
                "Exec": bidi(self.exec, core_pb2.ExecRequest),
                "PortForward": bidi(self.port_forward, core_pb2.PortForwardRequest),
                "Stats": server_stream(self.stats, node_pb2.StatsRequest),
            },
        )

    def _pod(self, namespace: str, name: str) -> core_pb2.Pod:
        pod = self.find_pod(namespace or "default", name)
        if pod is None:
            raise NotFoundError(f'pod "{name}" not found on node "{self.node_name}"')
        return pod

    @staticmethod
    def _container_name(pod: core_pb2.Pod, name: str) -> str:
        names = [c.name for c in pod.spec.init_containers] + [c.name for c in pod.spec.containers]
        if not name:
            if len(pod.spec.containers) == 1:
                return pod.spec.containers[0].name
            raise BadRequestError(
                f"a container name must be specified for pod {pod.metadata.name}, "
                f"choose one of: [{' '.join(names)}]"
            )
        if name not in names:
            raise BadRequestError(f"container {name} is not valid for pod {pod.metadata.name}")
        return name

    async def _instances(self, pod: core_pb2.Pod, container: str) -> list[ContainerInfo]:
        found = await self.runtime.list(
            {
                LABEL_POD_UID: pod.metadata.uid,
                LABEL_NODE: self.node_name,
                LABEL_CONTAINER_NAME: container,
            }
        )
        found.sort(key=lambda c: (c.restart_count, c.created_at), reverse=True)
        return found

    async def _running(self, namespace: str, name: str, container: str) -> ContainerInfo:
        pod = self._pod(namespace, name)
        cname = self._container_name(pod, container)
        instances = await self._instances(pod, cname)
        if not instances or not instances[0].running:
            raise BadRequestError(f"container {cname} is not running")
        return instances[0]

    # ------------------------------------------------------------------ logs
    async def logs(
        self, opts: core_pb2.PodLogOptions, _: Context
    ) -> AsyncIterator[core_pb2.LogChunk]:
        pod = self._pod(opts.namespace, opts.name)
        cname = self._container_name(pod, opts.container)
        instances = await self._instances(pod, cname)
        index = 1 if opts.previous else 0
        if len(instances) <= index:
            what = "previous terminated container" if opts.previous else "container"
            raise BadRequestError(
                f'{what} "{cname}" in pod "{pod.metadata.name}" not found'
                if opts.previous
                else f'container "{cname}" in pod "{pod.metadata.name}" is waiting to start'
            )
        since = 0.0
        if opts.HasField("since_seconds"):
            since = time.time() - opts.since_seconds
        elif opts.HasField("since_time"):
            since = opts.since_time.ToNanoseconds() / 1e9
        tail = int(opts.tail_lines) if opts.HasField("tail_lines") else None
        limit = int(opts.limit_bytes) if opts.HasField("limit_bytes") else None
        sent = 0
        async for chunk in self.runtime.logs(
            instances[index].id,
            follow=opts.follow and not opts.previous,
            tail=tail,
            since=since,
            timestamps=opts.timestamps,
        ):
            if limit is not None:
                chunk = chunk[: max(0, limit - sent)]
            sent += len(chunk)
            if chunk:
                yield core_pb2.LogChunk(data=chunk)
            if limit is not None and sent >= limit:
                return

    # ------------------------------------------------------------------ exec
    async def exec(
        self, requests: AsyncIterator[core_pb2.ExecRequest], _: Context
    ) -> AsyncIterator[core_pb2.ExecResponse]:
        first = await anext(requests, None)
        if first is None or first.WhichOneof("request") != "options":
            raise BadRequestError("exec: the first message must carry options")
        o = first.options
        if not o.command:
            raise BadRequestError("exec: a command is required")
        info = await self._running(o.namespace, o.name, o.container)
        try:
            session = await self.runtime.exec(info.id, list(o.command), stdin=o.stdin, tty=o.tty)
        except RuntimeError_ as e:
            yield core_pb2.ExecResponse(result=core_pb2.ExecResult(exit_code=126, error=str(e)))
            return

        async def pump() -> None:
            async for req in requests:
                kind = req.WhichOneof("request")
                if kind == "stdin":
                    await session.write_stdin(req.stdin)
                elif kind == "resize":
                    await session.resize(req.resize.width, req.resize.height)
                elif kind == "close_stdin":
                    await session.close_stdin()
            if o.stdin:
                await session.close_stdin()

        pumping = asyncio.create_task(pump())
        try:
            async for stream, data in session.output():
                if stream == 2 and not o.tty:
                    yield core_pb2.ExecResponse(stderr=data)
                else:
                    yield core_pb2.ExecResponse(stdout=data)
            code = await session.exit_code()
            yield core_pb2.ExecResponse(result=core_pb2.ExecResult(exit_code=code))
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping
            await session.close()

    # ------------------------------------------------------------------ port-forward
    async def port_forward(
        self, requests: AsyncIterator[core_pb2.PortForwardRequest], _: Context
    ) -> AsyncIterator[core_pb2.PortForwardResponse]:
        first = await anext(requests, None)
        if first is None or first.WhichOneof("request") != "options":
            raise BadRequestError("port-forward: the first message must carry options")
        o = first.options
        if not 0 < o.port < 65536:
            raise BadRequestError(f"port-forward: invalid port {o.port}")
        pod = self._pod(o.namespace, o.name)
        if not self.runtime.network_reachable:
            raise BadRequestError("port-forward: this node's runtime has no pod network")
        sandboxes = await self._instances(pod, SANDBOX_NAME)
        if not sandboxes or not sandboxes[0].running or not sandboxes[0].ip:
            raise BadRequestError(f'pod "{pod.metadata.name}" has no running sandbox')
        # The pod's network namespace is reached through its IP from the node: the kubelet
        # runs in the node's namespace, where the pod bridge is.
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(sandboxes[0].ip, o.port), 5
            )
        except (OSError, TimeoutError) as e:
            yield core_pb2.PortForwardResponse(
                error=f"failed to connect to localhost:{o.port} inside the pod: {e}"
            )
            return

        async def upstream() -> None:
            async for req in requests:
                if req.WhichOneof("request") == "data":
                    writer.write(req.data)
                    await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        pumping = asyncio.create_task(upstream())
        try:
            while True:
                data = await reader.read(64 * 1024)
                if not data:
                    break
                yield core_pb2.PortForwardResponse(data=data)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(pumping), 0.1)
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping
            writer.close()

    # ------------------------------------------------------------------ stats
    async def _sample(self, namespace: str, name: str) -> node_pb2.StatsSample:
        sample = node_pb2.StatsSample()
        sample.time.FromNanoseconds(time.time_ns())
        total = node_pb2.ResourceUsage()
        for pod in self.pods():
            if namespace and pod.metadata.namespace != namespace:
                continue
            if name and pod.metadata.name != name:
                continue
            ps = sample.pods.add(
                namespace=pod.metadata.namespace, name=pod.metadata.name, uid=pod.metadata.uid
            )
            found = await self.runtime.list(
                {LABEL_POD_UID: pod.metadata.uid, LABEL_NODE: self.node_name}
            )
            for info in found:
                if not info.running or info.container_name == SANDBOX_NAME:
                    continue
                try:
                    usage = await self.runtime.stats(info.id)
                except RuntimeError_:
                    continue
                now = time.monotonic()
                prev = self._cpu_seen.get(info.id)
                self._cpu_seen[info.id] = (usage.cpu_total_nanos, now)
                rate = 0
                if prev is not None and now > prev[1]:
                    rate = int(max(0, usage.cpu_total_nanos - prev[0]) / (now - prev[1]))
                cs = ps.containers.add(name=info.container_name)
                cs.usage.cpu_usage_nano_cores = rate
                cs.usage.cpu_usage_core_nano_seconds = usage.cpu_total_nanos
                cs.usage.memory_usage_bytes = usage.memory_usage_bytes
                cs.usage.memory_working_set_bytes = usage.memory_working_set_bytes
                for field in (
                    "cpu_usage_nano_cores",
                    "cpu_usage_core_nano_seconds",
                    "memory_usage_bytes",
                    "memory_working_set_bytes",
                ):
                    value = getattr(cs.usage, field)
                    setattr(ps.usage, field, getattr(ps.usage, field) + value)
                    setattr(total, field, getattr(total, field) + value)
        sample.node.CopyFrom(total)
        return sample

    async def stats(
        self, req: node_pb2.StatsRequest, context: Context
    ) -> AsyncIterator[node_pb2.StatsSample]:
        if req.name and not req.namespace:
            raise BadRequestError("stats: name requires namespace")
        interval = req.interval.ToNanoseconds() / 1e9 if req.HasField("interval") else 0.0
        yield await self._sample(req.namespace, req.name)
        while interval > 0:
            await asyncio.sleep(interval)
            yield await self._sample(req.namespace, req.name)

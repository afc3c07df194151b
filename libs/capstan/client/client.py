"""The typed API client: one generic ResourceClient per row of the kind table.

Method paths, request and response types all come from the Kind row, so a new kind needs no
client code. The typed attributes on Client (client.pods, client.deployments, ...) only
give mypy the message type of each kind.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import grpc
from google.protobuf.message import Message

from capstan.api.apps.v1 import apps_pb2
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.coordination.v1 import coordination_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.api.storage.v1 import storage_pb2
from capstan.apierrors import ExpiredError, NotImplementedError_
from capstan.client.transport import ClientTLS, Retry, Transport
from capstan.machinery import kinds
from capstan.machinery.kinds import Kind

T = TypeVar("T", bound=Message)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[T]):
    type: str  # ADDED, MODIFIED, DELETED or BOOKMARK
    object: T


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class ResourceClient(Generic[T]):
    """create/get/list/update/update_status/delete/watch and subresources of one kind."""

    def __init__(self, transport: Transport, kind: Kind, default_timeout: float) -> None:
        self.kind = kind
        self._transport = transport
        self._timeout = default_timeout
        self._prefix = f"/{kind.service}/"
        self._parse = kind.message.FromString
        self._parse_list = kind.list_message.FromString
        self._parse_event = kind.event_message.FromString

    # ------------------------------------------------------------------ plumbing
    def _t(self, timeout: float | None) -> float:
        return self._timeout if timeout is None else timeout

    async def _call(
        self,
        method: str,
        request: Message,
        parse: Any,
        timeout: float | None,
        retry: Retry,
    ) -> Any:
        return await self._transport.unary(
            self._prefix + method,
            request,
            _serialize,
            parse,
            timeout=self._t(timeout),
            retry=retry,
        )

    def _require(self, subresource: str) -> None:
        if subresource not in self.kind.subresources:
            raise NotImplementedError_(
                f"{self.kind.resource} has no {subresource.lower()} subresource"
            )

    def _ns(self, namespace: str) -> str:
        return namespace if self.kind.namespaced else ""

    # ------------------------------------------------------------------ verbs
    async def create(self, obj: T, *, timeout: float | None = None) -> T:
        return cast(T, await self._call("Create", obj, self._parse, timeout, Retry.CONNECT))

    async def get(self, name: str, namespace: str = "", *, timeout: float | None = None) -> T:
        req = meta_pb2.GetRequest(namespace=self._ns(namespace), name=name)
        return cast(T, await self._call("Get", req, self._parse, timeout, Retry.IDEMPOTENT))

    async def list(
        self,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        timeout: float | None = None,
    ) -> Any:
        """The kind's XList message (items, metadata.resource_version/continue_token)."""
        opts = meta_pb2.ListOptions(
            namespace=self._ns(namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
        )
        return await self._call("List", opts, self._parse_list, timeout, Retry.IDEMPOTENT)

    async def list_all(
        self,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
    ) -> tuple[builtins.list[T], str]:
        """Every matching object and the list's resource version, page by page. If the
        snapshot behind the pages is compacted mid-way, starts over with one unpaged List
        (as Kubernetes' reflector does)."""
        items: builtins.list[T] = []
        token = ""
        while True:
            try:
                page = await self.list(
                    namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    limit=page_size,
                    continue_token=token,
                )
            except ExpiredError:
                if not token:
                    raise
                full = await self.list(
                    namespace, label_selector=label_selector, field_selector=field_selector
                )
                return list(full.items), str(full.metadata.resource_version)
            items.extend(page.items)
            token = page.metadata.continue_token
            if not token:
                return items, str(page.metadata.resource_version)

    async def update(self, obj: T, *, timeout: float | None = None) -> T:
        # Idempotent: the whole object is replaced, and with resource_version set a
        # repeat of an applied update fails with Conflict instead of applying twice.
        return cast(T, await self._call("Update", obj, self._parse, timeout, Retry.IDEMPOTENT))

    async def update_status(self, obj: T, *, timeout: float | None = None) -> T:
        if not self.kind.has_status:
            raise NotImplementedError_(f"{self.kind.resource} has no status subresource")
        return cast(
            T, await self._call("UpdateStatus", obj, self._parse, timeout, Retry.IDEMPOTENT)
        )

    async def delete(
        self,
        name: str,
        namespace: str = "",
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        preconditions_uid: str = "",
        preconditions_resource_version: str = "",
        timeout: float | None = None,
    ) -> T:
        req = meta_pb2.DeleteRequest(
            namespace=self._ns(namespace), name=name, propagation_policy=propagation_policy
        )
        if grace_period_seconds is not None:
            req.grace_period_seconds = grace_period_seconds
        if preconditions_uid or preconditions_resource_version:
            req.preconditions.uid = preconditions_uid
            req.preconditions.resource_version = preconditions_resource_version
        return cast(T, await self._call("Delete", req, self._parse, timeout, Retry.CONNECT))

    async def watch(
        self,
        namespace: str = "",
        *,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = False,
        send_initial_events: bool = False,
        timeout_seconds: int = 0,
    ) -> AsyncGenerator[WatchEvent[T], None]:
        """Events until the server ends the stream (timeout, shutdown) or it fails with a
        typed ApiError: ExpiredError means relist, others mean watch again from the last
        resource version seen. No client deadline: the server decides how long it lasts."""
        opts = meta_pb2.ListOptions(
            namespace=self._ns(namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            allow_watch_bookmarks=allow_bookmarks,
            send_initial_events=send_initial_events,
            timeout_seconds=timeout_seconds,
        )
        stream = self._transport.server_stream(
            self._prefix + "Watch",
            opts,
            _serialize,
            self._parse_event,
            timeout=None,
            # Re-opening from the same version (or with a fresh initial state) loses
            # nothing; re-opening a "from now" watch after it was established would skip
            # the events in between, so that is only done if it never connected.
            retry=Retry.IDEMPOTENT
            if send_initial_events or resource_version not in ("", "0")
            else Retry.CONNECT,
            open_timeout=self._timeout,
        )
        # aclosing: a consumer that stops early cancels the gRPC call at once, not when
        # the generator happens to be garbage-collected.
        async with contextlib.aclosing(stream):
            async for ev in stream:
                yield WatchEvent(ev.type, ev.object)

    # ------------------------------------------------------------------ subresources
    async def get_scale(self, name: str, namespace: str = "") -> autoscaling_pb2.Scale:
        self._require("Scale")
        req = meta_pb2.GetRequest(namespace=self._ns(namespace), name=name)
        return cast(
            autoscaling_pb2.Scale,
            await self._call(
                "GetScale", req, autoscaling_pb2.Scale.FromString, None, Retry.IDEMPOTENT
            ),
        )

    async def update_scale(self, scale: autoscaling_pb2.Scale) -> autoscaling_pb2.Scale:
        self._require("Scale")
        return cast(
            autoscaling_pb2.Scale,
            await self._call(
                "UpdateScale", scale, autoscaling_pb2.Scale.FromString, None, Retry.IDEMPOTENT
            ),
        )

    async def bind(self, binding: core_pb2.Binding) -> core_pb2.Pod:
        self._require("Bind")
        return cast(
            core_pb2.Pod,
            await self._call("Bind", binding, core_pb2.Pod.FromString, None, Retry.CONNECT),
        )

    async def evict(self, eviction: core_pb2.Eviction) -> core_pb2.Pod:
        self._require("Evict")
        return cast(
            core_pb2.Pod,
            await self._call("Evict", eviction, core_pb2.Pod.FromString, None, Retry.CONNECT),
        )

    async def logs(self, opts: core_pb2.PodLogOptions) -> AsyncGenerator[bytes, None]:
        self._require("Logs")
        stream = self._transport.server_stream(
            self._prefix + "Logs",
            opts,
            _serialize,
            core_pb2.LogChunk.FromString,
            timeout=None,
            open_timeout=self._timeout,
            # Re-reading a log from the start is harmless until the first chunk arrived.
            retry=Retry.IDEMPOTENT,
        )
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                yield chunk.data

    async def exec(
        self, requests: AsyncIterator[core_pb2.ExecRequest]
    ) -> AsyncGenerator[core_pb2.ExecResponse, None]:
        self._require("Exec")
        stream = self._transport.stream_stream(
            self._prefix + "Exec",
            requests,
            _serialize,
            core_pb2.ExecResponse.FromString,
            timeout=None,
        )
        async with contextlib.aclosing(stream):
            async for response in stream:
                yield response

    async def port_forward(
        self, requests: AsyncIterator[core_pb2.PortForwardRequest]
    ) -> AsyncGenerator[core_pb2.PortForwardResponse, None]:
        self._require("PortForward")
        stream = self._transport.stream_stream(
            self._prefix + "PortForward",
            requests,
            _serialize,
            core_pb2.PortForwardResponse.FromString,
            timeout=None,
        )
        async with contextlib.aclosing(stream):
            async for response in stream:
                yield response


class Client:
    """The API client for one cluster (a list of equal apiserver addresses)."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        tls: ClientTLS | None = None,
        default_timeout: float = 30.0,
        user_agent: str = "capstan",
    ) -> None:
        self._transport = Transport(servers, tls=tls, user_agent=user_agent)
        self.default_timeout = default_timeout
        self._resources: dict[str, ResourceClient[Any]] = {}

    @property
    def servers(self) -> list[str]:
        return self._transport.addresses

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel the next call would use, for stubs of services outside the table."""
        return self._transport.current_channel()

    def resource(self, kind: Kind | str) -> ResourceClient[Any]:
        """By Kind row, Kind name ("Pod") or what a user types (pods, po, deployments.apps)."""
        if isinstance(kind, str):
            row = kinds.lookup(kind)
            if row is None:
                try:
                    row = kinds.by_kind(kind)
                except KeyError:
                    raise KeyError(f"the server does not serve resource {kind!r}") from None
            kind = row
        rc = self._resources.get(kind.kind)
        if rc is None:
            rc = ResourceClient(self._transport, kind, self.default_timeout)
            self._resources[kind.kind] = rc
        return rc

    def _typed(self, kind: str, message: type[T]) -> ResourceClient[T]:
        rc = self.resource(kind)
        assert rc.kind.message is message, (rc.kind.message, message)
        return cast(ResourceClient[T], rc)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ typed shortcuts
    @property
    def namespaces(self) -> ResourceClient[core_pb2.Namespace]:
        return self._typed("Namespace", core_pb2.Namespace)

    @property
    def nodes(self) -> ResourceClient[core_pb2.Node]:
        return self._typed("Node", core_pb2.Node)

    @property
    def pods(self) -> ResourceClient[core_pb2.Pod]:
        return self._typed("Pod", core_pb2.Pod)

    @property
    def services(self) -> ResourceClient[core_pb2.Service]:
        return self._typed("Service", core_pb2.Service)

    @property
    def endpoints(self) -> ResourceClient[core_pb2.Endpoints]:
        return self._typed("Endpoints", core_pb2.Endpoints)

    @property
    def configmaps(self) -> ResourceClient[core_pb2.ConfigMap]:
        return self._typed("ConfigMap", core_pb2.ConfigMap)

    @property
    def secrets(self) -> ResourceClient[core_pb2.Secret]:
        return self._typed("Secret", core_pb2.Secret)

    @property
    def serviceaccounts(self) -> ResourceClient[core_pb2.ServiceAccount]:
        return self._typed("ServiceAccount", core_pb2.ServiceAccount)

    @property
    def events(self) -> ResourceClient[core_pb2.Event]:
        return self._typed("Event", core_pb2.Event)

    @property
    def persistentvolumes(self) -> ResourceClient[core_pb2.PersistentVolume]:
        return self._typed("PersistentVolume", core_pb2.PersistentVolume)

    @property
    def persistentvolumeclaims(self) -> ResourceClient[core_pb2.PersistentVolumeClaim]:
        return self._typed("PersistentVolumeClaim", core_pb2.PersistentVolumeClaim)

    @property
    def resourcequotas(self) -> ResourceClient[core_pb2.ResourceQuota]:
        return self._typed("ResourceQuota", core_pb2.ResourceQuota)

    @property
    def limitranges(self) -> ResourceClient[core_pb2.LimitRange]:
        return self._typed("LimitRange", core_pb2.LimitRange)

    @property
    def replicationcontrollers(self) -> ResourceClient[core_pb2.ReplicationController]:
        """Needs the ReplicationController row in the kind table (KeyError until then)."""
        return self._typed("ReplicationController", core_pb2.ReplicationController)

    @property
    def replicasets(self) -> ResourceClient[apps_pb2.ReplicaSet]:
        return self._typed("ReplicaSet", apps_pb2.ReplicaSet)

    @property
    def deployments(self) -> ResourceClient[apps_pb2.Deployment]:
        return self._typed("Deployment", apps_pb2.Deployment)

    @property
    def daemonsets(self) -> ResourceClient[apps_pb2.DaemonSet]:
        return self._typed("DaemonSet", apps_pb2.DaemonSet)

    @property
    def statefulsets(self) -> ResourceClient[apps_pb2.StatefulSet]:
        return self._typed("StatefulSet", apps_pb2.StatefulSet)

    @property
    def controllerrevisions(self) -> ResourceClient[apps_pb2.ControllerRevision]:
        return self._typed("ControllerRevision", apps_pb2.ControllerRevision)

    @property
    def jobs(self) -> ResourceClient[batch_pb2.Job]:
        return self._typed("Job", batch_pb2.Job)

    @property
    def cronjobs(self) -> ResourceClient[batch_pb2.CronJob]:
        return self._typed("CronJob", batch_pb2.CronJob)

    @property
    def horizontalpodautoscalers(
        self,
    ) -> ResourceClient[autoscaling_pb2.HorizontalPodAutoscaler]:
        return self._typed("HorizontalPodAutoscaler", autoscaling_pb2.HorizontalPodAutoscaler)

    @property
    def leases(self) -> ResourceClient[coordination_pb2.Lease]:
        return self._typed("Lease", coordination_pb2.Lease)

    @property
    def storageclasses(self) -> ResourceClient[storage_pb2.StorageClass]:
        return self._typed("StorageClass", storage_pb2.StorageClass)

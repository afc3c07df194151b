"""Clients, object builders and assertions for the apiserver API-semantics suite."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from capstan.api.apps.v1 import apps_pb2, apps_pb2_grpc
from capstan.api.batch.v1 import batch_pb2, batch_pb2_grpc
from capstan.api.core.v1 import core_pb2, core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import ApiError, from_rpc_error

from tests.support.apiserver import RunningApiserver

if TYPE_CHECKING:
    from capstan.api.apps.v1.apps_pb2_grpc import DeploymentsAsyncStub, ReplicaSetsAsyncStub
    from capstan.api.batch.v1.batch_pb2_grpc import JobsAsyncStub
    from capstan.api.core.v1.core_pb2_grpc import (
        ConfigMapsAsyncStub,
        EventsAsyncStub,
        NamespacesAsyncStub,
        NodesAsyncStub,
        PersistentVolumesAsyncStub,
        PodsAsyncStub,
        ServicesAsyncStub,
    )

# Every unary call in the suite gets a deadline, so a hung server fails a test, not the run.
RPC_TIMEOUT = 15.0
IMAGE = "busybox:1.36"


@dataclass
class Clients:
    """Typed stubs for the kinds the suite exercises, on one channel to one apiserver."""

    running: RunningApiserver
    namespaces: NamespacesAsyncStub
    nodes: NodesAsyncStub
    pods: PodsAsyncStub
    services: ServicesAsyncStub
    configmaps: ConfigMapsAsyncStub
    events: EventsAsyncStub
    pvs: PersistentVolumesAsyncStub
    replicasets: ReplicaSetsAsyncStub
    deployments: DeploymentsAsyncStub
    jobs: JobsAsyncStub

    @classmethod
    def connect(cls, running: RunningApiserver) -> Clients:
        ch = running.channel()
        return cls(
            running=running,
            namespaces=core_pb2_grpc.NamespacesStub(ch),
            nodes=core_pb2_grpc.NodesStub(ch),
            pods=core_pb2_grpc.PodsStub(ch),
            services=core_pb2_grpc.ServicesStub(ch),
            configmaps=core_pb2_grpc.ConfigMapsStub(ch),
            events=core_pb2_grpc.EventsStub(ch),
            pvs=core_pb2_grpc.PersistentVolumesStub(ch),
            replicasets=apps_pb2_grpc.ReplicaSetsStub(ch),
            deployments=apps_pb2_grpc.DeploymentsStub(ch),
            jobs=batch_pb2_grpc.JobsStub(ch),
        )

    async def create_namespace(self, name: str) -> core_pb2.Namespace:
        ns = core_pb2.Namespace()
        ns.metadata.name = name
        return await self.namespaces.Create(ns, timeout=RPC_TIMEOUT)

    async def bind(self, namespace: str, name: str, node: str) -> core_pb2.Pod:
        b = core_pb2.Binding()
        b.metadata.namespace, b.metadata.name = namespace, name
        b.target.kind, b.target.name = "Node", node
        return await self.pods.Bind(b, timeout=RPC_TIMEOUT)


# ------------------------------------------------------------------ builders
def meta(m: meta_pb2.ObjectMeta, namespace: str, name: str, labels: Mapping[str, str]) -> None:
    m.namespace = namespace
    m.name = name
    m.labels.update(labels)


def pod(
    namespace: str,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    image: str = IMAGE,
    grace: int | None = None,
) -> core_pb2.Pod:
    p = core_pb2.Pod()
    meta(p.metadata, namespace, name, labels or {})
    p.spec.containers.add(name="main", image=image)
    if grace is not None:
        p.spec.termination_grace_period_seconds = grace
    return p


def configmap(
    namespace: str,
    name: str,
    data: Mapping[str, str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> core_pb2.ConfigMap:
    cm = core_pb2.ConfigMap()
    meta(cm.metadata, namespace, name, labels or {})
    cm.data.update(data or {})
    return cm


def service(
    namespace: str,
    name: str,
    *,
    type_: str = "",
    cluster_ip: str = "",
    ports: tuple[int, ...] = (80,),
    node_ports: tuple[int, ...] = (),
    external_name: str = "",
) -> core_pb2.Service:
    s = core_pb2.Service()
    meta(s.metadata, namespace, name, {})
    s.spec.type = type_
    s.spec.cluster_ip = cluster_ip
    s.spec.external_name = external_name
    s.spec.selector["app"] = name
    for i, port in enumerate(ports):
        p = s.spec.ports.add(name=f"p{i}", port=port, protocol="TCP")
        p.target_port.number_value = port
        if i < len(node_ports):
            p.node_port = node_ports[i]
    return s


def _template(t: core_pb2.PodTemplateSpec, labels: Mapping[str, str], restart: str = "") -> None:
    t.metadata.labels.update(labels)
    t.spec.containers.add(name="main", image=IMAGE)
    if restart:
        t.spec.restart_policy = restart


def replicaset(namespace: str, name: str, replicas: int = 1) -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    meta(rs.metadata, namespace, name, {})
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = name
    _template(rs.spec.template, {"app": name})
    return rs


def deployment(namespace: str, name: str, replicas: int = 1) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    meta(d.metadata, namespace, name, {})
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    _template(d.spec.template, {"app": name})
    return d


def job(namespace: str, name: str) -> batch_pb2.Job:
    j = batch_pb2.Job()
    meta(j.metadata, namespace, name, {})
    _template(j.spec.template, {"app": name}, restart="Never")
    return j


def delete_request(
    namespace: str,
    name: str,
    *,
    grace: int | None = None,
    policy: str = "",
    uid: str = "",
    resource_version: str = "",
) -> meta_pb2.DeleteRequest:
    req = meta_pb2.DeleteRequest(namespace=namespace, name=name, propagation_policy=policy)
    if grace is not None:
        req.grace_period_seconds = grace
    req.preconditions.uid = uid
    req.preconditions.resource_version = resource_version
    return req


def get(namespace: str, name: str) -> meta_pb2.GetRequest:
    return meta_pb2.GetRequest(namespace=namespace, name=name)


# ---------------------------------------------------------------- assertions
async def fails(call: Awaitable[Any], code: grpc.StatusCode) -> ApiError:
    """Await call, assert it failed with code, and return the error the client rebuilds
    from the status details (message, violations, ErrorInfo metadata)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, f"{info.value.code()}: {info.value.details()}"
    return from_rpc_error(info.value)


def violation_fields(error: ApiError) -> list[str]:
    return [v.field for v in error.violations]


def has_violation(error: ApiError, field: str) -> bool:
    """A field violation on field itself or one of its elements or sub-fields."""
    return any(
        f == field or f.startswith((field + ".", field + "[")) for f in violation_fields(error)
    )


# --------------------------------------------------------------------- watch
class WatchStream:
    """A client watch read event by event, each read with a deadline."""

    def __init__(self, call: Any) -> None:
        self.call = call

    async def next(self, within: float = 10.0) -> Any:
        async with asyncio.timeout(within):
            event = await self.call.read()
        assert event is not grpc.aio.EOF, "watch ended"
        return event

    async def until(self, predicate: Any, within: float = 10.0) -> list[Any]:
        """Events up to and including the first one predicate accepts."""
        seen: list[Any] = []
        async with asyncio.timeout(within):
            while True:
                event = await self.call.read()
                assert event is not grpc.aio.EOF, f"watch ended after {seen}"
                seen.append(event)
                if predicate(event):
                    return seen

    async def status(self, within: float = 10.0) -> tuple[grpc.StatusCode, list[Any]]:
        """Read to the end; the final status and the events read on the way."""
        seen: list[Any] = []
        async with asyncio.timeout(within):
            try:
                while True:
                    event = await self.call.read()
                    if event is grpc.aio.EOF:
                        break
                    seen.append(event)
            except grpc.aio.AioRpcError as e:
                return e.code(), seen
        return await self.call.code(), seen


@contextlib.asynccontextmanager
async def watching(stub: Any, opts: meta_pb2.ListOptions) -> AsyncIterator[WatchStream]:
    call = stub.Watch(opts)
    try:
        yield WatchStream(call)
    finally:
        call.cancel()


def named(name: str, type_: str | None = None) -> Any:
    """A predicate for WatchStream.until: the event for object name (and type)."""

    def match(event: Any) -> bool:
        return bool(event.object.metadata.name == name and (type_ is None or event.type == type_))

    return match

"""Assembles the apiserver: store, watch caches, one registry per kind, admission, the
gRPC server, metrics, and the background duties (bookmarks, compaction, allocation repair).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from capstan import systemd
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import AlreadyExistsError, InvalidError, NotFoundError
from capstan.client import ClientTLS
from capstan.grpc_server import GrpcServer, TLSConfig
from capstan.machinery.kinds import KINDS
from capstan.metrics import MetricsServer
from capstan.store import Store, open_store
from capstan.store.sqlite import SqliteStore

from apiserver.admission_quota import admission_for
from apiserver.allocators import ServiceAllocation
from apiserver.grpc_api import kind_handler, server_stream
from apiserver.registry import Admission, Registry
from apiserver.strategy import strategy_for
from apiserver.subresources import NODE_STATS_SERVICE, Subresources
from apiserver.version import SERVICE as VERSION_SERVICE
from apiserver.version import version_handler
from apiserver.watch_cache import CacheSet

log = structlog.get_logger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: ["127.0.0.1:6443"])
    store: str = "sqlite:///var/lib/capstan/apiserver/state.db"
    service_cidr: str = "10.96.0.0/12"
    node_port_range: str = "30000-32767"
    tls: TLSConfig | None = None
    # TLS (and mTLS) for the relays to kubelets' node API; None dials them in plaintext.
    kubelet_tls: ClientTLS | None = None
    metrics_listen: str = "127.0.0.1:9090"
    bookmark_interval: float = 10.0
    # etcd only: compact history older than this (SQLite compacts itself).
    compaction_interval: float = 300.0
    repair_interval: float = 600.0
    shutdown_grace: float = 5.0
    # Events of history each kind's watch cache keeps for watches that resume from a
    # resource version (Kubernetes' --default-watch-cache-size).
    watch_cache_size: int = 20000
    # Undelivered events a watch may queue before it is cut off (RESOURCE_EXHAUSTED).
    watch_max_backlog: int = 10000


class ApiServer:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        kinds = list(KINDS)
        self.caches = CacheSet(
            store, kinds, window=config.watch_cache_size, max_backlog=config.watch_max_backlog
        )
        self.allocation = ServiceAllocation(store, config.service_cidr, config.node_port_range)
        self.registries: dict[str, Registry] = {}
        namespaces = Registry(KINDS[0], store, self.caches, strategy_for(KINDS[0]))
        assert namespaces.kind.kind == "Namespace"
        self.registries["Namespace"] = namespaces
        for kind in kinds[1:]:
            admission: list[Admission] = [self.allocation] if kind.kind == "Service" else []
            admission.extend(admission_for(kind, self.registries))
            self.registries[kind.kind] = Registry(
                kind,
                store,
                self.caches,
                strategy_for(kind),
                admission=admission,
                namespaces=namespaces,
            )
        self.subresources = Subresources(self.registries, kubelet_tls=config.kubelet_tls)
        handlers = [kind_handler(k, self.registries[k.kind], self.subresources) for k in kinds]
        handlers.append(version_handler(config.store))
        handlers.append(
            grpc.method_handlers_generic_handler(
                NODE_STATS_SERVICE,
                {"Get": server_stream(NODE_STATS_SERVICE, "Get", self.subresources.node_stats)},
            )
        )
        self.grpc = GrpcServer(
            config.listen,
            handlers,
            [*(k.service for k in kinds), VERSION_SERVICE, NODE_STATS_SERVICE],
            config.tls,
        )
        host, _, port = config.metrics_listen.rpartition(":")
        self.metrics = (
            MetricsServer(host or "127.0.0.1", int(port), ready=self.caches.ready.is_set)
            if config.metrics_listen
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, config: Config) -> ApiServer:
        return cls(config, await open_store(config.store))

    async def start(self) -> None:
        self.caches.start()
        await self.caches.wait_ready(timeout=60)
        await self.bootstrap()
        await self.grpc.start()
        await self.grpc.set_serving(True)
        if self.metrics is not None:
            await self.metrics.start()
        self._every(self.config.bookmark_interval, self._bookmarks)
        if not isinstance(self.store, SqliteStore):
            self._every(self.config.compaction_interval, self._compactor())
        self._every(self.config.repair_interval, self._repair)
        log.info("apiserver serving", listen=self.config.listen, store=self.config.store)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Refuse new calls first (health NOT_SERVING, then grpc's stop), so no watch can
        # register after the next step; then end every open watch cleanly (status OK,
        # as Kubernetes does) while grpc lets in-flight calls finish within the grace.
        await self.grpc.set_serving(False)
        stopping = asyncio.create_task(self.grpc.stop(self.config.shutdown_grace))
        await asyncio.sleep(0)
        await self.caches.stop()
        await stopping
        await self.subresources.close()
        if self.metrics is not None:
            await self.metrics.stop()
        await self.store.close()

    async def bootstrap(self) -> None:
        """The namespaces every cluster has, and the kubernetes Service in default."""
        for name in SYSTEM_NAMESPACES:
            ns = core_pb2.Namespace()
            ns.metadata.name = name
            await self._ensure(self.registries["Namespace"], ns)
        svc = core_pb2.Service()
        svc.metadata.name = "kubernetes"
        svc.metadata.namespace = "default"
        svc.metadata.labels.update({"component": "apiserver", "provider": "kubernetes"})
        svc.spec.cluster_ip = self.allocation.ips.range.item(0)
        port = svc.spec.ports.add(name="https", port=443, protocol="TCP")
        port.target_port.number_value = 6443
        await self._ensure(self.registries["Service"], svc)

    @staticmethod
    async def _ensure(registry: Registry, obj: Any) -> None:
        """Create obj unless it exists. Looked up first because admission runs before the
        store's create: on a restart, re-creating the kubernetes Service fails its cluster
        IP allocation (the existing Service holds the IP) with Invalid, not AlreadyExists."""
        meta = obj.metadata
        with contextlib.suppress(NotFoundError):
            await registry.get(meta.namespace, meta.name)
            return
        try:
            await registry.create(obj)
        except (AlreadyExistsError, InvalidError):
            # Another apiserver replica created it in between; anything else is real.
            await registry.get(meta.namespace, meta.name)

    def _every(self, seconds: float, fn: Callable[[], Awaitable[None]]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("periodic task failed", task=getattr(fn, "__name__", "?"))

        self._tasks.append(asyncio.create_task(loop()))

    async def _bookmarks(self) -> None:
        self.caches.send_bookmarks()

    def _compactor(self) -> Callable[[], Awaitable[None]]:
        """Compact etcd to the revision seen one interval ago, as Kubernetes does, so a
        client that fell behind by less than one interval can still resume its watch."""
        previous = 0

        async def compact() -> None:
            nonlocal previous
            current = await self.store.current_revision()
            if previous:
                await self.store.compact(previous)
            previous = current

        return compact

    async def _repair(self) -> None:
        released = await self.allocation.repair(self.registries["Service"].kind, self.store)
        if released:
            log.warning("released leaked service allocations", count=released)


async def run(config: Config, stop: asyncio.Event) -> None:
    server = await ApiServer.open(config)
    try:
        await server.start()
        async with systemd.lifecycle("serving"):
            await stop.wait()
    finally:
        await server.stop()

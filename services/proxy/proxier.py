"""The iptables half of the proxy: informer events mark services dirty, the SyncRunner
decides when to sync, a sync re-renders only the dirty services and writes only the chains
whose contents changed (restore.plan_sync).

Rendered rules are cached per service, so a one-service change at 10,000 services costs the
render of that service, a re-assembly of the jump tables and one small iptables-restore.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.client import Informer

from proxy import metrics
from proxy.iptables import Iptables
from proxy.model import ServicePort, service_ports
from proxy.restore import Plan, Written, parse_save, plan_sync
from proxy.rules import RuleConfig, ServiceRules, Tables, assemble, render_service
from proxy.runner import SyncRunner

log = structlog.get_logger(__name__)

# Below this many chains per transaction iptables-nft's restore stays linear (restore.py).
NFT_MAX_CHAINS = 2000


@dataclass
class SyncResult:
    seconds: float
    plan: Plan
    rules: int


def _key(obj: Any) -> str:
    return f"{obj.metadata.namespace}/{obj.metadata.name}"


class Proxier:
    def __init__(
        self,
        iptables: Iptables,
        services: Informer[core_pb2.Service],
        endpoints: Informer[core_pb2.Endpoints],
        config: RuleConfig,
        *,
        node: Informer[core_pb2.Node] | None = None,
        min_interval: float = 1.0,
        resync_period: float = 30.0,
        max_chains: int | None = None,
        on_resync: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.iptables = iptables
        # Also run at every resync (the daemon re-asserts the service CIDR sink route).
        self.on_resync = on_resync
        self.services = services
        self.endpoints = endpoints
        self.node = node
        self.base_config = config
        self.config = config
        self.max_chains = (
            max_chains
            if max_chains is not None
            else (NFT_MAX_CHAINS if iptables.backend == "nft" else 0)
        )
        self.runner = SyncRunner(self.sync, min_interval=min_interval, resync_period=resync_period)
        self._ports: dict[str, tuple[ServicePort, ...]] = {}
        self._rendered: dict[str, tuple[ServiceRules, ...]] = {}
        self._dirty: set[str] = set()
        self._written: Written | None = None
        self.last: SyncResult | None = None
        self.syncs = 0
        for informer in (services, endpoints):
            informer.add_event_handler(self.changed, self._on_update, self.changed)
        if node is not None:
            node.add_event_handler(self._on_node, lambda _old, new: self._on_node(new))

    # ------------------------------------------------------------------ events
    @property
    def written(self) -> Written | None:
        """What the last successful sync left in the kernel (None: unknown)."""
        return self._written

    def changed(self, obj: Any) -> None:
        """A Service or Endpoints object changed: re-render its service at the next sync."""
        self._dirty.add(_key(obj))
        self.runner.request()

    def _on_update(self, old: Any, new: Any) -> None:
        if old is new:  # informer resync: nothing changed
            return
        self.changed(new)

    def _on_node(self, node: core_pb2.Node) -> None:
        """The node's pod CIDR decides which cluster-IP traffic is local (no masquerade),
        unless --cluster-cidr/--masquerade-all already did."""
        if self.base_config.local_cidr or self.base_config.masquerade_all:
            return
        cidrs = [c for c in node.spec.pod_cidrs if ":" not in c] or [node.spec.pod_cidr]
        config = replace(self.base_config, local_cidr=cidrs[0] if cidrs[0] else "")
        if config != self.config:
            log.info("local traffic detection from node pod CIDR", cidr=config.local_cidr)
            self.config = config
            self._rendered.clear()
            self._ports.clear()
            self._dirty.update(_key(s) for s in self.services.list())
            self.runner.request()

    # ------------------------------------------------------------------ sync
    def tables(self) -> Tables:
        """Bring the per-service cache up to date and assemble the desired state."""
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            ns, _, name = key.partition("/")
            svc = self.services.get(name, ns)
            ports = tuple(service_ports(svc, self.endpoints.get(name, ns))) if svc else ()
            if not ports:
                self._ports.pop(key, None)
                self._rendered.pop(key, None)
            elif self._ports.get(key) != ports:
                self._ports[key] = ports
                self._rendered[key] = tuple(render_service(p, self.config) for p in ports)
        return assemble(
            (r for key in sorted(self._rendered) for r in self._rendered[key]), self.config
        )

    async def sync(self, resync: bool) -> None:
        start = time.perf_counter()
        try:
            tables = self.tables()
            saved = None
            if resync and self.on_resync is not None:
                await self.on_resync()
            if resync or self._written is None:
                saved = parse_save(await self.iptables.save())
            plan = plan_sync(tables, self._written, saved, self.max_chains)
            for text in plan.texts:
                await self.iptables.restore(text)
        except asyncio.CancelledError:
            self._written = None
            raise
        except Exception:
            self._written = None  # unknown kernel state: the next sync rewrites everything
            metrics.SYNC_FAILURES.inc()
            raise
        self._written = plan.written
        seconds = time.perf_counter() - start
        rules = {table: sum(len(r) for r in chains.values()) for table, chains in tables.items()}
        self.last = SyncResult(seconds, plan, sum(rules.values()))
        self.syncs += 1
        kind = "resync" if saved is not None else "partial"
        metrics.SYNC_DURATION.labels(kind).observe(seconds)
        metrics.RULES_WRITTEN.inc(plan.rules_written)
        metrics.CHAINS_REPAIRED.inc(plan.chains_repaired)
        metrics.LAST_SYNC.set(time.time())
        for table, count in rules.items():
            metrics.RULES.labels(table).set(count)
        if plan.chains_repaired or plan.hooks_inserted:
            log.warning(
                "repaired rules changed outside the proxy",
                chains=plan.chains_repaired,
                hooks=plan.hooks_inserted,
            )
        if not plan.empty:
            log.info(
                "synced",
                kind=kind,
                seconds=round(seconds, 4),
                chains_written=plan.chains_written,
                chains_deleted=plan.chains_deleted,
                rules_written=plan.rules_written,
                transactions=len(plan.texts),
            )

    def healthy(self, now: float | None = None) -> bool:
        """Ready once a sync succeeded, and while the latest one did and is recent (a
        resync runs every resync_period, so an older success means the loop is stuck)."""
        runner = self.runner
        if runner.failures or not runner.last_success:
            return False
        now = time.time() if now is None else now
        return now - runner.last_success <= 2 * runner.resync_period + 5

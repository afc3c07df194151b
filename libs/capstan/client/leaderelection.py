"""Leader election on a Lease object, with Kubernetes' semantics and defaults.

Candidates compare-and-swap the Lease (update with its resource_version): the holder
renews renew_time every retry_period; another candidate takes the lease only after it has
seen the record unchanged for lease_duration, measured on its own monotonic clock from
when it observed the record (wall clocks of different hosts are never compared).

Safety: the leader counts its own deadline from the moment it *sent* its last successful
renew, and stops acting when renew_deadline has passed without another success. Any other
candidate saw that renew after it was sent and waits lease_duration from then, so with
renew_deadline < lease_duration the old leader has stopped (and its work task has been
cancelled) before anyone else can acquire. Work that must not run twice checks
ctx.is_leading() right before acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from capstan.api.coordination.v1 import coordination_pb2
from capstan.apierrors import AlreadyExistsError, ApiError, ConflictError, NotFoundError
from capstan.client.client import ResourceClient

log = structlog.get_logger(__name__)

Lease = coordination_pb2.Lease


@dataclass(frozen=True)
class LeaderElectionConfig:
    name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # Give the lease up on a clean stop, so a standby takes over at once.
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election identity must not be empty")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")


class LeaderContext:
    """Handed to on_started_leading: `lost` is set (and the task cancelled) when
    leadership ends; is_leading() also answers False once the renew deadline passed,
    even before the elector's loop noticed."""

    def __init__(self, elector: LeaderElector | None) -> None:
        self._elector = elector
        self.lost = asyncio.Event()

    @classmethod
    def always(cls) -> LeaderContext:
        """For a single instance run without election: it leads for good."""
        return cls(None)

    def is_leading(self) -> bool:
        if self.lost.is_set():
            return False
        return self._elector is None or self._elector.within_deadline()


def _now() -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


class LeaderElector:
    def __init__(
        self,
        leases: ResourceClient[coordination_pb2.Lease],
        config: LeaderElectionConfig,
        *,
        on_started_leading: Callable[[LeaderContext], Coroutine[Any, Any, None]],
        on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
    ) -> None:
        self.leases = leases
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self._observed: Lease | None = None
        self._observed_at = 0.0
        self._renewed_at = float("-inf")
        self._leading = False
        self.leader = ""

    @property
    def is_leader(self) -> bool:
        return self._leading and self.within_deadline()

    def within_deadline(self) -> bool:
        return time.monotonic() < self._renewed_at + self.config.renew_deadline

    async def run(self) -> None:
        """Acquire (waiting as long as it takes), lead until the lease is lost or the
        work returns, then return. Callers that want to stand by again call run again;
        daemons usually exit, as Kubernetes' do."""
        await self._acquire()
        ctx = LeaderContext(self)
        work = asyncio.create_task(self.on_started_leading(ctx), name="leader-work")
        released = False
        try:
            await self._renew(work)
        except asyncio.CancelledError:
            if self.config.release_on_cancel:
                ctx.lost.set()
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                released = await self._release()
            raise
        finally:
            ctx.lost.set()
            self._leading = False
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            log.info("stopped leading", lease=self.config.name, released=released)
            if self.on_stopped_leading is not None:
                result = self.on_stopped_leading()
                if inspect.isawaitable(result):
                    await result

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                self._leading = True
                log.info("acquired lease", lease=self.config.name, identity=self.config.identity)
                return
            await asyncio.sleep(self.config.retry_period)

    async def _renew(self, work: asyncio.Task[None]) -> None:
        """Renew every retry_period; return when the deadline passes or work ends."""
        cfg = self.config
        while not work.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cfg.retry_period):
                    await asyncio.shield(work)
            if work.done():
                return
            while True:
                remaining = self._renewed_at + cfg.renew_deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("failed to renew lease in time", lease=cfg.name)
                    return
                ok = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        ok = await self._attempt()
                if ok:
                    break
                remaining = self._renewed_at + cfg.renew_deadline - time.monotonic()
                await asyncio.sleep(max(0.0, min(cfg.retry_period, remaining)))

    async def _attempt(self) -> bool:
        """One try to acquire or renew; True if we hold the lease now."""
        cfg = self.config
        started = time.monotonic()
        try:
            try:
                lease = await self.leases.get(cfg.name, cfg.namespace, timeout=cfg.retry_period)
            except NotFoundError:
                lease = Lease()
                lease.metadata.name = cfg.name
                lease.metadata.namespace = cfg.namespace
                self._fill(lease, taking_over=True)
                try:
                    created = await self.leases.create(lease, timeout=cfg.retry_period)
                except AlreadyExistsError:
                    return False
                self._held(created, started)
                return True
            self._observe(lease)
            holder = lease.spec.holder_identity
            duration = lease.spec.lease_duration_seconds or cfg.lease_duration
            if (
                holder
                and holder != cfg.identity
                and time.monotonic() < (self._observed_at + duration)
            ):
                return False
            self._fill(lease, taking_over=holder != cfg.identity)
            try:
                updated = await self.leases.update(lease, timeout=cfg.retry_period)
            except ConflictError:
                return False
            self._held(updated, started)
            return True
        except ApiError as e:
            log.warning("lease attempt failed", lease=cfg.name, code=e.code.name, error=e.message)
            return False

    def _fill(self, lease: Lease, *, taking_over: bool) -> None:
        now = _now()
        spec = lease.spec
        if taking_over:
            spec.acquire_time.CopyFrom(now)
            if spec.HasField("holder_identity") or spec.lease_transitions:
                spec.lease_transitions = spec.lease_transitions + 1
            else:
                spec.lease_transitions = 0
        spec.holder_identity = self.config.identity
        spec.lease_duration_seconds = max(1, round(self.config.lease_duration))
        spec.renew_time.CopyFrom(now)

    def _observe(self, lease: Lease) -> None:
        if (
            self._observed is None
            or self._observed.metadata.resource_version != lease.metadata.resource_version
        ):
            self._observed = lease
            self._observed_at = time.monotonic()
            holder = lease.spec.holder_identity
            if holder != self.leader:
                self.leader = holder
                if self.on_new_leader is not None and holder:
                    self.on_new_leader(holder)

    def _held(self, lease: Lease, started: float) -> None:
        self._renewed_at = started
        self._observe(lease)

    async def _release(self) -> bool:
        """Hand the lease back (holder cleared) if we still hold it."""
        cfg = self.config
        observed = self._observed
        if observed is None or observed.spec.holder_identity != cfg.identity:
            return False
        lease = Lease()
        lease.CopyFrom(observed)
        lease.spec.holder_identity = ""
        lease.spec.lease_duration_seconds = 1
        lease.spec.renew_time.CopyFrom(_now())
        try:
            await self.leases.update(lease, timeout=cfg.retry_period)
        except ApiError as e:
            log.warning("could not release lease", lease=cfg.name, error=e.message)
            return False
        return True

"""Cluster IP and node port allocation, kept in the store.

Each allocated item is a key (/registry/ranges/<range>/<item>) created only if absent,
so two apiservers can never hand out the same address, and a restart sees exactly what
was allocated. A repair pass releases items whose Service no longer holds them (left by a
crash between allocating and writing the Service).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import random
import time
from collections.abc import Iterable
from typing import Any

import structlog
from capstan.apierrors import ForbiddenError, InvalidError
from capstan.machinery.kinds import Kind
from capstan.machinery.violations import FieldViolation
from capstan.store import KeyExistsError, KeyNotFoundError, Store

from apiserver import objects
from apiserver.registry import Undo

log = structlog.get_logger(__name__)

RANGES_ROOT = "/registry/ranges/"
# Items younger than this are never repaired: their Service may still be on its way.
REPAIR_GRACE_SECONDS = 120


class RangeFullError(Exception):
    pass


class ItemTakenError(Exception):
    pass


class Range:
    """A contiguous set of allocatable values, addressed by index."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size

    def item(self, index: int) -> str:
        raise NotImplementedError

    def index(self, item: str) -> int | None:
        """The index of item, or None when it is outside the range."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class IPRange(Range):
    """Host addresses of a CIDR (network and broadcast addresses excluded)."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=True)
        size = self.network.num_addresses - (2 if self.network.version == 4 else 1)
        super().__init__("serviceips", max(size, 0))
        self.first = int(self.network.network_address) + 1

    def item(self, index: int) -> str:
        return str(ipaddress.ip_address(self.first + index))

    def index(self, item: str) -> int | None:
        try:
            addr = ipaddress.ip_address(item)
        except ValueError:
            return None
        i = int(addr) - self.first
        return i if addr.version == self.network.version and 0 <= i < self.size else None

    def describe(self) -> str:
        return f"The range of valid IPs is {self.network}"


class PortRange(Range):
    def __init__(self, spec: str) -> None:
        low, _, high = spec.partition("-")
        self.low, self.high = int(low), int(high or low)
        if not 0 < self.low <= self.high < 65536:
            raise ValueError(f"invalid port range {spec!r}")
        super().__init__("servicenodeports", self.high - self.low + 1)

    def item(self, index: int) -> str:
        return str(self.low + index)

    def index(self, item: str) -> int | None:
        try:
            port = int(item)
        except ValueError:
            return None
        return port - self.low if self.low <= port <= self.high else None

    def describe(self) -> str:
        return f"The range of valid ports is {self.low}-{self.high}"


class Allocator:
    def __init__(self, store: Store, rng: Range, *, reserved: Iterable[int] = ()) -> None:
        self.store = store
        self.range = rng
        self.prefix = f"{RANGES_ROOT}{rng.name}/"
        # Indexes never handed out at random (e.g. the kubernetes Service's address).
        self.reserved = set(reserved)

    def _key(self, item: str) -> str:
        return self.prefix + item

    @staticmethod
    def _record(owner: str) -> bytes:
        return json.dumps({"owner": owner, "time": int(time.time())}).encode()

    async def allocate_specific(self, item: str, owner: str) -> None:
        try:
            await self.store.create(self._key(item), self._record(owner))
        except KeyExistsError:
            raise ItemTakenError(item) from None

    async def allocate_next(self, owner: str) -> str:
        size = self.range.size
        if size <= 0:
            raise RangeFullError(self.range.name)
        for _ in range(32):
            i = random.randrange(size)
            if i in self.reserved:
                continue
            item = self.range.item(i)
            try:
                await self.allocate_specific(item, owner)
                return item
            except ItemTakenError:
                continue
        # Crowded: scan what is taken and pick from the rest.
        taken = {kv.key[len(self.prefix) :] for kv in (await self.store.range(self.prefix)).kvs}
        free = [
            i for i in range(size) if i not in self.reserved and self.range.item(i) not in taken
        ]
        random.shuffle(free)
        for i in free:
            try:
                item = self.range.item(i)
                await self.allocate_specific(item, owner)
                return item
            except ItemTakenError:
                continue
        raise RangeFullError(self.range.name)

    async def release(self, item: str) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self.store.delete(self._key(item))

    async def allocated(self) -> dict[str, tuple[str, int]]:
        """item -> (owner, allocation time)."""
        out: dict[str, tuple[str, int]] = {}
        for kv in (await self.store.range(self.prefix)).kvs:
            try:
                rec = json.loads(kv.value)
                out[kv.key[len(self.prefix) :]] = (str(rec["owner"]), int(rec["time"]))
            except (ValueError, KeyError, TypeError):
                out[kv.key[len(self.prefix) :]] = ("", 0)
        return out


def _owner(svc: Any) -> str:
    return f"{svc.metadata.namespace}/{svc.metadata.name}"


def _needs_cluster_ip(svc: Any) -> bool:
    return bool(svc.spec.type != "ExternalName" and svc.spec.cluster_ip != "None")


def _needs_node_ports(svc: Any) -> bool:
    return bool(svc.spec.type in ("NodePort", "LoadBalancer"))


class ServiceAllocation:
    """Admission for Services: assigns spec.clusterIP(s) and node ports."""

    # Allocating is a write: the registry checks the name is free before admitting.
    allocates = True

    def __init__(self, store: Store, service_cidr: str, node_port_range: str) -> None:
        self.ips = Allocator(store, IPRange(service_cidr), reserved=[0])
        self.ports = Allocator(store, PortRange(node_port_range))

    def _invalid(self, svc: Any, field: str, value: str, detail: str) -> InvalidError:
        return InvalidError.for_object(
            "Service",
            svc.metadata.name,
            [FieldViolation(field, f'Invalid value: "{value}": {detail}')],
        )

    async def _allocate_ip(self, svc: Any, undos: list[Undo]) -> None:
        ip = svc.spec.cluster_ip
        owner = _owner(svc)
        if ip:
            if self.ips.range.index(ip) is None:
                raise self._invalid(
                    svc,
                    "spec.clusterIPs",
                    ip,
                    f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid "
                    f"range. {self.ips.range.describe()}",
                )
            try:
                await self.ips.allocate_specific(ip, owner)
            except ItemTakenError:
                raise self._invalid(
                    svc,
                    "spec.clusterIPs",
                    ip,
                    f"failed to allocate IP {ip}: provided IP is already allocated",
                ) from None
        else:
            try:
                ip = await self.ips.allocate_next(owner)
            except RangeFullError:
                raise ForbiddenError("failed to allocate a serviceIP: range is full") from None
            svc.spec.cluster_ip = ip
        del svc.spec.cluster_ips[:]
        svc.spec.cluster_ips.append(ip)
        undos.append(functools.partial(self.ips.release, ip))

    async def _allocate_ports(self, svc: Any, keep: set[int], undos: list[Undo]) -> None:
        """Allocate every node port the Service needs that it does not hold already."""
        owner = _owner(svc)
        done: set[int] = set(keep)
        for i, port in enumerate(svc.spec.ports):
            if port.node_port:
                if port.node_port in done:
                    continue
                if self.ports.range.index(str(port.node_port)) is None:
                    raise self._invalid(
                        svc,
                        f"spec.ports[{i}].nodePort",
                        str(port.node_port),
                        f"provided port is not in the valid range. {self.ports.range.describe()}",
                    )
                try:
                    await self.ports.allocate_specific(str(port.node_port), owner)
                except ItemTakenError:
                    raise self._invalid(
                        svc,
                        f"spec.ports[{i}].nodePort",
                        str(port.node_port),
                        "provided port is already allocated",
                    ) from None
            else:
                try:
                    port.node_port = int(await self.ports.allocate_next(owner))
                except RangeFullError:
                    raise ForbiddenError("failed to allocate a nodePort: range is full") from None
            done.add(port.node_port)
            undos.append(functools.partial(self.ports.release, str(port.node_port)))

    async def admit_create(self, svc: Any) -> Undo | None:
        undos: list[Undo] = []
        try:
            if _needs_cluster_ip(svc):
                await self._allocate_ip(svc, undos)
            if _needs_node_ports(svc):
                await self._allocate_ports(svc, set(), undos)
        except BaseException:
            for undo in reversed(undos):
                await undo()
            raise
        return _combine(undos)

    async def admit_update(self, new: Any, old: Any) -> Undo | None:
        undos: list[Undo] = []
        # Kubernetes keeps allocated values a client left out of its update.
        if _needs_cluster_ip(new) and _needs_cluster_ip(old) and not new.spec.cluster_ip:
            new.spec.cluster_ip = old.spec.cluster_ip
            del new.spec.cluster_ips[:]
            new.spec.cluster_ips.extend(old.spec.cluster_ips)
        old_ports = {(p.port, p.protocol): p.node_port for p in old.spec.ports if p.node_port}
        held = set(old_ports.values()) if _needs_node_ports(old) else set()
        if _needs_node_ports(new):
            for p in new.spec.ports:
                if not p.node_port and (p.port, p.protocol) in old_ports and held:
                    p.node_port = old_ports[(p.port, p.protocol)]
        try:
            if _needs_cluster_ip(new) and not _needs_cluster_ip(old):
                await self._allocate_ip(new, undos)
            if _needs_node_ports(new):
                await self._allocate_ports(new, held, undos)
        except BaseException:
            for undo in reversed(undos):
                await undo()
            raise
        return _combine(undos)

    async def updated(self, new: Any, old: Any) -> None:
        """Release what the old Service held and the new one does not."""
        if (
            _needs_cluster_ip(old)
            and old.spec.cluster_ip
            and (not _needs_cluster_ip(new) or new.spec.cluster_ip != old.spec.cluster_ip)
        ):
            await self.ips.release(old.spec.cluster_ip)
        new_ports = {p.node_port for p in new.spec.ports} if _needs_node_ports(new) else set()
        if _needs_node_ports(old):
            for p in old.spec.ports:
                if p.node_port and p.node_port not in new_ports:
                    await self.ports.release(str(p.node_port))

    async def released(self, svc: Any) -> None:
        if _needs_cluster_ip(svc) and svc.spec.cluster_ip:
            await self.ips.release(svc.spec.cluster_ip)
        if _needs_node_ports(svc):
            for p in svc.spec.ports:
                if p.node_port:
                    await self.ports.release(str(p.node_port))

    async def repair(self, service_kind: Kind, store: Store) -> int:
        """Release allocations no Service holds; returns how many were released."""
        held_ips: set[str] = set()
        held_ports: set[str] = set()
        for kv in (await store.range(objects.kind_prefix(service_kind))).kvs:
            svc = service_kind.message.FromString(kv.value)
            held_ips.update(svc.spec.cluster_ips)  # type: ignore[attr-defined]
            if svc.spec.cluster_ip:  # type: ignore[attr-defined]
                held_ips.add(svc.spec.cluster_ip)  # type: ignore[attr-defined]
            held_ports.update(str(p.node_port) for p in svc.spec.ports if p.node_port)  # type: ignore[attr-defined]
        released = 0
        cutoff = time.time() - REPAIR_GRACE_SECONDS
        for allocator, held in ((self.ips, held_ips), (self.ports, held_ports)):
            for item, (owner, when) in (await allocator.allocated()).items():
                if item not in held and when < cutoff:
                    log.warning("releasing leaked allocation", item=item, owner=owner)
                    await allocator.release(item)
                    released += 1
        return released


def _combine(undos: list[Undo]) -> Undo | None:
    if not undos:
        return None

    async def undo_all() -> None:
        for undo in reversed(undos):
            await undo()

    return undo_all

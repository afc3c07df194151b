"""The kubelet's Node: registration, the Lease heartbeat in kube-node-lease (every 10 s, what
the node lifecycle controller watches), and node status (capacity, conditions, addresses, node
info) written when it changes or once a minute."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from capstan.api.coordination.v1 import coordination_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import AlreadyExistsError, ApiError, ConflictError, NotFoundError
from capstan.client import Client
from capstan.machinery.quantity import format_bytes
from google.protobuf.timestamp_pb2 import Timestamp

log = structlog.get_logger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.30.0-capstan"
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}
# Eviction thresholds of the Kubernetes defaults: memory.available<100Mi, nodefs.available<10%.
MEMORY_PRESSURE_BYTES = 100 * 1024 * 1024
DISK_PRESSURE_FRACTION = 0.10


@dataclass
class HostReadings:
    cpus: int
    memory_bytes: int
    memory_available_bytes: int
    disk_total_bytes: int
    disk_free_bytes: int
    kernel_version: str = ""
    os_image: str = ""
    boot_id: str = ""
    machine_id: str = ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def read_host(root_dir: Path) -> HostReadings:
    meminfo: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            meminfo[key] = int(parts[0]) * 1024
    disk = shutil.disk_usage(root_dir if root_dir.exists() else "/")
    os_image = ""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.partition("=")[2].strip('"')
    return HostReadings(
        cpus=os.cpu_count() or 1,
        memory_bytes=meminfo.get("MemTotal", 0),
        memory_available_bytes=meminfo.get("MemAvailable", meminfo.get("MemFree", 0)),
        disk_total_bytes=disk.total,
        disk_free_bytes=disk.free,
        kernel_version=platform.release(),
        os_image=os_image,
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        machine_id=_read("/etc/machine-id"),
    )


@dataclass
class NodeConfig:
    name: str
    ip: str
    port: int
    labels: dict[str, str] = field(default_factory=dict)
    max_pods: int = 110
    pod_cidr: str = ""
    lease_seconds: float = 10.0
    status_check_seconds: float = 10.0
    status_report_seconds: float = 60.0
    lease_duration_seconds: int = 40


def _ts(seconds: float | None = None) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return ts


def node_labels(config: NodeConfig) -> dict[str, str]:
    arch = ARCHES.get(platform.machine(), platform.machine())
    labels = {
        "kubernetes.io/hostname": config.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }
    labels.update(config.labels)
    return labels


def desired_status(
    config: NodeConfig,
    host: HostReadings,
    runtime_version: str,
    runtime_ok: bool,
    old: core_pb2.NodeStatus,
) -> core_pb2.NodeStatus:
    """The node's status now; heartbeat times are set by the caller (they always change)."""
    s = core_pb2.NodeStatus()
    cap = {
        "cpu": str(host.cpus),
        "memory": format_bytes(host.memory_bytes),
        "pods": str(config.max_pods),
        "ephemeral-storage": format_bytes(host.disk_total_bytes),
    }
    s.capacity.update(cap)
    s.allocatable.update(cap)
    s.addresses.add(type="InternalIP", address=config.ip)
    s.addresses.add(type="Hostname", address=config.name)
    s.daemon_endpoints.kubelet_endpoint.port = config.port
    info = s.node_info
    info.machine_id, info.system_uuid = host.machine_id, host.machine_id
    info.boot_id, info.kernel_version, info.os_image = (
        host.boot_id,
        host.kernel_version,
        host.os_image,
    )
    info.container_runtime_version = runtime_version
    info.kubelet_version = info.kube_proxy_version = KUBELET_VERSION
    info.operating_system = "linux"
    info.architecture = ARCHES.get(platform.machine(), platform.machine())
    mem_pressure = 0 < host.memory_available_bytes < MEMORY_PRESSURE_BYTES
    disk_pressure = (
        host.disk_total_bytes > 0
        and host.disk_free_bytes < DISK_PRESSURE_FRACTION * host.disk_total_bytes
    )
    wanted = [
        (
            "MemoryPressure",
            mem_pressure,
            "KubeletHasInsufficientMemory" if mem_pressure else "KubeletHasSufficientMemory",
        ),
        (
            "DiskPressure",
            disk_pressure,
            "KubeletHasDiskPressure" if disk_pressure else "KubeletHasNoDiskPressure",
        ),
        ("PIDPressure", False, "KubeletHasSufficientPID"),
        ("Ready", runtime_ok, "KubeletReady" if runtime_ok else "KubeletNotReady"),
    ]
    for ctype, value, reason in wanted:
        c = s.conditions.add(type=ctype, status="True" if value else "False", reason=reason)
        c.message = {
            "Ready": "kubelet is posting ready status"
            if runtime_ok
            else "container runtime is down",
        }.get(ctype, f"kubelet reports {ctype}={value}")
        prev = next((p for p in old.conditions if p.type == ctype), None)
        if prev is not None and prev.status == c.status and prev.HasField("last_transition_time"):
            c.last_transition_time.CopyFrom(prev.last_transition_time)
        else:
            c.last_transition_time.CopyFrom(_ts())
    s.images.extend(old.images)
    return s


def _without_heartbeats(status: core_pb2.NodeStatus) -> core_pb2.NodeStatus:
    out = core_pb2.NodeStatus()
    out.CopyFrom(status)
    for c in out.conditions:
        c.ClearField("last_heartbeat_time")
    return out


class NodeAgent:
    def __init__(
        self,
        client: Client,
        config: NodeConfig,
        runtime_version: Callable[[], Awaitable[str]],
        host: Callable[[], HostReadings],
    ) -> None:
        self.client = client
        self.config = config
        self.runtime_version = runtime_version
        self.host = host
        self.uid = ""
        self._last_report = 0.0
        self._last_status: core_pb2.NodeStatus | None = None
        self.status_writes = 0
        self.lease_renewals = 0

    async def register(self) -> core_pb2.Node:
        c = self.config
        node = core_pb2.Node()
        node.metadata.name = c.name
        node.metadata.labels.update(node_labels(c))
        if c.pod_cidr:
            node.spec.pod_cidr = c.pod_cidr
            node.spec.pod_cidrs.append(c.pod_cidr)
        try:
            created = await self.client.nodes.create(node)
        except AlreadyExistsError:
            existing = await self.client.nodes.get(c.name)
            if any(existing.metadata.labels.get(k) != v for k, v in node.metadata.labels.items()):
                existing.metadata.labels.update(node.metadata.labels)
                existing = await self.client.nodes.update(existing)
            created = existing
        self.uid = created.metadata.uid
        await self.update_status(force=True)
        await self.renew_lease()
        log.info("node registered", node=c.name)
        return created

    async def renew_lease(self) -> None:
        c = self.config
        leases = self.client.leases
        try:
            lease = await leases.get(c.name, LEASE_NAMESPACE)
        except NotFoundError:
            lease = coordination_pb2.Lease()
            lease.metadata.name, lease.metadata.namespace = c.name, LEASE_NAMESPACE
            if self.uid:
                lease.metadata.owner_references.append(
                    meta_pb2.OwnerReference(
                        api_version="v1", kind="Node", name=c.name, uid=self.uid
                    )
                )
            lease.spec.holder_identity = c.name
            lease.spec.lease_duration_seconds = c.lease_duration_seconds
            lease.spec.renew_time.CopyFrom(_ts())
            try:
                await leases.create(lease)
                self.lease_renewals += 1
            except AlreadyExistsError:
                pass
            return
        lease.spec.holder_identity = c.name
        lease.spec.lease_duration_seconds = c.lease_duration_seconds
        lease.spec.renew_time.CopyFrom(_ts())
        try:
            await leases.update(lease)
            self.lease_renewals += 1
        except ConflictError:
            pass

    async def update_status(self, *, force: bool = False) -> bool:
        """Write the status if it changed, or when a report is due; True if written."""
        try:
            version = await self.runtime_version()
            ok = True
        except Exception as e:  # any runtime failure makes the node NotReady
            version, ok = "unknown", False
            log.warning("container runtime check failed", error=str(e))
        for _ in range(3):
            node = await self.client.nodes.get(self.config.name)
            status = desired_status(self.config, self.host(), version, ok, node.status)
            due = time.monotonic() - self._last_report >= self.config.status_report_seconds
            if (
                not force
                and not due
                and _without_heartbeats(node.status) == _without_heartbeats(status)
            ):
                return False
            now = _ts()
            for cond in status.conditions:
                cond.last_heartbeat_time.CopyFrom(now)
            node.status.CopyFrom(status)
            try:
                await self.client.nodes.update_status(node)
            except ConflictError:
                continue
            self._last_report = time.monotonic()
            self.status_writes += 1
            return True
        return False

    async def run(self, stop: asyncio.Event) -> None:
        async def every(seconds: float, fn: Callable[[], Awaitable[object]]) -> None:
            while not stop.is_set():
                try:
                    async with asyncio.timeout(seconds):
                        await stop.wait()
                    return
                except TimeoutError:
                    pass
                try:
                    await fn()
                except NotFoundError:
                    log.warning("node object is gone; registering again", node=self.config.name)
                    await self.register()
                except ApiError as e:
                    log.warning("node heartbeat failed", error=e.message)

        await asyncio.gather(
            every(self.config.lease_seconds, self.renew_lease),
            every(self.config.status_check_seconds, self.update_status),
        )

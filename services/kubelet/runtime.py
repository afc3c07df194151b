"""The container runtime seen by the kubelet: a narrow protocol with a real implementation on
the Docker Engine API (docker_runtime) and an in-memory one (hollow_runtime) that lets one
process act as many nodes for control-plane scale tests. Everything above this protocol (pod
workers, status, probes, the node API) is the same code for both."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

# Labels on every container the kubelet creates: a restarted kubelet rebuilds its view of the
# node from them alone (adoption), and removes containers of pods that no longer exist.
LABEL_MANAGED = "io.capstan.kubelet.managed"
LABEL_NODE = "io.capstan.node.name"
LABEL_POD_UID = "io.capstan.pod.uid"
LABEL_POD_NAME = "io.capstan.pod.name"
LABEL_POD_NAMESPACE = "io.capstan.pod.namespace"
LABEL_CONTAINER_NAME = "io.capstan.container.name"
LABEL_RESTART_COUNT = "io.capstan.container.restart-count"
LABEL_INIT = "io.capstan.container.init"
# The sandbox container's name label (Kubernetes calls its infra container "POD" too).
SANDBOX_NAME = "POD"


class RuntimeError_(Exception):
    """A runtime operation failed (the message is the runtime's)."""


class ImageNotFound(RuntimeError_):
    pass


@dataclass
class ContainerConfig:
    """What to create. Paths in binds are host paths (the kubelet prepares them)."""

    name: str
    image: str
    labels: dict[str, str]
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    hostname: str = ""
    # "" is the runtime's default network (the sandbox); "container:<id>" joins a sandbox.
    network_mode: str = ""
    # host_path:container_path[:ro]
    binds: list[str] = field(default_factory=list)
    memory_limit: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpu_shares: int = 0
    tty: bool = False
    open_stdin: bool = False


@dataclass
class ContainerInfo:
    id: str
    name: str
    labels: dict[str, str]
    image: str
    image_id: str = ""
    # created, running, exited (paused/dead count as exited)
    state: str = "created"
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    # Unix seconds; 0 when not yet started / not finished.
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    # The sandbox's address on the pod network ("" for containers joined to a sandbox).
    ip: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def exited(self) -> bool:
        return self.state == "exited"

    @property
    def container_name(self) -> str:
        return self.labels.get(LABEL_CONTAINER_NAME, "")

    @property
    def pod_uid(self) -> str:
        return self.labels.get(LABEL_POD_UID, "")

    @property
    def restart_count(self) -> int:
        try:
            return int(self.labels.get(LABEL_RESTART_COUNT, "0"))
        except ValueError:
            return 0


@dataclass
class Usage:
    """Cumulative CPU time and current memory of one container."""

    cpu_total_nanos: int = 0
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0


class ExecSession(Protocol):
    """A running exec: output chunks as (stream, bytes) with stream 1 stdout / 2 stderr."""

    def output(self) -> AsyncIterator[tuple[int, bytes]]: ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def exit_code(self) -> int: ...

    async def close(self) -> None: ...


class ContainerRuntime(Protocol):
    # True when pod IPs are reachable from this process (probes, port-forward); a hollow
    # runtime has no network at all, so nothing may ever connect to its made-up addresses.
    network_reachable: bool

    async def version(self) -> str:
        """<runtime>://<version>, for node info."""
        ...

    async def image_present(self, image: str) -> bool: ...

    async def pull(self, image: str, auth: dict[str, str] | None = None) -> None: ...

    async def create(self, config: ContainerConfig) -> str: ...

    async def start(self, container_id: str) -> None: ...

    async def stop(self, container_id: str, timeout: float) -> None:
        """SIGTERM, wait up to timeout seconds, then SIGKILL."""
        ...

    async def remove(self, container_id: str) -> None: ...

    async def inspect(self, container_id: str) -> ContainerInfo | None: ...

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        """All containers (running or not) carrying every given label."""
        ...

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float = 0.0,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]: ...

    async def exec(
        self,
        container_id: str,
        command: builtins.list[str],
        *,
        stdin: bool = False,
        tty: bool = False,
    ) -> ExecSession: ...

    async def stats(self, container_id: str) -> Usage: ...

    async def close(self) -> None: ...


async def exec_collect(
    runtime: ContainerRuntime,
    container_id: str,
    command: builtins.list[str],
    limit: int = 64 * 1024,
) -> tuple[int, bytes]:
    """Run a command to completion and return (exit code, first bytes of its output): what
    exec probes need."""
    session = await runtime.exec(container_id, command)
    out = bytearray()
    try:
        async for _, chunk in session.output():
            if len(out) < limit:
                out.extend(chunk[: limit - len(out)])
        return await session.exit_code(), bytes(out)
    finally:
        await session.close()

"""A runtime with no containers behind it (kubemark's "hollow node"): containers are records
that start at once and run until stopped, so the kubelet's real code - registration, heartbeat,
pod workers, status - can act as many nodes in one process against a real control plane."""

from __future__ import annotations

import builtins
import ipaddress
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

from kubelet.runtime import ContainerConfig, ContainerInfo, ImageNotFound, RuntimeError_, Usage


class HollowExecSession:
    """Every command succeeds at once and prints nothing."""

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        return
        yield

    async def write_stdin(self, data: bytes) -> None:
        return None

    async def close_stdin(self) -> None:
        return None

    async def resize(self, width: int, height: int) -> None:
        return None

    async def exit_code(self) -> int:
        return 0

    async def close(self) -> None:
        return None


class HollowRuntime:
    network_reachable = False

    def __init__(self, pod_cidr: str = "10.250.0.0/16", images: set[str] | None = None) -> None:
        self._containers: dict[str, ContainerInfo] = {}
        self._hosts = ipaddress.ip_network(pod_cidr).hosts()
        self._images: set[str] = set(images or ())
        self.pulls = itertools.count()

    async def version(self) -> str:
        return "hollow://1.0.0"

    async def image_present(self, image: str) -> bool:
        return image in self._images

    async def pull(self, image: str, auth: dict[str, str] | None = None) -> None:
        # Any image "exists" in the hollow registry except those named missing, so tests
        # can exercise ErrImagePull.
        next(self.pulls)
        if "missing" in image:
            raise ImageNotFound(f"image {image!r} not found")
        self._images.add(image)

    async def create(self, config: ContainerConfig) -> str:
        if config.image not in self._images:
            raise ImageNotFound(f"no such image: {config.image}")
        if any(c.name == config.name for c in self._containers.values()):
            raise RuntimeError_(f"container name {config.name!r} is already in use")
        cid = uuid.uuid4().hex
        self._containers[cid] = ContainerInfo(
            id=cid,
            name=config.name,
            labels=dict(config.labels),
            image=config.image,
            image_id=f"sha256:{abs(hash(config.image)):064x}"[:71],
            created_at=time.time(),
        )
        if not config.network_mode:
            self._containers[cid].ip = str(next(self._hosts))
        return cid

    def _get(self, container_id: str) -> ContainerInfo:
        info = self._containers.get(container_id)
        if info is None:
            raise RuntimeError_(f"no such container: {container_id}")
        return info

    async def start(self, container_id: str) -> None:
        info = self._get(container_id)
        info.state, info.started_at, info.finished_at = "running", time.time(), 0.0

    async def stop(self, container_id: str, timeout: float) -> None:
        info = self._containers.get(container_id)
        if info is not None and info.running:
            info.state, info.exit_code, info.finished_at = "exited", 0, time.time()

    def exit(self, container_id: str, code: int, *, oom: bool = False) -> None:
        """Make a container exit, as its process would (for tests)."""
        info = self._get(container_id)
        info.state, info.exit_code, info.oom_killed = "exited", code, oom
        info.finished_at = time.time()

    async def remove(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        info = self._containers.get(container_id)
        return replace(info, labels=dict(info.labels)) if info is not None else None

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        return [
            replace(c, labels=dict(c.labels))
            for c in self._containers.values()
            if all(c.labels.get(k) == v for k, v in labels.items())
        ]

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float = 0.0,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        self._get(container_id)
        return
        yield

    async def exec(
        self,
        container_id: str,
        command: builtins.list[str],
        *,
        stdin: bool = False,
        tty: bool = False,
    ) -> HollowExecSession:
        if not self._get(container_id).running:
            raise RuntimeError_(f"container {container_id} is not running")
        return HollowExecSession()

    async def stats(self, container_id: str) -> Usage:
        self._get(container_id)
        return Usage()

    async def close(self) -> None:
        self._containers.clear()

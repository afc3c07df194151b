"""The real runtime: Docker Engine API through aiodocker (DOCKER_HOST or the default socket)."""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import datetime as dt
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiodocker
from aiodocker.execs import Exec
from aiodocker.stream import Stream

from kubelet.runtime import ContainerConfig, ContainerInfo, ImageNotFound, RuntimeError_, Usage


def _ts(text: str) -> float:
    """Docker's RFC 3339 nano timestamps; the zero time (never started) is 0."""
    if not text or text.startswith("0001-"):
        return 0.0
    head, _, frac = text.rstrip("Z").partition(".")
    base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC).timestamp()
    digits = "".join(ch for ch in frac if ch.isdigit())[:9]
    return base + (int(digits) / 10 ** len(digits) if digits else 0.0)


def _info(raw: dict[str, Any]) -> ContainerInfo:
    state = raw.get("State") or {}
    status = str(state.get("Status", "created"))
    net = raw.get("NetworkSettings") or {}
    ip = str(net.get("IPAddress") or "")
    if not ip:
        for network in (net.get("Networks") or {}).values():
            if network.get("IPAddress"):
                ip = str(network["IPAddress"])
                break
    config = raw.get("Config") or {}
    return ContainerInfo(
        id=str(raw["Id"]),
        name=str(raw.get("Name", "")).lstrip("/"),
        labels=dict(config.get("Labels") or {}),
        image=str(config.get("Image", "")),
        image_id=str(raw.get("Image", "")),
        state={"running": "running", "created": "created", "restarting": "running"}.get(
            status, "exited"
        ),
        exit_code=int(state.get("ExitCode") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        created_at=_ts(str(raw.get("Created", ""))),
        started_at=_ts(str(state.get("StartedAt", ""))),
        finished_at=_ts(str(state.get("FinishedAt", ""))),
        ip=ip,
    )


def split_image(image: str) -> tuple[str, str]:
    """repository, tag (a digest reference keeps its @sha256 in the repository)."""
    if "@" in image:
        return image, ""
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


async def _demux(response: Any, tty: bool) -> AsyncIterator[tuple[int, bytes]]:
    """Docker's multiplexed stream: 8-byte headers (stream, 0, 0, 0, big-endian size)."""
    if tty:
        async for chunk in response.content.iter_any():
            yield 1, bytes(chunk)
        return
    buf = b""
    async for chunk in response.content.iter_any():
        buf += chunk
        while len(buf) >= 8:
            stream, size = buf[0], struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + size:
                break
            yield (2 if stream == 2 else 1), buf[8 : 8 + size]
            buf = buf[8 + size :]


class DockerExecSession:
    def __init__(self, execution: Exec, stream: Stream) -> None:
        self._exec = execution
        self._stream = stream

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            message = await self._stream.read_out()
            if message is None:
                return
            yield (2 if message.stream == 2 else 1), bytes(message.data)

    async def write_stdin(self, data: bytes) -> None:
        await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        # Half-close: the process sees EOF on stdin while its output keeps flowing. aiodocker's
        # Stream.close() would also drop the response, so reach the transport directly.
        resp = getattr(self._stream, "_resp", None)
        transport = resp.connection.transport if resp is not None and resp.connection else None
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(aiodocker.DockerError):
            await self._exec.resize(h=height, w=width)

    async def exit_code(self) -> int:
        for _ in range(200):
            info = await self._exec.inspect()
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else -1
            await asyncio.sleep(0.05)
        return -1

    async def close(self) -> None:
        await self._stream.close()


class DockerRuntime:
    network_reachable = True

    def __init__(self, url: str | None = None) -> None:
        self.docker = aiodocker.Docker(url=url)
        # container id -> (State in the list summary, inspected details)
        self._details: dict[str, tuple[str, ContainerInfo]] = {}

    async def close(self) -> None:
        await self.docker.close()

    async def version(self) -> str:
        v = await self.docker.version()
        return f"docker://{v.get('Version', 'unknown')}"

    async def image_present(self, image: str) -> bool:
        try:
            await self.docker.images.inspect(image)
        except aiodocker.DockerError as e:
            if e.status == 404:
                return False
            raise RuntimeError_(str(e)) from e
        return True

    async def pull(self, image: str, auth: dict[str, str] | None = None) -> None:
        repo, tag = split_image(image)
        try:
            # The pull progress stream carries errors inline; aiodocker raises on them.
            await self.docker.images.pull(repo, tag=tag or None, auth=auth)
        except aiodocker.DockerError as e:
            if e.status == 404:
                raise ImageNotFound(f"image {image!r} not found: {e.message}") from e
            raise RuntimeError_(f"pulling {image}: {e.message}") from e

    async def create(self, config: ContainerConfig) -> str:
        host: dict[str, Any] = {"Binds": config.binds}
        if config.network_mode:
            host["NetworkMode"] = config.network_mode
        if config.memory_limit:
            host["Memory"] = config.memory_limit
            host["MemorySwap"] = config.memory_limit
        if config.cpu_quota:
            host["CpuQuota"] = config.cpu_quota
            host["CpuPeriod"] = config.cpu_period
        if config.cpu_shares:
            host["CpuShares"] = config.cpu_shares
        body: dict[str, Any] = {
            "Image": config.image,
            "Labels": config.labels,
            "Env": config.env,
            "Tty": config.tty,
            "OpenStdin": config.open_stdin,
            "HostConfig": host,
        }
        if config.entrypoint is not None:
            body["Entrypoint"] = config.entrypoint
        if config.cmd is not None:
            body["Cmd"] = config.cmd
        if config.working_dir:
            body["WorkingDir"] = config.working_dir
        if config.hostname and not config.network_mode.startswith("container:"):
            body["Hostname"] = config.hostname
        try:
            container = await self.docker.containers.create(body, name=config.name)
        except aiodocker.DockerError as e:
            if e.status == 404:
                raise ImageNotFound(e.message) from e
            raise RuntimeError_(e.message) from e
        return str(container.id)

    async def start(self, container_id: str) -> None:
        try:
            await self.docker.containers.container(container_id).start()
        except aiodocker.DockerError as e:
            raise RuntimeError_(e.message) from e

    async def stop(self, container_id: str, timeout: float) -> None:
        seconds = max(0, round(timeout))
        try:
            await self.docker.containers.container(container_id).stop(
                t=seconds, timeout=seconds + 30
            )
        except aiodocker.DockerError as e:
            if e.status not in (304, 404):
                raise RuntimeError_(e.message) from e

    async def remove(self, container_id: str) -> None:
        self._details.pop(container_id, None)
        try:
            await self.docker.containers.container(container_id).delete(force=True, v=True)
        except aiodocker.DockerError as e:
            if e.status != 404:
                raise RuntimeError_(e.message) from e

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            raw = await self.docker.containers.container(container_id).show()
        except aiodocker.DockerError as e:
            if e.status == 404:
                return None
            raise RuntimeError_(e.message) from e
        return _info(raw)

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        summaries = await self.docker.containers.list(all=True, filters=filters)
        out: builtins.list[ContainerInfo] = []
        for summary in summaries:
            # Inspect only what changed state since the last look: a running container's
            # details (start time, IP) and an exited one's (exit code, OOM) are fixed, so
            # relisting 100 pods costs one list call, not 200 inspects.
            state = str(summary._container.get("State", ""))
            cached = self._details.get(summary.id)
            if cached is None or cached[0] != state:
                fresh = await self.inspect(summary.id)
                if fresh is None:
                    continue
                cached = (state, fresh)
                self._details[summary.id] = cached
            out.append(replace(cached[1], labels=dict(cached[1].labels)))
        return out

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float = 0.0,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        raw = await self.docker.containers.container(container_id).show()
        params: dict[str, Any] = {
            "stdout": "1",
            "stderr": "1",
            "follow": "1" if follow else "0",
            "timestamps": "1" if timestamps else "0",
            "tail": "all" if tail is None else str(tail),
        }
        if since:
            params["since"] = f"{since:.9f}"
        async with self.docker._query(  # the raw bytes; aiodocker's log() decodes to str
            f"containers/{container_id}/logs", params=params, timeout=None
        ) as response:
            async for _, chunk in _demux(response, bool(raw["Config"].get("Tty"))):
                yield chunk

    async def exec(
        self,
        container_id: str,
        command: builtins.list[str],
        *,
        stdin: bool = False,
        tty: bool = False,
    ) -> DockerExecSession:
        try:
            execution = await self.docker.containers.container(container_id).exec(
                command, stdin=stdin, tty=tty
            )
            stream = execution.start(detach=False)
            await stream._init()  # attach now so that a bad command fails here
        except aiodocker.DockerError as e:
            raise RuntimeError_(e.message) from e
        return DockerExecSession(execution, stream)

    async def stats(self, container_id: str) -> Usage:
        samples = await self.docker.containers.container(container_id).stats(stream=False)
        if not samples:
            return Usage()
        s = samples[0]
        cpu = int(((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)
        mem = s.get("memory_stats") or {}
        usage = int(mem.get("usage") or 0)
        stats = mem.get("stats") or {}
        inactive = int(stats.get("inactive_file", stats.get("total_inactive_file", 0)) or 0)
        return Usage(cpu, usage, max(0, usage - inactive))


def registry_auth(dockerconfigjson: bytes, image: str) -> dict[str, str] | None:
    """The credentials a kubernetes.io/dockerconfigjson secret holds for image's registry."""
    try:
        config = json.loads(dockerconfigjson)
    except ValueError:
        return None
    auths = config.get("auths") or {}
    first = image.split("/", 1)[0]
    registry = (
        first
        if "/" in image and ("." in first or ":" in first or first == "localhost")
        else "docker.io"
    )
    for key, entry in auths.items():
        host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
        if host == registry or (registry == "docker.io" and "docker.io" in host):
            user, password = entry.get("username", ""), entry.get("password", "")
            if not user and entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return {"username": user, "password": password, "serveraddress": host}
    return None

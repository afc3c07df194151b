"""The local images for real: built into the sandbox's dockerd, the demo app run as a container
and driven over HTTP from the sandbox namespace (through the docker bridge) and from a util
container, then stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiodocker
import pytest

from tools.images.builder import DEMO_PORT, DEMO_V1, DEMO_V2, IMAGES, PAUSE, UTIL, ensure_images

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not os.environ.get("DOCKER_HOST") or not os.environ.get("CAPSTAN_SANDBOX"),
        reason="needs the sandbox's dockerd: bash tools/sandbox.sh --docker -- pytest ...",
    ),
]

MIB = 1024 * 1024


@dataclass
class Demo:
    container: aiodocker.containers.DockerContainer
    ip: str
    hostname: str

    async def get(self, path: str) -> tuple[int, str]:
        return await http_get(self.ip, DEMO_PORT, path)


async def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """One HTTP/1.1 GET; the demo closes every connection, so the body runs to EOF."""

    async def fetch() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: e2e\r\n\r\n".encode())
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    raw = await asyncio.wait_for(fetch(), timeout)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def docker() -> AsyncIterator[aiodocker.Docker]:
    client = aiodocker.Docker()
    try:
        await ensure_images()
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def run_demo(
    docker: aiodocker.Docker,
) -> AsyncIterator[Callable[..., Awaitable[Demo]]]:
    """Start demo containers (removed at the end of the module); each answers before it is
    handed out."""
    started: list[aiodocker.containers.DockerContainer] = []

    async def start(
        image: str = DEMO_V2, env: Mapping[str, str] | None = None, memory: int = 0
    ) -> Demo:
        config: dict[str, Any] = {
            "Image": image,
            "Env": [f"{k}={v}" for k, v in (env or {}).items()],
            "HostConfig": {"Memory": memory, "MemorySwap": memory} if memory else {},
        }
        container = await docker.containers.run(config, name=f"demo-{uuid.uuid4().hex[:8]}")
        started.append(container)
        info = await container.show()
        demo = Demo(container, info["NetworkSettings"]["IPAddress"], info["Config"]["Hostname"])

        async def answers() -> bool:
            try:
                return (await demo.get("/version"))[0] == 200
            except OSError:
                return False

        await eventually(answers)
        return demo

    yield start
    for container in started:
        await container.delete(force=True)


@pytest.fixture(scope="module")
async def demo(run_demo: Callable[..., Awaitable[Demo]]) -> Demo:
    return await run_demo(DEMO_V2, {"GREETING": "hello from e2e"})


async def run_util(docker: aiodocker.Docker, *cmd: str) -> tuple[int, str]:
    container = await docker.containers.run({"Image": UTIL, "Cmd": list(cmd)})
    try:
        result = await asyncio.wait_for(container.wait(), 30)
        lines = await container.log(stdout=True, stderr=True)
        return int(result["StatusCode"]), "".join(lines)
    finally:
        await container.delete(force=True)


async def cgroup_value(demo: Demo, v2_file: str, v1_file: str) -> int:
    """A counter from the container's own cgroup, read through the demo's file browser
    (cgroup v2 or v1, whichever the host mounts)."""
    status, body = await demo.get(f"/fs/sys/fs/cgroup/{v2_file}")
    if status != 200:
        status, body = await demo.get(f"/fs/sys/fs/cgroup/{v1_file}")
    assert status == 200, body
    if v2_file == "cpu.stat" and body.startswith("usage_usec"):
        return int(body.split()[1]) * 1000
    return int(body.split()[0])


async def test_build_is_idempotent_and_tags_versions(docker: aiodocker.Docker) -> None:
    results = await ensure_images()
    assert [r.ref for r in results] == [s.ref for s in IMAGES]
    assert not any(r.built for r in results), "an unchanged image was rebuilt"
    for r in results:
        by_version = await docker.images.inspect(r.ref)
        by_content = await docker.images.inspect(r.content_ref)
        assert by_version["Id"] == by_content["Id"]
    assert (await docker.images.inspect("capstan/demo:latest"))["Id"] == (
        await docker.images.inspect(DEMO_V2)
    )["Id"]


async def test_page_shows_version_host_address_and_request(demo: Demo) -> None:
    status, body = await demo.get("/?probe=1")
    assert status == 200
    assert "version: 2" in body
    assert f"hostname: {demo.hostname}" in body
    assert f"eth0 {demo.ip}/" in body
    assert "GET /?probe=1 HTTP/1.1" in body
    assert "User-Agent: e2e" in body
    assert "remote: " in body and ":" in body.split("remote: ", 1)[1]


async def test_versions_differ(run_demo: Callable[..., Awaitable[Demo]], demo: Demo) -> None:
    v1 = await run_demo(DEMO_V1)
    assert await v1.get("/version") == (200, "1\n")
    assert await demo.get("/version") == (200, "2\n")
    assert "version: 1" in (await v1.get("/"))[1]


@pytest.mark.parametrize("probe", ["healthy", "ready"])
async def test_probes_flip_at_runtime(demo: Demo, probe: str) -> None:
    assert await demo.get(f"/{probe}") == (200, "ok\n")
    assert (await demo.get(f"/{probe}/fail"))[0] == 200
    status, body = await demo.get(f"/{probe}")
    assert status == 500 and body.startswith("fail"), body
    assert (await demo.get(f"/{probe}/ok"))[0] == 200
    assert await demo.get(f"/{probe}") == (200, "ok\n")


async def test_probe_timers_from_env(run_demo: Callable[..., Awaitable[Demo]]) -> None:
    timed = await run_demo(DEMO_V2, {"DEMO_READY_DELAY": "2", "DEMO_HEALTHY_FAIL_AFTER": "2"})
    assert (await timed.get("/ready"))[0] == 500
    assert (await timed.get("/healthy"))[0] == 200

    async def flipped() -> bool:
        ready, healthy = await timed.get("/ready"), await timed.get("/healthy")
        return ready[0] == 200 and healthy[0] == 500

    await eventually(flipped)


async def test_env_lists_the_container_environment(demo: Demo) -> None:
    status, body = await demo.get("/env")
    assert status == 200
    lines = body.splitlines()
    assert "VERSION=2" in lines
    assert "GREETING=hello from e2e" in lines
    assert f"HOSTNAME={demo.hostname}" in lines


async def test_file_browser(demo: Demo) -> None:
    status, listing = await demo.get("/fs/etc/")
    assert status == 200
    assert '<a href="/fs/etc/passwd">passwd</a>' in listing
    assert (await demo.get("/fs/etc/hostname")) == (200, f"{demo.hostname}\n")
    status, body = await demo.get("/fs/")
    assert status == 200 and '<a href="/fs/app/">app/</a>' in body
    assert (await demo.get("/fs/no/such/file"))[0] == 404


async def test_burn_cpu_uses_cpu_then_stops(demo: Demo) -> None:
    def cpu() -> Awaitable[int]:
        return cgroup_value(demo, "cpu.stat", "cpuacct/cpuacct.usage")

    async def burners() -> int:
        top = await demo.container.top()
        return sum("while :; do :; done" in " ".join(p) for p in top["Processes"])

    before = await cpu()
    assert await demo.get("/burn/cpu?seconds=2") == (200, "burning 1 cpu(s) for 2s\n")
    assert await burners() >= 1
    # On two shared cores a busy loop gets what the others leave: ask for a fraction of it.
    await asyncio.sleep(1)
    burnt = await cpu() - before
    assert burnt > 0.15e9, f"only {burnt / 1e9:.2f}s of CPU in a 1s burn"

    async def stopped() -> bool:
        return await burners() == 0

    await eventually(stopped, timeout=3)
    assert (await demo.get("/burn/cpu?seconds=x"))[0] == 400


async def test_burn_memory_within_a_limit(run_demo: Callable[..., Awaitable[Demo]]) -> None:
    limited = await run_demo(DEMO_V2, memory=96 * MIB)

    def usage() -> Awaitable[int]:
        return cgroup_value(limited, "memory.current", "memory/memory.usage_in_bytes")

    before = await usage()
    assert (await limited.get("/burn/memory?mb=48&seconds=2"))[0] == 200

    async def held() -> bool:
        return await usage() - before >= 47 * MIB

    await eventually(held)
    # Over the limit only the burner is OOM-killed; the app keeps serving.
    assert (await limited.get("/burn/memory?mb=200&seconds=2"))[0] == 200
    await asyncio.sleep(1)
    assert await limited.get("/version") == (200, "2\n")


async def test_util_reaches_demo(docker: aiodocker.Docker, demo: Demo) -> None:
    code, out = await run_util(docker, "wget", "-q", "-O", "-", f"http://{demo.ip}:{DEMO_PORT}/")
    assert code == 0 and "version: 2" in out
    code, out = await run_util(
        docker, "sh", "-c", f"printf 'GET /healthy HTTP/1.0\\r\\n\\r\\n' | nc {demo.ip} {DEMO_PORT}"
    )
    assert code == 0 and out.startswith("HTTP/1.1 200 OK"), out
    code, out = await run_util(
        docker, "sh", "-c", "for a in sh wget nc nslookup sleep ip ps; do which $a; done"
    )
    assert code == 0 and len(out.split()) == 7, out


async def test_sigterm_stops_within_two_seconds_and_requests_are_logged(
    docker: aiodocker.Docker, run_demo: Callable[..., Awaitable[Demo]]
) -> None:
    victim = await run_demo(DEMO_V2)
    await victim.get("/healthy")
    started = time.monotonic()
    await victim.container.stop(t=10)
    assert time.monotonic() - started < 2
    state = (await victim.container.show())["State"]
    assert state["ExitCode"] == 0
    log = "".join(await victim.container.log(stdout=True))
    assert '"GET /healthy HTTP/1.1" 200' in log
    assert "received SIGTERM" in log

    for image in (UTIL, PAUSE):
        idle = await docker.containers.run({"Image": image})
        try:
            started = time.monotonic()
            await idle.stop(t=10)
            assert time.monotonic() - started < 2, image
        finally:
            await idle.delete(force=True)

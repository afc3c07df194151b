"""A real apiserver (SQLite) per session, a namespace per test, and the cluster loops run
in-process through the registry's factories with the daemon's flags (plus the cluster
flags), as capstan-controller wires them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client, Controller, EventRecorder, SharedInformerFactory
from controller.__main__ import build, parser
from controller.registry import ControllerContext

from tests.support.apiserver import RunningApiserver, run_apiserver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def apiserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningApiserver]:
    url = f"sqlite://{tmp_path_factory.mktemp('cluster-apiserver') / 'state.db'}"
    async with run_apiserver(url) as running:
        yield running


@pytest.fixture
async def client(apiserver: RunningApiserver) -> AsyncIterator[Client]:
    async with Client([apiserver.address], default_timeout=10) as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> str:
    n = core_pb2.Namespace()
    n.metadata.name = f"t-{uuid.uuid4().hex[:10]}"
    await client.namespaces.create(n)
    return n.metadata.name


def cluster_args(extra: Sequence[str] = ()) -> argparse.Namespace:
    return parser().parse_args(list(extra))


@contextlib.asynccontextmanager
async def running(
    client: Client,
    *names: str,
    extra_args: Sequence[str] = (),
    loops: Callable[[ControllerContext], list[Controller]] | None = None,
) -> AsyncIterator[ControllerContext]:
    """Run the named registry loops (and any built by loops(ctx)) until the block ends."""
    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client.events, "controller-manager")
    ctx = ControllerContext(client, informers, recorder, cluster_args(extra_args))
    controllers = list(build(ctx, names).values()) + (loops(ctx) if loops else [])
    recorder.start()
    tasks = [asyncio.create_task(c.run(sync_timeout=10)) for c in controllers]
    try:
        yield ctx
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await informers.stop()
        await recorder.stop(flush=False)


async def eventually(
    check: Callable[[], object], timeout: float = 15.0, interval: float = 0.05
) -> None:
    """Poll an async or sync predicate until truthy; fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def cli(address: str, workdir: Path, *args: str) -> tuple[int, str, str]:
    """The capstan CLI as a subprocess, without blocking the in-process apiserver's loop."""
    env = {**os.environ, "CAPSTAN_CONFIG": str(workdir / "no-config")}
    env.pop("CAPSTAN_SERVER", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capstan.cli.main", "--server", address, "--insecure", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=workdir, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def pod(name: str, ns: str, labels: dict[str, str] | None = None) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, ns
    p.metadata.labels.update(labels or {})
    c = p.spec.containers.add(name="c", image="busybox")
    c.ports.add(name="http", container_port=8080, protocol="TCP")
    return p


async def set_pod_status(
    client: Client, ns: str, name: str, *, ip: str = "", ready: bool | None = None
) -> core_pb2.Pod:
    """Play the kubelet: phase Running, an IP, and a Ready condition."""
    cur = await client.pods.get(name, ns)
    cur.status.phase = "Running"
    if ip:
        cur.status.pod_ip = ip
    if ready is not None:
        for c in cur.status.conditions:
            if c.type == "Ready":
                c.status = "True" if ready else "False"
                break
        else:
            cur.status.conditions.add(type="Ready", status="True" if ready else "False")
    return await client.pods.update_status(cur)

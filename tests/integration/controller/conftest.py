"""A real apiserver (SQLite) per session, a namespace per test, and the workload loops run
in-process on the registry's factories (the daemon's own wiring: one client, shared
informers, one event recorder)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ConflictError
from capstan.client import Client, EventRecorder, ResourceClient, SharedInformerFactory
from controller.__main__ import build, parser
from controller.registry import ControllerContext

from tests.integration.controller.fakecluster import RUN, FakeCluster, Outcome
from tests.support.apiserver import RunningApiserver, run_apiserver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def apiserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningApiserver]:
    url = f"sqlite://{tmp_path_factory.mktemp('controller-apiserver') / 'state.db'}"
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


@contextlib.asynccontextmanager
async def controllers(
    client: Client, *names: str, extra_args: list[str] | None = None
) -> AsyncIterator[ControllerContext]:
    args: argparse.Namespace = parser().parse_args(
        ["--job-pod-failure-backoff", "0.2", *(extra_args or [])]
    )
    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client.events, "controller-manager")
    ctx = ControllerContext(client, informers, recorder, args)
    loops = build(ctx, names)
    recorder.start()
    tasks = [asyncio.create_task(c.run(sync_timeout=10)) for c in loops.values()]
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


def cluster(
    client: Client, ns: str, outcome: Callable[[core_pb2.Pod], Outcome] = lambda p: RUN
) -> FakeCluster:
    return FakeCluster(client, ns, outcome=outcome)


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


async def update(
    resource: ResourceClient[Any], name: str, namespace: str, change: Callable[[Any], None]
) -> Any:
    """Read-modify-write that re-reads on a conflict (the controllers write status all the
    time, as they do in a real cluster; kubectl's patches avoid this, a test's update
    must retry)."""
    for _ in range(50):
        obj = await resource.get(name, namespace)
        change(obj)
        try:
            return await resource.update(obj)
        except ConflictError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"could not update {name}: conflicts")

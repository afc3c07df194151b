"""A fresh apiserver (SQLite) per test - nodes are cluster-scoped, so tests that each
want "exactly these 3 nodes" cannot share one - and the scheduler running in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client
from scheduler.scheduler import Options, Scheduler

from tests.support.apiserver import RunningApiserver, run_apiserver


@pytest.fixture
async def apiserver(tmp_path: object) -> AsyncIterator[RunningApiserver]:
    async with run_apiserver(f"sqlite://{tmp_path}/state.db") as running:
        yield running


@pytest.fixture
async def client(apiserver: RunningApiserver) -> AsyncIterator[Client]:
    async with Client([apiserver.address], default_timeout=10) as c:
        yield c


@pytest.fixture
async def scheduler(client: Client) -> AsyncIterator[Scheduler]:
    """The scheduler, running, with a short backoff so retries show up fast."""
    s = Scheduler(client, Options(initial_backoff=0.2, max_backoff=1.0))
    task = asyncio.create_task(s.run())
    await s.factory.wait_for_sync(10)
    try:
        yield s
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def create_node(client: Client, n: core_pb2.Node) -> core_pb2.Node:
    """A Node with the status a kubelet would report (no kubelet runs here)."""
    return await client.nodes.create(n)


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll an async or sync check until it stops raising AssertionError."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                result = check()
                if asyncio.iscoroutine(result):
                    await result
                return
            except AssertionError:
                await asyncio.sleep(0.05)


async def events_for(client: Client, namespace: str, name: str) -> list[core_pb2.Event]:
    listed = await client.events.list(namespace, field_selector=f"involvedObject.name={name}")
    return list(listed.items)

"""A real apiserver (SQLite) for the hollow-kubelet tests, one per session; each test gets
its own namespace and its own node names."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client, SharedInformerFactory
from kubelet.hollow import hollow_config, hollow_host, hollow_runtime
from kubelet.hollow_runtime import HollowRuntime
from kubelet.kubelet import Kubelet

from tests.support.apiserver import RunningApiserver, run_apiserver


@pytest.fixture(scope="session")
async def apiserver(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningApiserver]:
    url = f"sqlite://{tmp_path_factory.mktemp('kubelet-apiserver') / 'state.db'}"
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


def fast_kubelet(
    client: Client, informers: SharedInformerFactory, name: str, runtime: HollowRuntime
) -> Kubelet:
    """A hollow kubelet with heartbeats, relists and back-off short enough for tests."""
    cfg = hollow_config(name, 0, relist_period=0.05, backoff_initial=0.5, backoff_max=2.0)
    cfg.node.lease_seconds = 0.2
    cfg.node.status_check_seconds = 0.2
    return Kubelet(client, runtime, cfg, informers, hollow_host)


@pytest.fixture
async def hollow(
    client: Client,
) -> AsyncIterator[Callable[..., Awaitable[tuple[Kubelet, HollowRuntime]]]]:
    informers = SharedInformerFactory(client)
    started: list[Kubelet] = []

    async def start(
        name: str = "", runtime: HollowRuntime | None = None
    ) -> tuple[Kubelet, HollowRuntime]:
        rt = runtime or hollow_runtime(len(started), images={"pause:1", "busybox:1"})
        k = fast_kubelet(client, informers, name or f"hollow-{uuid.uuid4().hex[:8]}", rt)
        k.config.pause_image = k.ctx.pause_image = "pause:1"
        await k.start()
        started.append(k)
        return k, rt

    yield start
    for k in started:
        with contextlib.suppress(Exception):
            await k.stop()
    await informers.stop()


def pod_on(
    node: str, ns: str, name: str, *, policy: str = "", image: str = "busybox:1"
) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace, p.metadata.name = ns, name
    p.spec.node_name = node
    p.spec.restart_policy = policy or "Always"
    p.spec.termination_grace_period_seconds = 1
    p.spec.containers.add(name="main", image=image)
    return p


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - polling the API is the point
            await asyncio.sleep(interval)

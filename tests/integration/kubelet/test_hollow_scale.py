"""At least 100 hollow nodes in one process (kubemark-style): all register, heartbeat, and run
the pods bound to them."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from capstan.client import Client, SharedInformerFactory
from kubelet.hollow import start_hollow_nodes

from tests.integration.kubelet.conftest import eventually, pod_on

pytestmark = pytest.mark.integration

NODES = 100


async def test_hundred_hollow_nodes_in_one_process(client: Client, ns: str) -> None:
    prefix = f"scale-{uuid.uuid4().hex[:6]}"
    informers = SharedInformerFactory(client)
    started = time.monotonic()
    kubelets = await start_hollow_nodes(client, NODES, prefix, informers)
    try:
        for k in kubelets:
            k.ctx.pause_image = "capstan/pause:latest"
        nodes = [n for n in (await client.nodes.list()).items if n.metadata.name.startswith(prefix)]
        assert len(nodes) == NODES
        assert all(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
            for n in nodes
        )
        leases = (await client.leases.list("kube-node-lease")).items
        assert len([x for x in leases if x.metadata.name.startswith(prefix)]) == NODES

        sem = asyncio.Semaphore(20)

        async def create(i: int) -> None:
            async with sem:
                await client.pods.create(pod_on(f"{prefix}-{i}", ns, f"p{i}", image="img:1"))

        await asyncio.gather(*(create(i) for i in range(NODES)))

        async def all_running() -> bool:
            pods = (await client.pods.list(ns)).items
            return len(pods) == NODES and all(p.status.phase == "Running" for p in pods)

        await eventually(all_running, timeout=60, interval=0.5)
        pods = (await client.pods.list(ns)).items
        assert len({p.status.pod_ip for p in pods}) == NODES
        assert {p.spec.node_name for p in pods} == {f"{prefix}-{i}" for i in range(NODES)}
        assert time.monotonic() - started < 90
    finally:
        for k in kubelets:
            await k.stop()
        await informers.stop()

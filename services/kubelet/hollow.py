"""Many hollow kubelets in one process: the real Kubelet over HollowRuntime, one per node,
sharing one apiserver client and one informer factory (ConfigMaps, Secrets and Services are
watched once for all of them; each node watches only its own pods)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import structlog
from capstan.client import Client, SharedInformerFactory

from kubelet.hollow_runtime import HollowRuntime
from kubelet.kubelet import Kubelet, KubeletConfig
from kubelet.node import HostReadings, NodeConfig

log = structlog.get_logger(__name__)

GiB = 1024**3


def hollow_host() -> HostReadings:
    """Fixed, plausible readings: every hollow node looks like the same 4-core 16 GiB box."""
    return HostReadings(
        cpus=4,
        memory_bytes=16 * GiB,
        memory_available_bytes=12 * GiB,
        disk_total_bytes=100 * GiB,
        disk_free_bytes=80 * GiB,
        kernel_version="hollow",
        os_image="capstan hollow node",
    )


def hollow_config(name: str, index: int, **overrides: object) -> KubeletConfig:
    cfg = KubeletConfig(
        node=NodeConfig(name=name, ip="127.0.0.1", port=0, labels={"capstan.dev/hollow": "true"}),
        root_dir=Path("/nonexistent-hollow-root"),
        materialize=False,
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def hollow_runtime(index: int, images: set[str] | None = None) -> HollowRuntime:
    # Each node gets its own /24 so made-up pod IPs do not repeat across nodes.
    return HollowRuntime(f"10.{200 + index // 256}.{index % 256}.0/24", images)


async def start_hollow_nodes(
    client: Client, count: int, prefix: str, informers: SharedInformerFactory
) -> list[Kubelet]:
    kubelets = [
        Kubelet(
            client,
            hollow_runtime(i),
            hollow_config(f"{prefix}-{i}", i),
            informers,
            hollow_host,
        )
        for i in range(count)
    ]
    # Registration in parallel, a few at a time, so 100 nodes come up in seconds.
    sem = asyncio.Semaphore(16)

    async def start(k: Kubelet) -> None:
        async with sem:
            await k.start()

    await asyncio.gather(*(start(k) for k in kubelets))
    return kubelets


async def run_hollow_nodes(
    client: Client, count: int, prefix: str, stop: asyncio.Event, args: argparse.Namespace
) -> None:
    informers = SharedInformerFactory(client)
    kubelets = await start_hollow_nodes(client, count, prefix, informers)
    log.info("hollow nodes running", count=count, prefix=prefix)
    try:
        await stop.wait()
    finally:
        for k in kubelets:
            await k.stop()
        await informers.stop()

"""`capstan-kubelet --hollow --hollow-nodes N` as a real process: the nodes register and the
daemon stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

import pytest
from capstan.client import Client

from tests.integration.kubelet.conftest import eventually
from tests.support.apiserver import RunningApiserver

pytestmark = pytest.mark.integration


async def test_hollow_daemon_registers_nodes(apiserver: RunningApiserver, client: Client) -> None:
    prefix = f"hd-{uuid.uuid4().hex[:6]}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubelet", "--server", apiserver.address, "--insecure",
        "--hollow", "--hollow-nodes", "3", "--node-name", prefix, "--metrics-listen", "",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:

        async def registered() -> bool:
            nodes = (await client.nodes.list()).items
            ready = [
                n
                for n in nodes
                if n.metadata.name.startswith(prefix)
                and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
            ]
            return len(ready) == 3

        await eventually(registered, timeout=30, interval=0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0

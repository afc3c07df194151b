"""Active/standby: two capstan-scheduler processes on one Lease. The leader is killed
with SIGKILL (no lease release); the standby must take over within the lease duration
and no pod may be bound twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from capstan.apierrors import NotFoundError
from capstan.client import Client

from tests.integration.scheduler.conftest import create_node, eventually
from tests.support.apiserver import RunningApiserver
from tests.unit.scheduler.builders import node, pod

pytestmark = pytest.mark.integration

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5


class Schedulers:
    def __init__(self, server: str, logs: Path) -> None:
        self.server, self.logs = server, logs
        self.procs: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, identity: str) -> None:
        with (self.logs / f"{identity}.log").open("wb") as log:
            self.procs[identity] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "scheduler", "--server", self.server, "--insecure",
                "--metrics-listen", "", "--log-format", "json",
                "--leader-elect-identity", identity,
                "--leader-elect-lease-duration", str(LEASE),
                "--leader-elect-renew-deadline", str(RENEW),
                "--leader-elect-retry-period", str(RETRY),
                stdout=log, stderr=log,
            )  # fmt: skip

    def kill(self, identity: str) -> None:
        os.kill(self.procs[identity].pid, signal.SIGKILL)

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


@pytest.fixture
async def schedulers(apiserver: RunningApiserver, tmp_path: Path) -> AsyncIterator[Schedulers]:
    s = Schedulers(apiserver.address, tmp_path)
    try:
        yield s
    finally:
        await s.stop_all()


async def holder(client: Client) -> str:
    try:
        lease = await client.leases.get("scheduler", "kube-system")
    except NotFoundError:
        return ""
    return lease.spec.holder_identity


async def all_bound(client: Client, names: list[str]) -> None:
    for name in names:
        assert (await client.pods.get(name, "default")).spec.node_name, name


async def test_standby_takes_over_after_leader_is_killed(
    client: Client, schedulers: Schedulers
) -> None:
    for i in range(3):
        await create_node(client, node(f"n{i}"))
    await schedulers.start("sched-a")

    async def a_leads() -> None:
        assert await holder(client) == "sched-a"

    await eventually(a_leads, 20)
    await schedulers.start("sched-b")
    first = [f"before-{i}" for i in range(10)]
    for name in first:
        await client.pods.create(pod(name, cpu="100m"))
    await eventually(lambda: all_bound(client, first), 20)

    schedulers.kill("sched-a")
    killed = time.monotonic()
    second = [f"after-{i}" for i in range(10)]
    for name in second:
        await client.pods.create(pod(name, cpu="100m"))
    await eventually(lambda: all_bound(client, second), LEASE + 15)
    took_over = time.monotonic() - killed
    assert await holder(client) == "sched-b"
    # The standby waits out the lease it last saw renewed (at most LEASE ago), then
    # lists and schedules: well within one more lease duration.
    assert took_over < 2 * LEASE, took_over

    # Nothing was bound twice: each pod has exactly one Scheduled event, seen once.
    async def one_scheduled_event_each() -> None:
        events = (await client.events.list("default")).items
        scheduled: dict[str, list[int]] = {}
        for e in events:
            if e.reason == "Scheduled":
                scheduled.setdefault(e.involved_object.name, []).append(e.count)
        assert scheduled == {name: [1] for name in first + second}

    await eventually(one_scheduled_event_each, 10)

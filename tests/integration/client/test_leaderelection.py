"""Leader election between real processes on one Lease: a new leader acts within the
lease duration after the old one is killed, and two never act at once - also when the
old leader is frozen and wakes up after losing the lease."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from capstan.client import Client, LeaderContext, LeaderElectionConfig, LeaderElector

from tests.integration.client.conftest import new_namespace
from tests.support.apiserver import RunningApiserver

pytestmark = pytest.mark.integration

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
CANDIDATE = Path(__file__).with_name("leader_candidate.py")


def acts(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        who, _, at = line.partition(" ")
        out.append((who, float(at)))
    return out


async def wait_for(pred: object, timeout: float) -> None:
    assert callable(pred)
    async with asyncio.timeout(timeout):
        while True:
            if pred():
                return
            await asyncio.sleep(0.05)


class Candidates:
    def __init__(self, server: str, namespace: str, out: Path) -> None:
        self.server, self.namespace, self.out = server, namespace, out
        self.procs: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, identity: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CANDIDATE), "--server", self.server,
            "--namespace", self.namespace, "--identity", identity, "--out", str(self.out),
            "--lease", str(LEASE), "--renew", str(RENEW), "--retry", str(RETRY),
        )  # fmt: skip
        self.procs[identity] = proc
        return proc

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                await proc.wait()


@pytest.fixture
async def candidates(
    apiserver: RunningApiserver, client: Client, tmp_path: Path
) -> AsyncIterator[Candidates]:
    ns = await new_namespace(client)
    c = Candidates(apiserver.address, ns, tmp_path / "acts.log")
    try:
        yield c
    finally:
        await c.stop_all()


def assert_never_two_at_once(log: list[tuple[str, float]]) -> None:
    """Leadership periods, in time order, never interleave."""
    ordered = sorted(log, key=lambda x: x[1])
    switches = [ordered[i] for i in range(1, len(ordered)) if ordered[i][0] != ordered[i - 1][0]]
    assert len(switches) <= 1, f"acting identities interleave: {switches}"


async def test_hand_over_when_the_leader_process_is_killed(candidates: Candidates) -> None:
    a = await candidates.start("a")
    await wait_for(lambda: any(w == "a" for w, _ in acts(candidates.out)), 20)
    await candidates.start("b")
    await asyncio.sleep(LEASE + 1)  # b is up and standing by
    assert {w for w, _ in acts(candidates.out)} == {"a"}

    a.kill()  # SIGKILL: no release, the lease must expire
    killed = time.time()
    await a.wait()
    await wait_for(lambda: any(w == "b" for w, _ in acts(candidates.out)), LEASE + 5)

    log = acts(candidates.out)
    assert_never_two_at_once(log)
    last_a = max(t for w, t in log if w == "a")
    first_b = min(t for w, t in log if w == "b")
    assert last_a <= killed < first_b
    # b saw the last renew at most RETRY before the kill, waits LEASE from then and
    # retries every RETRY: it acts within the lease duration (plus one retry and the
    # polling granularity).
    assert first_b - killed <= LEASE + RETRY + 0.5, first_b - killed


async def test_a_frozen_leader_does_not_act_after_waking(candidates: Candidates) -> None:
    a = await candidates.start("a")
    await wait_for(lambda: any(w == "a" for w, _ in acts(candidates.out)), 20)
    await candidates.start("b")
    await asyncio.sleep(1.0)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        await wait_for(lambda: any(w == "b" for w, _ in acts(candidates.out)), LEASE + 5)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    # a wakes up far past its renew deadline: it must stop without acting again.
    await asyncio.wait_for(a.wait(), RENEW + 3)
    await asyncio.sleep(0.5)
    assert_never_two_at_once(acts(candidates.out))


async def test_release_on_cancel_hands_over_at_once(client: Client) -> None:
    ns = await new_namespace(client)
    started: dict[str, float] = {}
    stopped: list[str] = []

    def elector(identity: str) -> LeaderElector:
        async def lead(ctx: LeaderContext) -> None:
            started[identity] = time.monotonic()
            await asyncio.Event().wait()

        return LeaderElector(
            client.leases,
            LeaderElectionConfig("release", identity, ns, LEASE, RENEW, RETRY),
            on_started_leading=lead,
            on_stopped_leading=lambda: stopped.append(identity),
        )

    first = asyncio.create_task(elector("one").run())
    await wait_for(lambda: "one" in started, 5)
    second_elector = elector("two")
    second = asyncio.create_task(second_elector.run())
    await asyncio.sleep(RETRY * 2)
    assert "two" not in started
    assert second_elector.leader == "one"
    cancelled = time.monotonic()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert stopped == ["one"]
    await wait_for(lambda: "two" in started, LEASE)
    # Released, not expired: the standby takes over on its next retry.
    assert started["two"] - cancelled < RETRY + 0.5
    lease = await client.leases.get("release", ns)
    assert lease.spec.holder_identity == "two"
    # Kubernetes counts changes of holder: one (created, 0) -> two; a release is none.
    assert lease.spec.lease_transitions == 1
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second


def test_config_requires_ordered_durations() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig("x", "me", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaderElectionConfig("x", "")

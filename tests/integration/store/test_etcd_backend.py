"""What only the etcd backend has: several members, member restarts, one shared Watch
stream, shared leases. The Store semantics themselves are in test_conformance.py."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable

import pytest
from capstan.api.etcd import rpc_pb2
from capstan.store.etcd import EtcdStore
from capstan.store.interface import StoreUnavailableError, WatchEvent

from tests.support.etcd import _wait_ready, free_port, run_etcd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class EtcdMember:
    """One etcd member on fixed loopback ports and its own data dir, so that it can be
    killed and started again as after a crash. Members of one cluster share `cluster`."""

    def __init__(self, name: str, workdir: str) -> None:
        self.name = name
        self.dir = f"{workdir}/{name}"
        self.client_url = f"http://127.0.0.1:{free_port()}"
        self.peer_url = f"http://127.0.0.1:{free_port()}"
        self.cluster = f"{name}={self.peer_url}"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def endpoint(self) -> str:
        return self.client_url.removeprefix("http://")

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            shutil.which("etcd") or "etcd",
            f"--name={self.name}",
            f"--data-dir={self.dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.cluster}",
            "--initial-cluster-token=capstan-test",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await _wait_ready(self.client_url, timeout=20)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


@contextlib.asynccontextmanager
async def etcd_cluster(size: int) -> AsyncIterator[list[EtcdMember]]:
    workdir = tempfile.mkdtemp(prefix="capstan-etcd-cluster-")
    members = [EtcdMember(f"m{i}", workdir) for i in range(size)]
    cluster = ",".join(m.cluster for m in members)
    for member in members:
        member.cluster = cluster
    try:
        await asyncio.gather(*(m.start() for m in members))
        yield members
    finally:
        await asyncio.gather(*(m.kill() for m in members))
        shutil.rmtree(workdir, ignore_errors=True)


async def collect(
    watch: AsyncIterator[list[WatchEvent]], into: list[WatchEvent], count: int
) -> None:
    async for batch in watch:
        into.extend(batch)
        if len(into) >= count:
            return


async def first_batch(watch: AsyncIterator[list[WatchEvent]]) -> list[WatchEvent]:
    return await anext(watch)


async def wait_for(predicate: Callable[[], bool], seconds: float) -> None:
    step = 0.02
    for _ in range(int(seconds / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not reached within {seconds}s")


async def test_fails_over_past_a_dead_member() -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with run_etcd() as etcd:
        store = await EtcdStore.connect([dead, etcd.endpoint], dial_timeout=5)
        try:
            created = await store.create("/failover/a", b"1")
            assert await store.get("/failover/a") == created
            assert store.client.members[store.client.current].target == etcd.endpoint
        finally:
            await store.close()


async def test_no_member_reachable_is_unavailable() -> None:
    dead = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    with pytest.raises(StoreUnavailableError):
        await EtcdStore.connect(dead, dial_timeout=0.5)


async def test_watch_resumes_after_restart_without_gap_or_duplicate() -> None:
    async with etcd_cluster(1) as [etcd]:
        store = await EtcdStore.connect([etcd.endpoint], request_timeout=20)
        try:
            start = (await store.create("/restart-marker", b"")).mod_revision
            seen: list[WatchEvent] = []
            watch = store.watch("/restart/", after_revision=start)
            consumer = asyncio.create_task(collect(watch, seen, 20))
            for i in range(10):
                await store.create(f"/restart/{i:02}", b"before")
            await wait_for(lambda: len(seen) == 10, 10)

            await etcd.kill()
            await asyncio.sleep(0.3)  # let the client notice the broken stream
            await etcd.start()
            # Written while the watch may still be reconnecting: must not be lost.
            for i in range(10, 20):
                await store.create(f"/restart/{i:02}", b"after")
            await asyncio.wait_for(consumer, 20)

            assert [e.kv.key for e in seen] == [f"/restart/{i:02}" for i in range(20)]
            assert [e.revision for e in seen] == list(range(start + 1, start + 21))
            assert store.watch_mux.streams_opened >= 2
        finally:
            await store.close()


async def test_survives_losing_the_member_it_talks_to() -> None:
    async with etcd_cluster(3) as members:
        store = await EtcdStore.connect([m.endpoint for m in members], request_timeout=20)
        try:
            start = (await store.create("/ha-marker", b"")).mod_revision
            seen: list[WatchEvent] = []
            consumer = asyncio.create_task(
                collect(store.watch("/ha/", after_revision=start), seen, 10)
            )
            for i in range(5):
                await store.create(f"/ha/{i}", b"before")
            await wait_for(lambda: len(seen) == 5, 10)

            used = store.client.current
            await members[used].kill()
            for i in range(5, 10):
                await store.create(f"/ha/{i}", b"after")
            await asyncio.wait_for(consumer, 20)

            assert store.client.current != used
            assert [e.kv.key for e in seen] == [f"/ha/{i}" for i in range(10)]
            assert [e.revision for e in seen] == list(range(start + 1, start + 11))
        finally:
            await store.close()


async def test_a_thousand_watches_share_one_stream() -> None:
    async with run_etcd() as etcd:
        store = await EtcdStore.connect([etcd.endpoint])
        try:
            # A real revision to start from (0 would mean "from whenever etcd registers it").
            start = (await store.create("/many/start", b"")).mod_revision
            n = 1000
            watches = [store.watch(f"/many/{i}/", after_revision=start) for i in range(n)]
            firsts = [asyncio.create_task(first_batch(w)) for w in watches]
            await wait_for(lambda: len(store.watch_mux) == n, 20)
            assert store.watch_mux.streams_opened == 1

            limit = asyncio.Semaphore(64)

            async def write(i: int) -> None:
                async with limit:
                    await store.create(f"/many/{i}/obj", str(i).encode())

            await asyncio.gather(*(write(i) for i in range(n)))
            batches = await asyncio.wait_for(asyncio.gather(*firsts), 20)
            for i, batch in enumerate(batches):
                assert [(e.kv.key, e.kv.value) for e in batch] == [
                    (f"/many/{i}/obj", str(i).encode())
                ]
            assert store.watch_mux.streams_opened == 1
            await asyncio.gather(*(w.aclose() for w in watches))
            await wait_for(lambda: len(store.watch_mux) == 0, 5)
        finally:
            await store.close()


async def test_keys_with_a_ttl_share_leases() -> None:
    async with run_etcd() as etcd:
        store = await EtcdStore.connect([etcd.endpoint])
        try:
            await asyncio.gather(
                *(store.create(f"/ttl/{i}", b"x", ttl_seconds=300) for i in range(200))
            )
            leases = await store.client.unary(
                lambda m: m.lease.LeaseLeases, rpc_pb2.LeaseLeasesRequest()
            )
            # Creates straddling a window boundary may need a second lease, never more.
            assert 1 <= len(leases.leases) <= 2
            for lease in leases.leases:
                ttl = await store.client.unary(
                    lambda m: m.lease.LeaseTimeToLive, rpc_pb2.LeaseTimeToLiveRequest(ID=lease.ID)
                )
                assert 300 <= ttl.grantedTTL <= 311
        finally:
            await store.close()

"""What only the embedded SQLite store promises: a restart keeps state, revisions and
history; compaction keeps the file bounded; a slow watcher costs nobody else."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from capstan.store import CompactedError, EventType, Store, open_store
from capstan.store.sqlite import SqliteStore

from tests.integration.store.watching import (
    assert_batches_ordered,
    flat,
    next_batch,
    take,
    watching,
)

pytestmark = pytest.mark.integration


async def test_state_revision_and_history_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'state.db'}"
    store = await open_store(url)
    seed = await store.create("/seed", b"")  # so that "before /r/a" is not 0, "now"
    a = await store.create("/r/a", b"a1")
    a2 = await store.update("/r/a", b"a2", expected_mod_revision=a.mod_revision)
    b = await store.create("/r/b", b"b1")
    gone = await store.delete("/r/b")
    await store.close()

    reopened = await open_store(url)
    try:
        assert await reopened.current_revision() == gone.mod_revision
        assert await reopened.get("/r/a") == a2
        assert await reopened.get("/r/b") is None
        assert (await reopened.range("/r/", revision=b.mod_revision)).kvs == [a2, b]
        c = await reopened.create("/r/c", b"c1")
        assert c.mod_revision == gone.mod_revision + 1
        async with watching(reopened, "/r/", seed.mod_revision) as events:
            replayed = flat(await take(events, 5))
        assert [e.revision for e in replayed] == [
            a.mod_revision,
            a2.mod_revision,
            b.mod_revision,
            gone.mod_revision,
            c.mod_revision,
        ]
        assert replayed[3].type is EventType.DELETE and replayed[3].kv.value == b"b1"
    finally:
        await reopened.close()


async def test_a_second_process_cannot_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await open_store(f"sqlite://{path}")
    try:
        await store.create("/x", b"1")
        other = sqlite3.connect(path, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("SELECT count(*) FROM kv").fetchall()
        finally:
            other.close()
    finally:
        await store.close()


async def test_automatic_compaction_keeps_the_file_bounded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(str(path), compaction_interval=0.2, retain_revisions=50)
    value = b"x" * 4096
    try:
        kv = await store.create("/big", value)
        first = kv.mod_revision
        for _ in range(3000):  # 12 MB of history
            kv = await store.update("/big", value, expected_mod_revision=kv.mod_revision)
        await asyncio.sleep(1.0)
        with pytest.raises(CompactedError):
            await store.range("/", revision=first)
        kept = await store.range("/", revision=kv.mod_revision - 40)
        assert [k.key for k in kept.kvs] == ["/big"]
        async with watching(store, "/", kv.mod_revision - 40) as events:
            assert len(flat(await take(events, 40))) == 40
    finally:
        await store.close()
    assert path.stat().st_size < 2_000_000


async def _fill(store: Store, count: int) -> list[int]:
    return [(await store.create(f"/slow/{i:05d}", b"v")).mod_revision for i in range(count)]


async def test_a_slow_watcher_blocks_nobody_and_catches_up(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"), watch_buffer=10)
    try:
        async with (
            watching(store, "/slow/", 0) as slow,
            watching(store, "/slow/", 0) as fast,
        ):
            fast_seen = asyncio.create_task(take(fast, 500))
            stalled = asyncio.create_task(next_batch(slow))  # takes one batch, then stalls
            revisions = await asyncio.wait_for(_fill(store, 500), 10)
            fast_batches = await asyncio.wait_for(fast_seen, 10)
            slow_batches = [await stalled]
            slow_batches += await take(slow, 500 - len(slow_batches[0]))
        assert [e.revision for e in flat(fast_batches)] == revisions
        assert_batches_ordered(slow_batches)
        assert [e.revision for e in flat(slow_batches)] == revisions
    finally:
        await store.close()


async def test_a_watcher_behind_compaction_gets_compacted_error(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"), watch_buffer=10)
    try:
        async with watching(store, "/slow/", 0) as slow:
            first = asyncio.create_task(next_batch(slow))
            revisions = await _fill(store, 100)
            await first
            await store.compact(revisions[-1])
            with pytest.raises(CompactedError):
                await take(slow, 100)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("state.db", "no scheme"),
        ("sqlite://", "no database file"),
        ("sqlite://state.db?bogus=1", "unknown option"),
        ("etcd://", "no etcd endpoint"),
        ("redis://x", "unknown scheme"),
    ],
)
async def test_bad_store_urls_are_rejected(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        await open_store(url)


async def test_relative_sqlite_url_and_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite://rel.db?retain_revisions=5&compaction_interval=0.1")
    try:
        assert isinstance(store, SqliteStore)
        for i in range(20):
            await store.create(f"/k{i}", b"v")
        await asyncio.sleep(0.5)
        with pytest.raises(CompactedError):
            await store.range("/", revision=10)
        assert len((await store.range("/", revision=15)).kvs) == 15
    finally:
        await store.close()
    assert (tmp_path / "rel.db").exists()

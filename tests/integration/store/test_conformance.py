"""The Store contract, run against every backend: what the apiserver relies on must hold
for etcd and for the embedded SQLite store alike."""

from __future__ import annotations

import asyncio

import pytest
from capstan.store import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    Store,
    open_store,
)

from tests.integration.store.watching import (
    assert_batches_ordered,
    flat,
    next_batch,
    take,
    watching,
)

pytestmark = pytest.mark.integration


async def test_create_get_update_delete_track_revisions(store: Store, prefix: str) -> None:
    key = prefix + "a"
    before = await store.current_revision()
    assert await store.get(key) is None

    created = await store.create(key, b"one")
    assert (created.key, created.value) == (key, b"one")
    assert created.create_revision == created.mod_revision > before
    assert await store.current_revision() == created.mod_revision
    assert await store.get(key) == created

    updated = await store.update(key, b"two", expected_mod_revision=created.mod_revision)
    assert updated.value == b"two"
    assert updated.create_revision == created.create_revision
    assert updated.mod_revision > created.mod_revision
    assert await store.get(key) == updated

    deleted = await store.delete(key)
    assert (deleted.key, deleted.value) == (key, b"two")
    assert deleted.create_revision == created.create_revision
    assert deleted.mod_revision > updated.mod_revision
    assert await store.current_revision() == deleted.mod_revision
    assert await store.get(key) is None


async def test_create_existing_key_fails(store: Store, prefix: str) -> None:
    first = await store.create(prefix + "a", b"one")
    with pytest.raises(KeyExistsError) as raised:
        await store.create(prefix + "a", b"two")
    assert raised.value.key == prefix + "a"
    assert await store.get(prefix + "a") == first
    assert await store.current_revision() == first.mod_revision


async def test_update_conflict_carries_current_value(store: Store, prefix: str) -> None:
    key = prefix + "a"
    created = await store.create(key, b"one")
    winner = await store.update(key, b"two", expected_mod_revision=created.mod_revision)
    with pytest.raises(ConflictError) as raised:
        await store.update(key, b"three", expected_mod_revision=created.mod_revision)
    assert raised.value.key == key
    assert raised.value.current == winner
    assert await store.get(key) == winner

    with pytest.raises(KeyNotFoundError):
        await store.update(prefix + "absent", b"x", expected_mod_revision=winner.mod_revision)


async def test_delete_with_precondition(store: Store, prefix: str) -> None:
    key = prefix + "a"
    created = await store.create(key, b"one")
    updated = await store.update(key, b"two", expected_mod_revision=created.mod_revision)
    with pytest.raises(ConflictError) as raised:
        await store.delete(key, expected_mod_revision=created.mod_revision)
    assert raised.value.current == updated
    assert await store.get(key) == updated

    deleted = await store.delete(key, expected_mod_revision=updated.mod_revision)
    assert deleted.value == b"two"
    with pytest.raises(KeyNotFoundError):
        await store.delete(key)
    with pytest.raises(KeyNotFoundError):
        await store.delete(key, expected_mod_revision=deleted.mod_revision)


async def test_range_prefix_limit_and_pagination(store: Store, prefix: str) -> None:
    wanted = [f"{prefix}a/{i:02d}" for i in range(7)]
    for key in [*reversed(wanted), prefix + "ab", prefix + "b/00", prefix + "a"]:
        await store.create(key, key.encode())

    everything = await store.range(prefix + "a/")
    assert [kv.key for kv in everything.kvs] == wanted
    assert [kv.value for kv in everything.kvs] == [k.encode() for k in wanted]
    assert not everything.more
    assert everything.revision == await store.current_revision()

    whole = await store.range(prefix)
    assert [kv.key for kv in whole.kvs] == sorted(
        [*wanted, prefix + "ab", prefix + "b/00", prefix + "a"]
    )

    first = await store.range(prefix + "a/", limit=3)
    assert [kv.key for kv in first.kvs] == wanted[:3]
    assert first.more

    # Pages read at the first page's revision stay consistent while keys change.
    await store.create(prefix + "a/99", b"late")
    await store.delete(wanted[5])
    pages = [first]
    while pages[-1].more:
        pages.append(
            await store.range(
                prefix + "a/",
                start_after=pages[-1].kvs[-1].key,
                limit=3,
                revision=first.revision,
            )
        )
    assert [kv.key for page in pages for kv in page.kvs] == wanted
    assert len(pages) == 3
    assert all(page.revision == first.revision for page in pages)

    rest = await store.range(prefix + "a/", start_after=wanted[4])
    assert [kv.key for kv in rest.kvs] == [wanted[6], prefix + "a/99"]


async def test_range_at_an_old_revision(store: Store, prefix: str) -> None:
    a = await store.create(prefix + "a", b"a1")
    b = await store.create(prefix + "b", b"b1")
    old = await store.current_revision()
    await store.update(prefix + "a", b"a2", expected_mod_revision=a.mod_revision)
    await store.delete(prefix + "b")
    await store.create(prefix + "c", b"c1")

    then = await store.range(prefix, revision=old)
    assert then.kvs == [a, b]
    assert then.revision == old
    before_b = await store.range(prefix, revision=a.mod_revision)
    assert before_b.kvs == [a]

    now = await store.range(prefix)
    assert [(kv.key, kv.value) for kv in now.kvs] == [(prefix + "a", b"a2"), (prefix + "c", b"c1")]

    # A change racing the read (for SQLite: committed in the same transaction, just
    # before it) must not hide the key's old value.
    c = await store.get(prefix + "c")
    assert c is not None
    _, racing = await asyncio.gather(
        store.update(prefix + "c", b"c2", expected_mod_revision=c.mod_revision),
        store.range(prefix, revision=c.mod_revision),
    )
    assert [(kv.key, kv.value) for kv in racing.kvs] == [
        (prefix + "a", b"a2"),
        (prefix + "c", b"c1"),
    ]

    current = await store.current_revision()
    with pytest.raises(FutureRevisionError):
        await store.range(prefix, revision=current + 1000)


async def test_watch_replays_history_then_continues_live(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    a = await store.create(prefix + "a", b"a1")
    a2 = await store.update(prefix + "a", b"a2", expected_mod_revision=a.mod_revision)
    b = await store.create(prefix + "b", b"b1")
    gone = await store.delete(prefix + "a")

    async with watching(store, prefix, start) as events:
        replayed = flat(await take(events, 4))
        live_b = await store.update(prefix + "b", b"b2", expected_mod_revision=b.mod_revision)
        c = await store.create(prefix + "c", b"c1")
        live_batches = await take(events, 2)

    everything = replayed + flat(live_batches)
    assert_batches_ordered([replayed, *live_batches])
    assert [e.revision for e in everything] == [
        a.mod_revision,
        a2.mod_revision,
        b.mod_revision,
        gone.mod_revision,
        live_b.mod_revision,
        c.mod_revision,
    ]
    assert [e.type for e in everything] == [EventType.PUT] * 3 + [EventType.DELETE] + [
        EventType.PUT
    ] * 2
    assert [e.is_create for e in everything] == [True, False, True, False, False, True]

    assert everything[0].kv == a and everything[0].prev is None
    assert everything[1].kv == a2 and everything[1].prev == a
    # A DELETE carries the deleted value, at the delete's revision.
    delete = everything[3]
    assert delete.kv == gone
    assert delete.kv.value == b"a2" and delete.prev == a2
    assert everything[4].kv == live_b and everything[4].prev == b


async def test_watch_from_now_sees_only_later_changes(store: Store, prefix: str) -> None:
    await store.create(prefix + "before", b"x")
    async with watching(store, prefix, 0) as events:
        first = asyncio.create_task(next_batch(events))
        await asyncio.sleep(0.5)  # etcd establishes a watch asynchronously
        after = await store.create(prefix + "after", b"y")
        batch = await asyncio.wait_for(first, 10)
    assert [e.kv for e in batch] == [after]


async def test_watch_sees_only_its_prefix(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    await store.create(prefix + "b/1", b"other")
    await store.create(prefix + "ab", b"sibling")
    mine = await store.create(prefix + "a/1", b"mine")
    async with watching(store, prefix + "a/", start) as events:
        replayed = await take(events, 1)
        await store.create(prefix + "b/2", b"other")
        live = await store.create(prefix + "a/2", b"mine")
        later = await take(events, 1)
    assert [e.kv for e in flat(replayed)] == [mine]
    assert [e.kv for e in flat(later)] == [live]


async def test_watch_started_during_writes_has_no_gap_or_duplicate(
    store: Store, prefix: str
) -> None:
    start = await store.current_revision()
    written: list[int] = []
    underway = asyncio.Event()

    async def writer(n: int) -> None:
        for i in range(n):
            written.append((await store.create(f"{prefix}{i:04d}", b"v")).mod_revision)
            if i == 30:
                underway.set()

    first_half = asyncio.create_task(writer(100))
    await underway.wait()
    async with watching(store, prefix, start) as events:
        batches = [await anext(events)]  # replay starts while the writer keeps going
        await first_half
        batches += await take(events, 100 - len(batches[0]))
    assert_batches_ordered(batches)
    assert [e.revision for e in flat(batches)] == written


async def test_concurrent_creates_of_one_key_have_one_winner(store: Store, prefix: str) -> None:
    results = await asyncio.gather(
        *(store.create(prefix + "contended", str(i).encode()) for i in range(32)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, KeyExistsError) for r in losers)
    assert await store.get(prefix + "contended") == winners[0]


async def test_concurrent_writers_get_distinct_revisions(store: Store, prefix: str) -> None:
    start = await store.current_revision()

    async def writer(w: int) -> list[int]:
        revisions = []
        for i in range(4):
            kv = await store.create(f"{prefix}{w:02d}/{i}", b"v")
            revisions.append(kv.mod_revision)
        return revisions

    per_writer = await asyncio.gather(*(writer(w) for w in range(64)))
    revisions = [r for revs in per_writer for r in revs]
    assert len(set(revisions)) == 256
    assert all(revs == sorted(revs) for revs in per_writer)
    assert min(revisions) > start
    async with watching(store, prefix, start) as events:
        batches = await take(events, 256)
    assert_batches_ordered(batches)
    assert [e.revision for e in flat(batches)] == sorted(revisions)


async def test_compaction_forgets_old_history(store: Store, prefix: str) -> None:
    a = await store.create(prefix + "a", b"a1")
    old = a.mod_revision
    b = await store.create(prefix + "b", b"b1")
    a2 = await store.update(prefix + "a", b"a2", expected_mod_revision=a.mod_revision)
    compact_at = a2.mod_revision
    c = await store.create(prefix + "c", b"c1")

    await store.compact(compact_at)

    with pytest.raises(CompactedError) as raised:
        await store.range(prefix, revision=old)
    assert raised.value.compact_revision >= compact_at
    async with watching(store, prefix, old - 1) as events:
        with pytest.raises(CompactedError):
            await anext(events)

    # The state at the compaction revision itself stays readable, and so does
    # history after it.
    at = await store.range(prefix, revision=compact_at)
    assert at.kvs == [a2, b]
    async with watching(store, prefix, compact_at) as events:
        assert [e.kv for e in flat(await take(events, 1))] == [c]

    with pytest.raises(FutureRevisionError):
        await store.compact(await store.current_revision() + 1000)


async def test_ttl_expiry_deletes_with_an_event(store: Store, prefix: str) -> None:
    # etcd grants leases of at least ~2 s with the default election timeout.
    start = await store.current_revision()
    leased = await store.create(prefix + "leased", b"x", ttl_seconds=2)
    kept = await store.create(prefix + "kept", b"y")
    async with watching(store, prefix, start) as events:
        batches = await take(events, 3, within=15)
    events_seen = flat(batches)
    assert [e.kv for e in events_seen[:2]] == [leased, kept]
    expiry = events_seen[2]
    assert expiry.type is EventType.DELETE
    assert (expiry.kv.key, expiry.kv.value) == (leased.key, b"x")
    assert expiry.prev == leased
    assert await store.get(prefix + "leased") is None
    assert await store.get(prefix + "kept") == kept


async def test_update_can_change_ttl(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"x", ttl_seconds=2)
    updated = await store.update(prefix + "a", b"y", expected_mod_revision=created.mod_revision)
    await asyncio.sleep(3.5)
    assert await store.get(prefix + "a") == updated


async def test_close_ends_watches(store_url: str, prefix: str) -> None:
    own = await open_store(store_url)
    events = own.watch(prefix, after_revision=0)
    pending = asyncio.create_task(next_batch(events))
    await asyncio.sleep(0.3)
    await own.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 10)


async def test_guarded_create_holds_only_while_the_guard_key_is_unchanged(
    store: Store, prefix: str
) -> None:
    guard = await store.create(prefix + "namespace", b"active")
    made = await store.create(
        prefix + "obj1", b"x", guard=(prefix + "namespace", guard.mod_revision)
    )
    assert made.mod_revision > guard.mod_revision

    moved = await store.update(
        prefix + "namespace", b"terminating", expected_mod_revision=guard.mod_revision
    )
    with pytest.raises(ConflictError) as raised:
        await store.create(prefix + "obj2", b"x", guard=(prefix + "namespace", guard.mod_revision))
    assert raised.value.key == prefix + "namespace"
    assert raised.value.current is not None
    assert raised.value.current.mod_revision == moved.mod_revision
    assert await store.get(prefix + "obj2") is None

    # An existing key is reported as such even when the guard also moved.
    with pytest.raises(KeyExistsError):
        await store.create(prefix + "obj1", b"y", guard=(prefix + "namespace", 1))

    await store.delete(prefix + "namespace")
    with pytest.raises(ConflictError) as raised:
        await store.create(prefix + "obj3", b"x", guard=(prefix + "namespace", moved.mod_revision))
    assert raised.value.current is None

"""Helpers to consume a Store watch in tests without leaking the iterator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from capstan.store import Store, WatchEvent


@contextlib.asynccontextmanager
async def watching(
    store: Store, prefix: str, after_revision: int
) -> AsyncIterator[AsyncIterator[list[WatchEvent]]]:
    events = store.watch(prefix, after_revision=after_revision)
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def take(
    events: AsyncIterator[list[WatchEvent]], count: int, within: float = 10.0
) -> list[list[WatchEvent]]:
    """The next batches, until they hold at least count events."""
    batches: list[list[WatchEvent]] = []
    async with asyncio.timeout(within):
        while sum(len(b) for b in batches) < count:
            batches.append(await anext(events))
    return batches


def flat(batches: list[list[WatchEvent]]) -> list[WatchEvent]:
    return [event for batch in batches for event in batch]


def assert_batches_ordered(batches: list[list[WatchEvent]]) -> None:
    revisions = [event.revision for event in flat(batches)]
    assert revisions == sorted(set(revisions)), "events out of order or duplicated"
    assert all(batch for batch in batches), "empty batch"


async def next_batch(events: AsyncIterator[list[WatchEvent]]) -> list[WatchEvent]:
    """anext() as a coroutine, for asyncio.create_task."""
    return await anext(events)

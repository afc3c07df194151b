"""Shared etcd leases for keys with a TTL.

A lease per key would make every Event (the main TTL user) cost an extra round trip and
leave etcd tracking one lease per object. Keys whose expiry falls in the same time window
share one lease instead: the lease is granted on demand to end at the window's end, so a
key lives between ttl and ttl plus one window. The window grows with the TTL (a tenth of
it, from 1 s up to 10 s) so short TTLs stay accurate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable


def window_seconds(ttl_seconds: int) -> int:
    return max(1, min(10, ttl_seconds // 10))


class LeasePool:
    """Maps expiry windows to granted lease ids. grant(ttl) -> lease id asks etcd."""

    def __init__(
        self,
        grant: Callable[[int], Awaitable[int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._grant = grant
        self._clock = clock
        # window end (on clock, whole seconds) -> lease id
        self._leases: dict[int, int] = {}
        self._pending: dict[int, asyncio.Future[int]] = {}

    def __len__(self) -> int:
        return len(self._leases)

    async def lease_for(self, ttl_seconds: int) -> int:
        """A lease that expires at least ttl_seconds from now and at most one window later."""
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = self._clock()
        step = window_seconds(ttl_seconds)
        end = math.ceil((now + ttl_seconds) / step) * step
        lease = self._leases.get(end)
        if lease is not None:
            return lease
        pending = self._pending.get(end)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[end] = future
        try:
            lease = await self._grant(max(1, math.ceil(end - now)))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # waiters re-raise it; mark it seen for when there are none
            raise
        finally:
            del self._pending[end]
        self._leases[end] = lease
        future.set_result(lease)
        self._prune(now)
        return lease

    def forget(self, lease_id: int) -> None:
        """etcd no longer knows lease_id (expired early, revoked): never hand it out again."""
        for end, lease in list(self._leases.items()):
            if lease == lease_id:
                del self._leases[end]

    def _prune(self, now: float) -> None:
        for end in [end for end in self._leases if end <= now]:
            del self._leases[end]

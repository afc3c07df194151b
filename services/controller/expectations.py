"""Creation/deletion expectations (Kubernetes' ControllerExpectations).

A controller that has just asked for N pods must not ask again before its cache has seen
them, or a slow watch turns one scale-up into two. Before acting it records how many adds
and deletes it expects for the owner's key; every observed pod add/delete lowers the
count; the owner is synced again only once the counts reach zero (or the expectation is
older than EXPECTATION_TTL, so a lost event cannot wedge a controller forever).
Deletions are tracked by pod key, so a delete observed twice (graceful deletion then
removal) is counted once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Kubernetes' ExpectationsTimeout.
EXPECTATION_TTL = 300.0


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = field(default_factory=time.monotonic)


class Expectations:
    def __init__(self, ttl: float = EXPECTATION_TTL) -> None:
        self.ttl = ttl
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        done = exp.adds <= 0 and not exp.deletes
        return done or time.monotonic() - exp.stamp > self.ttl

    def expect_creations(self, key: str, count: int) -> None:
        exp = self._by_key.setdefault(key, _Expectation())
        exp.adds += count
        exp.stamp = time.monotonic()

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        exp = self._by_key.setdefault(key, _Expectation())
        exp.deletes.update(pod_keys)
        exp.stamp = time.monotonic()

    def creation_observed(self, key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None and exp.adds > 0:
            exp.adds -= 1

    def creation_failed(self, key: str, count: int = 1) -> None:
        """A create that failed (or was skipped) will never be observed."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds = max(0, exp.adds - count)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._by_key.get(key)
        return (0, 0) if exp is None else (exp.adds, len(exp.deletes))

"""The Store contract every backend (etcd, embedded SQLite) implements.

It is etcd's model, reduced to what an apiserver needs: one global, monotonically
increasing revision; each key remembers the revision that created it and the one that
last modified it; writes are conditional on those revisions (optimistic concurrency);
a watch replays every change after a revision, in revision order, until that history
is compacted away. Keys are '/'-separated strings, values are opaque bytes
(serialised protobuf).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For PUT, kv is the new value; for DELETE, kv carries the deleted
    value with mod_revision set to the revision of the delete. prev is the value
    before the change (None for a create)."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    # The store revision the range was read at.
    revision: int
    # True when a limit cut the result short.
    more: bool


class StoreError(Exception):
    """Base of every error a Store raises on purpose."""


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class ConflictError(StoreError):
    """A conditional write saw another revision than it expected."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        rev = current.mod_revision if current else "absent"
        super().__init__(f"key {key!r} was modified concurrently (now at revision {rev})")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    """The requested revision is older than the oldest history kept."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted; oldest available is {compact_revision}"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


class StoreUnavailableError(StoreError):
    """The backend cannot be reached right now; the caller may retry."""


class Store(abc.ABC):
    """A revisioned key-value store. All methods are safe to call concurrently."""

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None:
        """The current value of key, or None."""

    @abc.abstractmethod
    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        """Keys starting with prefix, in key order, strictly after start_after when given.

        limit 0 means no limit. revision 0 reads the latest state; a positive revision
        reads the state as of that revision (CompactedError if it is gone,
        FutureRevisionError if it is ahead).
        """

    @abc.abstractmethod
    async def create(
        self,
        key: str,
        value: bytes,
        *,
        ttl_seconds: int = 0,
        guard: tuple[str, int] | None = None,
    ) -> KeyValue:
        """Write key only if absent (KeyExistsError otherwise). ttl_seconds > 0 makes the
        key expire (deleted with a normal DELETE event) about that long after the write.

        guard (key, mod_revision) makes the write also conditional on another key still
        being at that revision, atomically (ConflictError naming the guard key, with its
        current value, otherwise): e.g. "create this pod only while its namespace is the
        version I checked", without a read before every write."""

    @abc.abstractmethod
    async def update(
        self, key: str, value: bytes, *, expected_mod_revision: int, ttl_seconds: int = 0
    ) -> KeyValue:
        """Replace key only if its mod_revision is still expected_mod_revision.

        KeyNotFoundError if the key is absent, ConflictError (carrying the current value)
        if another write came first."""

    @abc.abstractmethod
    async def delete(self, key: str, *, expected_mod_revision: int = 0) -> KeyValue:
        """Delete key, optionally only at expected_mod_revision. Returns the deleted value
        with mod_revision set to the delete's revision. KeyNotFoundError / ConflictError."""

    @abc.abstractmethod
    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[WatchEvent]]:
        """Every change under prefix with revision > after_revision, in revision order, as
        batches (one batch never splits a revision). after_revision 0 means from now.

        Raises CompactedError (on first iteration) when after_revision is already
        compacted. The iterator ends only when the store closes or the caller stops
        iterating (aclose)."""

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The revision of the latest write (0 for an empty store)."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history before revision (etcd semantics): afterwards a range at a
        revision < revision, or a watch with after_revision < revision - 1 (one that would
        need an event older than revision), raises CompactedError. The state at revision
        itself stays readable and events from revision on stay replayable."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and end every open watch."""

"""The embedded SQLite Store: etcd's revision model in one file, for a single apiserver.

Durability: WAL journal with synchronous=NORMAL. A committed write survives a process
crash; a power loss may drop the last few commits (never corrupts the file). Every
write still gets a revision only once its transaction committed, so a client never
sees a revision that a crash could take back while the process lives.

The database file is opened with locking_mode=EXCLUSIVE: the revision counter lives in
this process, so a second process writing the same file would break the model; SQLite
refuses it ("database is locked") instead.

Threading: sqlite3 blocks, so every statement runs on one dedicated thread. Operations
queue on the event loop and the writer task hands the whole queue to the thread as ONE
transaction (group commit); each operation still gets its own revision and its own
success or failure, and watchers see the events of a transaction only after it commits.

History: the `log` table has one row per revision with the value before the change, so
a range at an old revision N is the current rows unchanged since N plus, for every key
changed after N, the "before" value of its first change after N. Compaction is then
just deleting log rows below the compact revision (in chunks, then an incremental
vacuum), which keeps the file bounded.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from capstan.store.interface import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    Store,
    StoreError,
    StoreUnavailableError,
    WatchEvent,
)

T = TypeVar("T")

# A catch-up read of the log returns at most this many rows, so a watcher far behind
# does not hold the database thread for long.
_LOG_PAGE = 1000
# Largest number of queued operations committed in one transaction.
_MAX_BATCH = 2048
# Expired keys deleted per sweep transaction; the rest follow in the next sweep.
_EXPIRE_BATCH = 1000
# Compacted log rows deleted per transaction, so compaction never stalls writers long.
_PURGE_CHUNK = 5000
# Free pages returned to the filesystem per vacuum step.
_VACUUM_PAGES = 2000
# How often TTL expiry is checked (etcd checks its leases every 500 ms too).
_EXPIRY_INTERVAL = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compact_revision', 0);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB,
    create_revision INTEGER NOT NULL,
    prev_value BLOB,
    prev_create_revision INTEGER,
    prev_mod_revision INTEGER
);
"""

_LOG_COLUMNS = (
    "revision, key, deleted, value, create_revision, prev_value, prev_create_revision, "
    "prev_mod_revision"
)

_LogRow = tuple[int, str, int, bytes | None, int, bytes | None, int | None, int | None]


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with prefix (None: no
    bound). SQLite compares TEXT as UTF-8 bytes, which orders like code points."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    nxt = ord(stripped[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be encoded; skip to the next scalar
        nxt = 0xE000
    return stripped[:-1] + chr(nxt)


def _key_condition(prefix: str, start_after: str = "") -> tuple[str, dict[str, str]]:
    conditions: list[str] = []
    params: dict[str, str] = {}
    if start_after and start_after >= prefix:
        conditions.append("key > :lo")
        params["lo"] = start_after
    elif prefix:
        conditions.append("key >= :lo")
        params["lo"] = prefix
    end = _prefix_end(prefix)
    if end is not None:
        conditions.append("key < :hi")
        params["hi"] = end
    return (" AND ".join(conditions) or "1"), params


def _event_from_row(row: _LogRow) -> WatchEvent:
    revision, key, deleted, value, create_rev, prev_value, prev_create, prev_mod = row
    prev = (
        KeyValue(key, cast(bytes, prev_value), cast(int, prev_create), prev_mod)
        if prev_mod is not None
        else None
    )
    if deleted:
        assert prev is not None
        return WatchEvent(EventType.DELETE, KeyValue(key, prev.value, create_rev, revision), prev)
    return WatchEvent(EventType.PUT, KeyValue(key, cast(bytes, value), create_rev, revision), prev)


@dataclass(slots=True)
class _BatchResult:
    # Per operation: (True, result) or (False, exception).
    outcomes: list[tuple[bool, Any]]
    events: list[WatchEvent]
    revision: int


class _Database:
    """Everything that touches sqlite3. Only ever called on the store's one thread."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self.revision = 0
        self.compact_revision = 0
        self._incremental_vacuum = False
        self._events: list[WatchEvent] = []
        self._log_rows: list[_LogRow] = []

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailableError("the SQLite store is not open")
        return self._conn

    # -- lifecycle ---------------------------------------------------------------

    def open(self) -> int:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            # auto_vacuum only takes effect before the first table exists (new files).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.execute("PRAGMA wal_autocheckpoint = 4000")
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            # 2 = INCREMENTAL; a file created elsewhere without it is only purged.
            self._incremental_vacuum = conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.revision = int(meta["revision"])
        self.compact_revision = int(meta["compact_revision"])
        return self.revision

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- group commit ------------------------------------------------------------

    def run_batch(self, calls: list[Callable[[], Any]]) -> _BatchResult:
        """Run calls in one transaction. A StoreError fails only its own call; anything
        else rolls the transaction back and the calls are retried one per transaction,
        so one bad call cannot fail its neighbours."""
        try:
            return self._run_transaction(calls)
        except Exception as exc:
            if len(calls) == 1:
                return _BatchResult([(False, _unavailable(exc))], [], self.revision)
        outcomes: list[tuple[bool, Any]] = []
        events: list[WatchEvent] = []
        for call in calls:
            try:
                single = self._run_transaction([call])
            except Exception as exc:
                outcomes.append((False, _unavailable(exc)))
                continue
            outcomes.extend(single.outcomes)
            events.extend(single.events)
        return _BatchResult(outcomes, events, self.revision)

    def _run_transaction(self, calls: list[Callable[[], Any]]) -> _BatchResult:
        conn = self.conn
        start_revision, start_compact = self.revision, self.compact_revision
        self._events = []
        self._log_rows = []
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN")
        try:
            for call in calls:
                try:
                    outcomes.append((True, call()))
                except StoreError as exc:
                    outcomes.append((False, exc))
            self._flush_log()
            if self.revision != start_revision:
                conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (self.revision,))
            if self.compact_revision != start_compact:
                conn.execute(
                    "UPDATE meta SET value = ? WHERE name = 'compact_revision'",
                    (self.compact_revision,),
                )
            conn.execute("COMMIT")
        except BaseException:
            self.revision, self.compact_revision = start_revision, start_compact
            self._events = []
            self._log_rows = []
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        events, self._events, self._log_rows = self._events, [], []
        return _BatchResult(outcomes, events, self.revision)

    def _flush_log(self) -> None:
        """Write the log rows recorded so far. Deferred to one executemany per batch for
        speed; every read of the log calls it first, so a read sees the writes queued
        before it in the same batch."""
        if self._log_rows:
            self.conn.executemany(
                f"INSERT INTO log ({_LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._log_rows,
            )
            self._log_rows = []

    def _record(self, event: WatchEvent) -> None:
        prev = event.prev
        self._events.append(event)
        self._log_rows.append(
            (
                event.kv.mod_revision,
                event.kv.key,
                1 if event.type is EventType.DELETE else 0,
                None if event.type is EventType.DELETE else event.kv.value,
                event.kv.create_revision,
                prev.value if prev else None,
                prev.create_revision if prev else None,
                prev.mod_revision if prev else None,
            )
        )

    # -- operations (each runs inside run_batch's transaction) -------------------

    def _current(self, key: str) -> KeyValue | None:
        row = self.conn.execute(
            "SELECT value, create_revision, mod_revision FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return KeyValue(key, row[0], row[1], row[2]) if row else None

    def get(self, key: str) -> KeyValue | None:
        return self._current(key)

    def create(
        self, key: str, value: bytes, ttl_seconds: int, guard: tuple[str, int] | None = None
    ) -> KeyValue:
        if guard is not None:
            if self._current(key) is not None:
                raise KeyExistsError(key)
            current = self._current(guard[0])
            if current is None or current.mod_revision != guard[1]:
                raise ConflictError(guard[0], current)
        revision = self.revision + 1
        cursor = self.conn.execute(
            "INSERT INTO kv (key, value, create_revision, mod_revision, expires_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (key, value, revision, revision, _expires_at(ttl_seconds)),
        )
        if cursor.rowcount != 1:
            raise KeyExistsError(key)
        self.revision = revision
        kv = KeyValue(key, value, revision, revision)
        self._record(WatchEvent(EventType.PUT, kv, None))
        return kv

    def update(
        self, key: str, value: bytes, expected_mod_revision: int, ttl_seconds: int
    ) -> KeyValue:
        current = self._current(key)
        if current is None:
            raise KeyNotFoundError(key)
        if current.mod_revision != expected_mod_revision:
            raise ConflictError(key, current)
        revision = self.revision + 1
        self.conn.execute(
            "UPDATE kv SET value = ?, mod_revision = ?, expires_at = ? WHERE key = ?",
            (value, revision, _expires_at(ttl_seconds), key),
        )
        self.revision = revision
        kv = KeyValue(key, value, current.create_revision, revision)
        self._record(WatchEvent(EventType.PUT, kv, current))
        return kv

    def delete(self, key: str, expected_mod_revision: int) -> KeyValue:
        current = self._current(key)
        if current is None:
            raise KeyNotFoundError(key)
        if expected_mod_revision and current.mod_revision != expected_mod_revision:
            raise ConflictError(key, current)
        return self._delete(current)

    def _delete(self, current: KeyValue) -> KeyValue:
        revision = self.revision + 1
        self.conn.execute("DELETE FROM kv WHERE key = ?", (current.key,))
        self.revision = revision
        kv = KeyValue(current.key, current.value, current.create_revision, revision)
        self._record(WatchEvent(EventType.DELETE, kv, current))
        return kv

    def expire(self, now: float) -> int:
        rows = self.conn.execute(
            "SELECT key, value, create_revision, mod_revision FROM kv "
            "WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            (now, _EXPIRE_BATCH),
        ).fetchall()
        for key, value, create_revision, mod_revision in rows:
            self._delete(KeyValue(key, value, create_revision, mod_revision))
        return len(rows)

    def range(self, prefix: str, start_after: str, limit: int, revision: int) -> RangeResult:
        if revision > self.revision:
            raise FutureRevisionError(revision, self.revision)
        if 0 < revision < self.compact_revision:
            raise CompactedError(revision, self.compact_revision)
        condition, params = _key_condition(prefix, start_after)
        sql_limit = limit + 1 if limit > 0 else -1
        if revision in (0, self.revision):
            rows = self.conn.execute(
                "SELECT key, value, create_revision, mod_revision FROM kv "
                f"WHERE {condition} ORDER BY key LIMIT :limit",
                {**params, "limit": sql_limit},
            ).fetchall()
            revision = self.revision
        else:
            self._flush_log()
            # Unchanged since `revision`: the current row. Changed since: the value
            # before its first change after `revision` (absent if that change created it).
            rows = self.conn.execute(
                "WITH changed AS ("
                f"  SELECT key, MIN(revision) AS first FROM log WHERE revision > :rev AND "
                f"  {condition} GROUP BY key) "
                "SELECT key, value, create_revision, mod_revision FROM kv "
                f"WHERE {condition} AND mod_revision <= :rev "
                "UNION ALL "
                "SELECT log.key, log.prev_value, log.prev_create_revision, log.prev_mod_revision "
                "FROM changed JOIN log ON log.revision = changed.first "
                "WHERE log.prev_mod_revision IS NOT NULL "
                "ORDER BY 1 LIMIT :limit",
                {**params, "rev": revision, "limit": sql_limit},
            ).fetchall()
        more = 0 < limit < len(rows)
        kvs = [KeyValue(r[0], r[1], r[2], r[3]) for r in (rows[:limit] if more else rows)]
        return RangeResult(kvs=kvs, revision=revision, more=more)

    def read_log(self, prefix: str, from_revision: int) -> tuple[list[WatchEvent], int, bool]:
        """Events under prefix from from_revision on: (events, revision read at, whether
        the events reach that revision)."""
        if from_revision < self.compact_revision:
            raise CompactedError(from_revision - 1, self.compact_revision)
        condition, params = _key_condition(prefix)
        self._flush_log()
        rows = self.conn.execute(
            f"SELECT {_LOG_COLUMNS} FROM log WHERE revision >= :from AND {condition} "
            "ORDER BY revision LIMIT :limit",
            {**params, "from": from_revision, "limit": _LOG_PAGE},
        ).fetchall()
        return [_event_from_row(row) for row in rows], self.revision, len(rows) < _LOG_PAGE

    def compact(self, revision: int) -> None:
        if revision > self.revision:
            raise FutureRevisionError(revision, self.revision)
        # Already compacted that far: nothing left to forget (etcd's clients treat its
        # "already compacted" answer the same way).
        self.compact_revision = max(self.compact_revision, revision)

    def compact_to_retain(self, retain_revisions: int) -> bool:
        target = self.revision - retain_revisions
        if target <= self.compact_revision:
            return False
        self.compact_revision = target
        return True

    def purge(self) -> int:
        """Delete one chunk of compacted log rows; the count deleted (0: done)."""
        self._flush_log()
        oldest = self.conn.execute("SELECT MIN(revision) FROM log").fetchone()[0]
        if oldest is None or oldest >= self.compact_revision:
            return 0
        bound = min(oldest + _PURGE_CHUNK, self.compact_revision)
        return self.conn.execute("DELETE FROM log WHERE revision < ?", (bound,)).rowcount

    def vacuum_step(self) -> bool:
        """Return up to _VACUUM_PAGES free pages to the filesystem; whether more remain.
        Runs outside run_batch: executescript commits any open transaction."""
        if not self._incremental_vacuum:
            return False
        before = self._free_pages()
        self.conn.executescript(f"PRAGMA incremental_vacuum({_VACUUM_PAGES});")
        after = self._free_pages()
        return 0 < after < before

    def _free_pages(self) -> int:
        return int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])


def _expires_at(ttl_seconds: int) -> float | None:
    return time.time() + ttl_seconds if ttl_seconds > 0 else None


def _unavailable(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.OperationalError):
        unavailable = StoreUnavailableError(f"SQLite: {exc}")
        unavailable.__cause__ = exc
        return unavailable
    return exc


class _Watcher:
    """One watch's live buffer. Bounded: on overflow the buffer is dropped and the watch
    reads the missed events back from the log, so a slow consumer never blocks writers
    and only fails (CompactedError) if it falls behind the retained history."""

    __slots__ = ("buffered", "capacity", "closed", "events", "overflowed", "prefix", "wake")

    def __init__(self, prefix: str, capacity: int) -> None:
        self.prefix = prefix
        self.capacity = capacity
        self.events: collections.deque[list[WatchEvent]] = collections.deque()
        self.buffered = 0
        self.overflowed = False
        self.closed = False
        self.wake = asyncio.Event()

    def offer(self, events: list[WatchEvent]) -> None:
        if self.overflowed:
            return
        if self.buffered + len(events) > self.capacity:
            self.reset()
            self.overflowed = True
        else:
            self.events.append(events)
            self.buffered += len(events)
        self.wake.set()

    def reset(self) -> None:
        self.events.clear()
        self.buffered = 0
        self.overflowed = False

    def take(self) -> list[WatchEvent]:
        taken = [event for batch in self.events for event in batch]
        self.reset()
        return taken


class SqliteStore(Store):
    """An embedded Store in one SQLite file (see the module docstring for the model).

    Background tasks: TTL expiry every 0.5 s, and a compaction every compaction_interval
    seconds that keeps the last retain_revisions revisions of history. watch_buffer bounds
    the events buffered per watcher before it falls back to reading the log.
    """

    def __init__(
        self,
        path: str,
        *,
        compaction_interval: float = 60.0,
        retain_revisions: int = 10000,
        watch_buffer: int = 10000,
    ) -> None:
        self._db = _Database(path)
        self._compaction_interval = compaction_interval
        self._retain_revisions = retain_revisions
        self._watch_buffer = watch_buffer
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._start_lock = asyncio.Lock()
        self._purge_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._wake_writer = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._watchers: set[_Watcher] = set()
        # Revision of the last transaction whose events reached the watchers.
        self._revision = 0

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the database and start the background tasks. Every operation calls it;
        call it first to surface a bad path at startup."""
        async with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise StoreUnavailableError("the SQLite store is closed")
            executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="capstan-sqlite")
            try:
                self._revision = await asyncio.get_running_loop().run_in_executor(
                    executor, self._db.open
                )
            except BaseException:
                executor.shutdown(wait=False)
                raise
            self._executor = executor
            self._writer = asyncio.create_task(self._write_loop(), name="sqlite-writer")
            self._background = [
                asyncio.create_task(self._expire_loop(), name="sqlite-expiry"),
                asyncio.create_task(self._compact_loop(), name="sqlite-compaction"),
            ]
            self._started = True

    async def close(self) -> None:
        async with self._start_lock:
            if self._closed:
                return
            self._closed = True
            if not self._started:
                return
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wake_writer.set()
        if self._writer is not None:
            await self._writer
        for watcher in self._watchers:
            watcher.closed = True
            watcher.wake.set()
        executor = self._executor
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._db.close)
            executor.shutdown(wait=False)

    # -- the writer: group commit on the database thread -------------------------

    async def _submit(self, call: Callable[[], T]) -> T:
        if not self._started:
            await self.start()
        if self._closed:
            raise StoreUnavailableError("the SQLite store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((call, future))
        self._wake_writer.set()
        return cast(T, await future)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wake_writer.clear()
                await self._wake_writer.wait()
                continue
            taken = self._pending[:_MAX_BATCH]
            del self._pending[:_MAX_BATCH]
            live = [(call, future) for call, future in taken if not future.cancelled()]
            if not live:
                continue
            try:
                result = await loop.run_in_executor(
                    self._executor, self._db.run_batch, [call for call, _ in live]
                )
            except Exception as exc:  # the executor itself failed; fail the calls
                for _, future in live:
                    if not future.done():
                        future.set_exception(_unavailable(exc))
                continue
            self._revision = result.revision
            if result.events:
                self._dispatch(result.events)
            for (_, future), (ok, value) in zip(live, result.outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _dispatch(self, events: list[WatchEvent]) -> None:
        for watcher in self._watchers:
            prefix = watcher.prefix
            matching = events if not prefix else [e for e in events if e.kv.key.startswith(prefix)]
            if matching:
                watcher.offer(matching)

    async def _run_maintenance(self, job: Callable[[], T]) -> T:
        """Run job on the database thread outside any batch (for statements that must
        not run inside a transaction)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    # -- background tasks --------------------------------------------------------

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(_EXPIRY_INTERVAL)
            with contextlib.suppress(StoreError):
                while await self._submit(functools.partial(self._db.expire, time.time())):
                    pass

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self._compaction_interval)
            with contextlib.suppress(StoreError):
                if await self._submit(
                    functools.partial(self._db.compact_to_retain, self._retain_revisions)
                ):
                    await self._purge()

    async def _purge(self) -> None:
        async with self._purge_lock:
            while await self._submit(self._db.purge):
                pass
            while not self._closed and await self._run_maintenance(self._db.vacuum_step):
                pass

    # -- Store -------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return await self._submit(functools.partial(self._db.get, key))

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        return await self._submit(
            functools.partial(self._db.range, prefix, start_after, limit, revision)
        )

    async def create(
        self,
        key: str,
        value: bytes,
        *,
        ttl_seconds: int = 0,
        guard: tuple[str, int] | None = None,
    ) -> KeyValue:
        return await self._submit(
            functools.partial(self._db.create, key, value, ttl_seconds, guard)
        )

    async def update(
        self, key: str, value: bytes, *, expected_mod_revision: int, ttl_seconds: int = 0
    ) -> KeyValue:
        return await self._submit(
            functools.partial(self._db.update, key, value, expected_mod_revision, ttl_seconds)
        )

    async def delete(self, key: str, *, expected_mod_revision: int = 0) -> KeyValue:
        return await self._submit(functools.partial(self._db.delete, key, expected_mod_revision))

    async def current_revision(self) -> int:
        if not self._started:
            await self.start()
        return self._revision

    async def compact(self, revision: int) -> None:
        await self._submit(functools.partial(self._db.compact, revision))
        await self._purge()

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[WatchEvent]]:
        """ "From now" (after_revision 0) means from this call, not from the first
        iteration, so a write made between the two is not missed."""
        if after_revision < 0:
            raise ValueError(f"after_revision must be >= 0, got {after_revision}")
        start: int | None = after_revision
        if after_revision == 0:
            start = self._revision if self._started else None
        return self._watch(prefix, start)

    async def _watch(
        self, prefix: str, after_revision: int | None
    ) -> AsyncIterator[list[WatchEvent]]:
        if not self._started:
            await self.start()
        if self._closed:
            return
        next_revision = (self._revision if after_revision is None else after_revision) + 1
        watcher = _Watcher(prefix, self._watch_buffer)
        self._watchers.add(watcher)
        try:
            catching_up = next_revision <= self._revision
            while not watcher.closed:
                if catching_up or watcher.overflowed:
                    if self._closed:
                        return
                    # Events dispatched from here on are either in this read or after
                    # it; the buffer refills and duplicates are dropped by revision.
                    watcher.reset()
                    events, read_at, complete = await self._submit(
                        functools.partial(self._db.read_log, prefix, next_revision)
                    )
                    if events:
                        next_revision = events[-1].revision + 1
                    if complete:
                        next_revision = max(next_revision, read_at + 1)
                        catching_up = False
                    if events:
                        yield events
                    continue
                if not watcher.events:
                    watcher.wake.clear()
                    await watcher.wake.wait()
                    continue
                batch = [e for e in watcher.take() if e.revision >= next_revision]
                if batch:
                    next_revision = batch[-1].revision + 1
                    yield batch
        finally:
            self._watchers.discard(watcher)

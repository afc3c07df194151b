"""One store watch per kind, fanned out to every client watch.

The cache keeps the current objects of its kind (decoded once, serialised once) and a
bounded window of recent events. A client watch from resource version R replays the
window after R and then follows live events; R older than the window is "too old"
(OUT_OF_RANGE), which a client answers by relisting. Each client watch has a bounded
backlog: a watcher that cannot keep up is cut off, so it never stalls the others or the
cache (the same contract as Kubernetes' cacher).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from capstan.apierrors import ExpiredError, TimeoutError_, TooManyRequestsError
from capstan.machinery.kinds import Kind
from capstan.store import CompactedError, EventType, KeyValue, Store, WatchEvent

from apiserver import objects
from apiserver.filters import Filter
from apiserver.objects import Stored

log = structlog.get_logger(__name__)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


@dataclass(slots=True)
class CacheEvent:
    type: str
    key: str
    cur: Stored
    prev: Stored | None
    revision: int
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, event_type: str) -> bytes:
        """The wire event, serialised once however many watchers receive it."""
        data = self._encoded.get(event_type)
        if data is None:
            data = objects.encode_watch_event(event_type, self.cur.data)
            self._encoded[event_type] = data
        return data


class Watcher:
    """One client watch: a filter and a bounded backlog of encoded events."""

    def __init__(
        self, cache: WatchCache, flt: Filter, max_backlog: int, *, bookmarks: bool = False
    ) -> None:
        self.cache = cache
        self.bookmarks = bookmarks
        self.filter = flt
        self.max_backlog = max_backlog
        self.backlog: collections.deque[bytes] = collections.deque()
        self.wakeup = asyncio.Event()
        self.error: Exception | None = None
        self.closed = False

    def offer(self, event: CacheEvent) -> None:
        """Queue event if it concerns this watcher (Kubernetes semantics: an object that
        stops matching is a DELETED for this watcher, one that starts matching ADDED)."""
        if self.closed:
            return
        flt = self.filter
        if flt.everything:
            self.push(event.encoded(event.type))
            return
        cur_ok = flt.matches(event.cur.obj)
        if event.type == MODIFIED:
            prev_ok = event.prev is not None and flt.matches(event.prev.obj)
            if cur_ok and prev_ok:
                self.push(event.encoded(MODIFIED))
            elif cur_ok:
                self.push(event.encoded(ADDED))
            elif prev_ok and event.prev is not None:
                # The object left the selection: deliver its last matching state.
                prev = event.prev.obj.__deepcopy__()
                prev.metadata.resource_version = str(event.revision)
                self.push(objects.encode_watch_event(DELETED, prev.SerializeToString()))
        elif cur_ok:
            self.push(event.encoded(event.type))

    def push(self, data: bytes) -> None:
        if len(self.backlog) >= self.max_backlog:
            self.close(
                TooManyRequestsError(
                    "watch closed: the client is not keeping up with events; "
                    "watch again from the last resource version received"
                )
            )
            return
        self.backlog.append(data)
        self.wakeup.set()

    def close(self, error: Exception | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self.cache.watchers.discard(self)
            self.wakeup.set()

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write events until closed; raises the error that closed it, if any. One loop
        straight into the transport: no generator layers between the cache and the wire."""
        backlog = self.backlog
        try:
            while True:
                while backlog:
                    await write(backlog.popleft())
                if self.closed:
                    if self.error is not None:
                        raise self.error
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
        finally:
            self.close()


class WatchCache:
    """The cached state and recent history of one kind. Fed by CacheSet."""

    def __init__(self, kind: Kind, caches: CacheSet, *, window: int, max_backlog: int) -> None:
        self.kind = kind
        self.caches = caches
        self.prefix = objects.kind_prefix(kind)
        self.objects: dict[str, Stored] = {}
        self.history: collections.deque[CacheEvent] = collections.deque(maxlen=window)
        # Every event of this kind with revision > oldest is in history.
        self.oldest = 0
        self.watchers: set[Watcher] = set()
        self.max_backlog = max_backlog

    @property
    def revision(self) -> int:
        return self.caches.revision

    def load(self, kvs: list[KeyValue], revision: int) -> None:
        for w in list(self.watchers):
            w.close(ExpiredError("watch closed: the server's cache restarted; relist"))
        self.history.clear()
        self.objects = {kv.key: objects.decode(self.kind, kv) for kv in kvs}
        self.oldest = revision

    def apply(self, ev: WatchEvent) -> None:
        key = ev.kv.key
        prev = self.objects.get(key)
        if ev.type is EventType.PUT:
            cur = objects.decode(self.kind, ev.kv)
            self.objects[key] = cur
            etype = MODIFIED if prev is not None else ADDED
        else:
            self.objects.pop(key, None)
            cur = objects.decode(self.kind, ev.kv, revision=ev.revision)
            etype = DELETED
        event = CacheEvent(etype, key, cur, prev, ev.revision)
        if len(self.history) == self.history.maxlen:
            self.oldest = self.history[0].revision
        self.history.append(event)
        for w in list(self.watchers):
            w.offer(event)

    def snapshot(self, flt: Filter) -> list[Stored]:
        """Current objects that match, in key order (the order List returns)."""
        items = self.objects
        keys = sorted(items)
        if flt.everything:
            return [items[k] for k in keys]
        return [s for k in keys if flt.matches((s := items[k]).obj)]

    def add_watcher(
        self,
        flt: Filter,
        after_revision: int | None,
        *,
        initial_events: bool,
        bookmarks: bool = False,
    ) -> Watcher:
        """Register a watch. after_revision None means 'now'. Registration and replay
        happen without yielding to the loop, so no event can fall between them."""
        if after_revision is not None and after_revision < self.oldest:
            raise ExpiredError(f"too old resource version: {after_revision} ({self.oldest})")
        w = Watcher(self, flt, self.max_backlog + len(self.objects), bookmarks=bookmarks)
        if initial_events:
            for s in self.snapshot(flt):
                w.backlog.append(objects.encode_watch_event(ADDED, s.data))
            w.backlog.append(objects.bookmark(self.kind, self.revision, initial_events_end=True))
        if after_revision is not None and after_revision < self.revision:
            for event in self.history:
                if event.revision > after_revision:
                    w.offer(event)
        self.watchers.add(w)
        if w.backlog:
            w.wakeup.set()
        return w

    def send_bookmarks(self) -> None:
        """Tell idle bookmark-accepting watchers how far the cache has got, so their
        next watch can start from there instead of a stale revision."""
        data = objects.bookmark(self.kind, self.revision)
        for w in list(self.watchers):
            if w.bookmarks and not w.backlog:
                w.push(data)


class CacheSet:
    """One store watch over every kind's prefix, routed to per-kind caches.

    Watching the whole registry (rather than one prefix per kind) means the set sees every
    revision of the store, so "has the cache caught up with revision R?" has an answer:
    a consistent List asks the store for its current revision, waits for the cache to reach
    it (usually already true) and is then served from memory.
    """

    def __init__(
        self,
        store: Store,
        kinds: list[Kind],
        *,
        root: str = "/registry/",
        window: int = 20000,
        max_backlog: int = 10000,
    ) -> None:
        self.store = store
        self.root = root
        self.revision = 0
        self.ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.by_kind: dict[str, WatchCache] = {
            k.kind: WatchCache(k, self, window=window, max_backlog=max_backlog) for k in kinds
        }
        # Storage prefixes are /registry/<group>/<plural>/: route by the first two segments.
        self._routes = {c.prefix: c for c in self.by_kind.values()}

    def __getitem__(self, kind: str) -> WatchCache:
        return self.by_kind[kind]

    def _route(self, key: str) -> WatchCache | None:
        rest = key[len(self.root) :]
        parts = rest.split("/", 2)
        if len(parts) < 3:
            return None
        return self._routes.get(f"{self.root}{parts[0]}/{parts[1]}/")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watch-cache")

    async def stop(self) -> None:
        for cache in self.by_kind.values():
            for w in list(cache.watchers):
                w.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._list()
                async for batch in self.store.watch(self.root, after_revision=self.revision):
                    self._apply(batch)
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.warning("watch cache fell behind compaction; relisting")
                self.ready.clear()
            except Exception:
                log.exception("watch cache store watch failed; relisting")
                self.ready.clear()
                await asyncio.sleep(1)

    async def _list(self) -> None:
        result = await self.store.range(self.root)
        per_kind: dict[str, list[KeyValue]] = {k: [] for k in self.by_kind}
        for kv in result.kvs:
            cache = self._route(kv.key)
            if cache is not None:
                per_kind[cache.kind.kind].append(kv)
        for kind, cache in self.by_kind.items():
            cache.load(per_kind[kind], result.revision)
        self.revision = result.revision
        self.ready.set()
        await self._notify()

    def _apply(self, batch: list[WatchEvent]) -> None:
        for ev in batch:
            cache = self._route(ev.kv.key)
            if cache is not None:
                try:
                    cache.apply(ev)
                except Exception:
                    # A value that does not decode must not stop every other kind.
                    log.exception("undecodable object in store", key=ev.kv.key)
        if batch:
            self.revision = max(self.revision, batch[-1].revision)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._advanced:
            self._advanced.notify_all()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError_("the apiserver's cache is not ready yet; retry") from None

    async def wait_for_revision(self, revision: int, timeout: float = 3.0) -> None:
        """Wait until the cache has seen revision (Kubernetes: 'Too large resource version')."""
        await self.wait_ready(timeout)
        if self.revision >= revision:
            return
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.revision >= revision)
        except TimeoutError:
            raise TimeoutError_(
                f"Too large resource version: {revision}, current: {self.revision}"
            ) from None

    async def wait_consistent(self) -> None:
        """Wait until the cache reflects every write committed before this call."""
        await self.wait_for_revision(await self.store.current_revision(), timeout=10.0)

    def send_bookmarks(self) -> None:
        for cache in self.by_kind.values():
            cache.send_bookmarks()

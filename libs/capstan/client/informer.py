"""Informers: a local cache of one kind kept current by list-then-watch, with handlers.

The loop (Kubernetes' reflector): List, replace the cache, then Watch from the list's
resource version with bookmarks on. Each event updates the cache first and then calls
the handlers, so a handler that looks at the cache sees at least what it was told about.
- ExpiredError ("too old", OUT_OF_RANGE): the history needed is gone, so List again and
  tell the handlers the difference (adds, updates, deletes for objects that vanished) so
  they see one consistent picture without ever being told about the same state twice.
- the stream ending (server timeout, shutdown), RESOURCE_EXHAUSTED (the server cut a slow
  watcher) or UNAVAILABLE: watch again from the last resource version seen - events,
  and BOOKMARKs when the kind is idle, keep that version fresh.
- every resync_period, every cached object is re-delivered as an update(obj, obj) so
  level-triggered loops get a chance to correct drift they were not told about.

A SharedInformerFactory hands out one informer per (kind, namespace, selectors), so a
process that runs many loops over pods still holds one watch and one copy of each pod.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from google.protobuf.message import Message

from capstan.apierrors import ApiError, ExpiredError
from capstan.client.client import BOOKMARK, DELETED, Client, ResourceClient
from capstan.client.indexer import NAMESPACE_INDEX, Indexer, IndexFunc, index_by_namespace
from capstan.client.transport import Backoff
from capstan.machinery.kinds import Kind

log = structlog.get_logger(__name__)

T = TypeVar("T", bound=Message)

OnAdd = Callable[[Any], Awaitable[None] | None]
OnUpdate = Callable[[Any, Any], Awaitable[None] | None]
OnDelete = Callable[[Any], Awaitable[None] | None]


@dataclass(frozen=True)
class EventHandler:
    on_add: OnAdd | None = None
    on_update: OnUpdate | None = None
    on_delete: OnDelete | None = None


async def _invoke(fn: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    """Handlers may be plain functions (enqueue a key) or coroutines; a failing
    handler is logged and must not stop the informer or the other handlers."""
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("informer handler failed", handler=getattr(fn, "__qualname__", repr(fn)))


class Informer(Generic[T]):
    def __init__(
        self,
        resource: ResourceClient[T],
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resync_period: float = 0.0,
        indexers: dict[str, IndexFunc] | None = None,
        page_size: int = 0,
        backoff: Backoff | None = None,
    ) -> None:
        self.resource = resource
        self.kind: Kind = resource.kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        # 0: one consistent List served from the apiserver's cache; >0: paged from the store.
        self.page_size = page_size
        self.indexer: Indexer[T] = Indexer({NAMESPACE_INDEX: index_by_namespace})
        self.indexer.add_indexers(indexers or {})
        self._handlers: builtins.list[EventHandler] = []
        self._backoff = backoff or Backoff(initial=0.2, maximum=10.0)
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self.resource_version = ""
        # Observability for tests and metrics: how often the loop had to start over.
        self.lists = 0
        self.watches = 0

    # ------------------------------------------------------------------ registration
    def add_event_handler(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> EventHandler:
        """Register handlers. A handler added after the first sync is not replayed the
        current objects; use add_event_handler_replay for that."""
        handler = EventHandler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        return handler

    async def add_event_handler_replay(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> EventHandler:
        """Register handlers and deliver an add for every object already cached, as
        client-go does for a handler joining a running shared informer."""
        handler = self.add_event_handler(on_add, on_update, on_delete)
        if on_add is not None:
            for obj in self.indexer.list():
                await _invoke(on_add, obj)
        return handler

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    # ------------------------------------------------------------------ reads
    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """True once the first List has been delivered; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    def get(self, name: str, namespace: str = "") -> T | None:
        return self.indexer.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> T | None:
        return self.indexer.get(key)

    def list(self, namespace: str = "") -> builtins.list[T]:
        if namespace:
            return self.indexer.by_index(NAMESPACE_INDEX, namespace)
        return self.indexer.list()

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        return self.indexer.by_index(index, value)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.kind.plural}")
            if self.resync_period > 0:
                self._resync_task = asyncio.create_task(
                    self._resync_loop(), name=f"resync-{self.kind.plural}"
                )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        for task in (self._task, self._resync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._resync_task = None

    async def run(self) -> None:
        """List-then-watch until cancelled. An informer stopped and started again
        resumes watching from the version it reached (its cache is consistent up to
        there) and relists only if that version is too old by then."""
        need_list = not self._synced.is_set()
        attempt = 0
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                if await self._watch():
                    attempt = 0
                else:
                    # Ended with nothing at all (a server going away): do not spin.
                    await asyncio.sleep(self._backoff.delay(attempt))
                    attempt += 1
            except asyncio.CancelledError:
                raise
            except ExpiredError as e:
                log.info("watch too old; relisting", kind=self.kind.kind, error=e.message)
                need_list = True
            except ApiError as e:
                log.warning(
                    "list/watch failed; retrying",
                    kind=self.kind.kind,
                    code=e.code.name,
                    error=e.message,
                    relist=need_list,
                )
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
            except Exception:
                log.exception("informer loop failed; relisting", kind=self.kind.kind)
                need_list = True
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1

    # ------------------------------------------------------------------ the loop
    async def _relist(self) -> None:
        self.lists += 1
        if self.page_size:
            items, rv = await self.resource.list_all(
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                page_size=self.page_size,
            )
        else:
            result = await self.resource.list(
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
            )
            items, rv = list(result.items), result.metadata.resource_version
        await self._replace(items)
        self.resource_version = rv
        self._synced.set()

    async def _replace(self, items: builtins.list[T]) -> None:
        """Swap in a fresh List, telling handlers only what changed since the cache."""
        indexer = self.indexer
        fresh: dict[str, T] = {}
        for obj in items:
            meta = obj.metadata  # type: ignore[attr-defined]
            fresh[f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name] = obj
        gone = [k for k in indexer.list_keys() if k not in fresh]
        for key in gone:
            old = indexer.remove(key)
            if old is not None:
                await self._deliver_delete(old)
        for key, obj in fresh.items():
            old = indexer.upsert(key, obj)
            if old is None:
                await self._deliver_add(obj)
            elif old.metadata.resource_version != obj.metadata.resource_version:  # type: ignore[attr-defined]
                await self._deliver_update(old, obj)

    async def _watch(self) -> int:
        """Apply one watch stream until it ends; the number of events it carried."""
        self.watches += 1
        received = 0
        stream = self.resource.watch(
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self.resource_version,
            allow_bookmarks=True,
        )
        indexer = self.indexer
        async with contextlib.aclosing(stream):
            async for ev in stream:
                received += 1
                obj = ev.object
                meta = obj.metadata  # type: ignore[attr-defined]
                etype = ev.type
                if etype == BOOKMARK:
                    self.resource_version = meta.resource_version
                    continue
                key = f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name
                if etype == DELETED:
                    old = indexer.remove(key)
                    self.resource_version = meta.resource_version
                    await self._deliver_delete(old if old is not None else obj)
                    continue
                old = indexer.upsert(key, obj)
                self.resource_version = meta.resource_version
                if old is None:
                    await self._deliver_add(obj)
                else:
                    await self._deliver_update(old, obj)
        return received

    async def _resync_loop(self) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(self.resync_period)
            for obj in self.indexer.list():
                await self._deliver_update(obj, obj)

    async def _deliver_add(self, obj: T) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                await _invoke(h.on_add, obj)

    async def _deliver_update(self, old: T, new: T) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                await _invoke(h.on_update, old, new)

    async def _deliver_delete(self, obj: T) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                await _invoke(h.on_delete, obj)


InformerKey = tuple[str, str, str, str]


class SharedInformerFactory:
    """One informer per (kind, namespace, label selector, field selector) per process."""

    def __init__(self, client: Client, *, resync_period: float = 0.0, namespace: str = "") -> None:
        self.client = client
        self.resync_period = resync_period
        self.namespace = namespace
        self._informers: dict[InformerKey, Informer[Any]] = {}
        self._started = False

    def for_resource(
        self,
        resource: ResourceClient[T],
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        indexers: dict[str, IndexFunc] | None = None,
    ) -> Informer[T]:
        """The shared informer for a typed resource client (e.g. client.pods)."""
        ns = self.namespace if namespace is None else namespace
        key = (resource.kind.kind, ns, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                resource,
                namespace=ns,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_period=self.resync_period,
            )
            self._informers[key] = informer
            if self._started:
                informer.start()
        if indexers:
            informer.add_indexers(indexers)
        return informer

    def informer(
        self,
        kind: Kind | str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        indexers: dict[str, IndexFunc] | None = None,
    ) -> Informer[Any]:
        return self.for_resource(
            self.client.resource(kind),
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            indexers=indexers,
        )

    @property
    def informers(self) -> builtins.list[Informer[Any]]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer made so far; later ones start when made."""
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                for informer in list(self._informers.values()):
                    await informer.wait_for_sync()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._started = False
        for informer in self._informers.values():
            await informer.stop()

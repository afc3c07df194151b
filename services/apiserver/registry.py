"""The generic resource registry: Kubernetes' write and read semantics for any kind.

One class serves every row of the kind table. What varies per kind comes from the row
(scope, status, field selectors, TTL), from machinery (defaulting, validation), from a
small Strategy (initial status, graceful deletion) and from admission hooks (cluster IP
and node port allocation, namespace lifecycle).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
)
from capstan.machinery.defaulting import default_object
from capstan.machinery.kinds import Kind
from capstan.machinery.object_validation import validate_object, validate_status_update
from capstan.machinery.validation import generate_name
from capstan.machinery.violations import FieldViolation
from capstan.store import (
    CompactedError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
)
from capstan.store import ConflictError as StoreConflict
from google.protobuf.timestamp_pb2 import Timestamp

from apiserver import objects
from apiserver.filters import build_filter
from apiserver.objects import Stored
from apiserver.strategy import Strategy
from apiserver.watch_cache import CacheSet, WatchCache, Watcher

Undo = Callable[[], Awaitable[None]]
# How often an unconditional write retries after losing a race.
MAX_RETRIES = 16
PROPAGATION_FINALIZERS = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}


class Admission(Protocol):
    """A hook on the write path of one kind (allocation, lifecycle checks)."""

    async def admit_create(self, obj: Any) -> Undo | None: ...

    async def admit_update(self, new: Any, old: Any) -> Undo | None: ...

    async def updated(self, new: Any, old: Any) -> None: ...

    async def released(self, obj: Any) -> None: ...


def now() -> Timestamp:
    return Timestamp(seconds=int(time.time()))


def conflict(kind: Kind, name: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        metadata={"resource": kind.resource, "name": name},
    )


def parse_resource_version(value: str, what: str = "resourceVersion") -> int | None:
    """'' and '0' mean 'any'; anything else must be a positive integer."""
    if value in ("", "0"):
        return None
    if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
        raise BadRequestError(f"invalid {what}: {value!r} is negative")
    # ASCII digits only, like Kubernetes' ParseUint: int() would also take " 7", "+7", "1_0"
    # and non-ASCII digits.
    if not (value.isascii() and value.isdigit()):
        raise BadRequestError(f"invalid {what}: {value!r} is not a number")
    return int(value)


def _fingerprint(obj: Any, has_status: bool) -> bytes:
    """Everything but metadata and status: a change here is a new generation."""
    c = type(obj)()
    c.CopyFrom(obj)
    c.ClearField("metadata")
    if has_status:
        c.ClearField("status")
    return bytes(c.SerializeToString(deterministic=True))


def _unchanged(new: Any, old: Any) -> bool:
    """Whether a write would change nothing. new never carries a resource_version, old
    (decoded from the store) always does, so compare with old's set aside; an unchanged
    write is skipped so that it does not bump the resource version (as in Kubernetes)."""
    rv = old.metadata.resource_version
    old.metadata.resource_version = new.metadata.resource_version
    try:
        return bool(new == old)
    finally:
        old.metadata.resource_version = rv


def _copy(obj: Any) -> Any:
    c = type(obj)()
    c.CopyFrom(obj)
    return c


class Registry:
    def __init__(
        self,
        kind: Kind,
        store: Store,
        caches: CacheSet,
        strategy: Strategy,
        *,
        admission: list[Admission] | None = None,
        namespaces: Registry | None = None,
    ) -> None:
        self.kind = kind
        self.store = store
        self.caches = caches
        self.cache: WatchCache = caches[kind.kind]
        self.strategy = strategy
        self.admission = admission or []
        self.namespaces = namespaces

    # ----------------------------------------------------------------- helpers
    def _namespace(self, namespace: str) -> str:
        if not self.kind.namespaced:
            return ""
        return namespace or "default"

    def _key(self, namespace: str, name: str) -> str:
        if not name:
            raise BadRequestError(f"{self.kind.kind} name is required")
        return objects.object_key(self.kind, self._namespace(namespace), name)

    def _not_found(self, name: str) -> NotFoundError:
        return NotFoundError.for_object(self.kind.resource, name)

    def _invalid(self, obj: Any, violations: list[FieldViolation]) -> InvalidError:
        meta = obj.metadata
        return InvalidError.for_object(self.kind.kind, meta.name or meta.generate_name, violations)

    async def _current(self, key: str, name: str) -> KeyValue:
        kv = await self.store.get(key)
        if kv is None:
            raise self._not_found(name)
        return kv

    async def _namespace_guard(self, namespace: str, *, fresh: bool) -> tuple[str, int] | None:
        """Objects may be created only in a namespace that exists and is not terminating.

        Returns the guard (namespace key, revision) that the create is made conditional on,
        so the check is exact even when the watch cache lags a deletion made through
        another apiserver: the store refuses the write if the namespace changed since the
        version checked. The cached namespace is used first (no read per create); fresh
        reads the store, for the retry after the guard failed."""
        if self.namespaces is None or not self.kind.namespaced:
            return None
        key = objects.object_key(self.namespaces.kind, "", namespace)
        stored = None if fresh else self.namespaces.cache.objects.get(key)
        if stored is None:
            kv = await self.store.get(key)
            if kv is None:
                raise NotFoundError(
                    f'namespaces "{namespace}" not found',
                    metadata={"resource": "namespaces", "name": namespace},
                )
            stored = objects.decode(self.namespaces.kind, kv)
        ns = stored.obj
        if ns.metadata.HasField("deletion_timestamp") or ns.status.phase == "Terminating":
            raise ForbiddenError(
                f"{self.kind.resource} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                metadata={"namespace": namespace},
            )
        return key, stored.revision

    async def _admit_create(self, obj: Any) -> list[Undo]:
        undos: list[Undo] = []
        try:
            for hook in self.admission:
                undo = await hook.admit_create(obj)
                if undo is not None:
                    undos.append(undo)
        except BaseException:
            await _run_undos(undos)
            raise
        return undos

    async def _admit_update(self, new: Any, old: Any) -> list[Undo]:
        undos: list[Undo] = []
        try:
            for hook in self.admission:
                undo = await hook.admit_update(new, old)
                if undo is not None:
                    undos.append(undo)
        except BaseException:
            await _run_undos(undos)
            raise
        return undos

    async def _released(self, obj: Any) -> None:
        for hook in self.admission:
            await hook.released(obj)

    # ------------------------------------------------------------------ create
    async def create(self, obj: Any) -> Stored:
        kind = self.kind
        meta = obj.metadata
        meta.namespace = self._namespace(meta.namespace)
        meta.uid = str(uuid.uuid4())
        meta.creation_timestamp.CopyFrom(now())
        meta.generation = 1
        meta.resource_version = ""
        meta.ClearField("deletion_timestamp")
        meta.ClearField("deletion_grace_period_seconds")
        generated = not meta.name and bool(meta.generate_name)
        if generated:
            meta.name = generate_name(meta.generate_name)
        self.strategy.prepare_create(obj)
        default_object(kind.kind, obj)
        violations = validate_object(kind.kind, obj, None)
        if violations:
            raise self._invalid(obj, violations)
        guard = await self._namespace_guard(meta.namespace, fresh=False)
        # A taken name fails before admission allocates anything (a cluster IP, node
        # ports): no allocate-and-release writes, and AlreadyExists rather than a
        # misleading "IP already allocated". A race past this check is undone below.
        if (
            any(getattr(hook, "allocates", False) for hook in self.admission)
            and not generated
            and await self.store.get(objects.object_key(kind, meta.namespace, meta.name))
        ):
            raise AlreadyExistsError.for_object(kind.resource, meta.name)
        undos = await self._admit_create(obj)
        try:
            data = objects.encode_for_store(obj)
            name_attempts = 0
            for _ in range(MAX_RETRIES):
                key = objects.object_key(kind, meta.namespace, meta.name)
                try:
                    kv = await self.store.create(
                        key, data, ttl_seconds=kind.ttl_seconds, guard=guard
                    )
                    return objects.stored_from(obj, kv.mod_revision)
                except KeyExistsError:
                    name_attempts += 1
                    if not generated or name_attempts == 3:
                        raise AlreadyExistsError.for_object(kind.resource, meta.name) from None
                    meta.name = generate_name(meta.generate_name)
                    data = objects.encode_for_store(obj)
                except StoreConflict as e:
                    if guard is None or e.key != guard[0]:
                        raise
                    # The namespace changed since the version checked: check it again.
                    guard = await self._namespace_guard(meta.namespace, fresh=True)
            raise conflict(kind, meta.name)
        except BaseException:
            await _run_undos(undos)
            raise

    # --------------------------------------------------------------------- get
    async def get(self, namespace: str, name: str) -> Stored:
        """A consistent read served from the watch cache once it has caught up with the
        store (no decode, no re-encode: the cached bytes go out as they are)."""
        key = self._key(namespace, name)
        await self.caches.wait_consistent()
        stored = self.cache.objects.get(key)
        if stored is None:
            raise self._not_found(name)
        return stored

    # -------------------------------------------------------------------- list
    async def list(self, opts: meta_pb2.ListOptions) -> bytes:
        """Serialised XList. Without paging it is served from the watch cache after the
        cache has caught up with the store (a consistent read, like Kubernetes' consistent
        list from cache); with limit/continue it reads a snapshot of the store page by page."""
        flt = build_filter(self.kind, opts.namespace, opts.label_selector, opts.field_selector)
        if opts.limit < 0:
            raise BadRequestError("limit must be >= 0")
        if opts.limit or opts.continue_token:
            return await self._list_page(opts, flt)
        rv = parse_resource_version(opts.resource_version)
        if opts.resource_version == "":
            await self.caches.wait_consistent()
        elif rv is not None:
            await self.caches.wait_for_revision(rv)
        else:
            await self.caches.wait_ready()
        revision = self.caches.revision
        items = [s.data for s in self.cache.snapshot(flt)]
        return objects.encode_list(items, revision)

    async def _list_page(self, opts: meta_pb2.ListOptions, flt: Any) -> bytes:
        prefix = objects.namespace_prefix(self.kind, flt.namespace)
        revision = 0
        start_after = ""
        if opts.continue_token:
            revision, start_after = _decode_continue(opts.continue_token, prefix)
        limit = int(opts.limit) or 0
        items: list[bytes] = []
        more = True
        last_key = start_after
        try:
            while more and (not limit or len(items) < limit):
                want = (limit - len(items)) if limit else 0
                page = await self.store.range(
                    prefix, start_after=last_key, limit=want, revision=revision
                )
                revision = page.revision
                more = page.more
                for kv in page.kvs:
                    last_key = kv.key
                    stored = objects.decode(self.kind, kv)
                    if flt.matches(stored.obj):
                        items.append(stored.data)
                        if limit and len(items) == limit:
                            more = more or kv is not page.kvs[-1]
                            break
                if not page.kvs:
                    more = False
        except CompactedError:
            raise ExpiredError(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."
            ) from None
        except FutureRevisionError:
            # No list of this store made the token: a forged or foreign one.
            raise BadRequestError(
                f"invalid continue token: revision {revision} is newer than the store's"
            ) from None
        token = _encode_continue(revision, last_key) if more else ""
        return objects.encode_list(items, revision, token)

    # ------------------------------------------------------------------ update
    async def update(self, obj: Any, *, status_only: bool = False) -> Stored:
        kind = self.kind
        if status_only and not kind.has_status:
            raise BadRequestError(f"{kind.resource} have no status")
        meta = obj.metadata
        name = meta.name
        key = self._key(meta.namespace, name)
        wanted_rv = parse_resource_version(meta.resource_version)
        if meta.resource_version == "0":
            raise BadRequestError("metadata.resourceVersion: 0 is not a valid resource version")
        for _ in range(MAX_RETRIES):
            kv = await self._current(key, name)
            if wanted_rv is not None and wanted_rv != kv.mod_revision:
                raise conflict(kind, name)
            old = objects.decode(kind, kv).obj
            new = self._merge_status(obj, old) if status_only else self._merge_spec(obj, old)
            if _unchanged(new, old):
                return objects.decode(kind, kv)
            undos = [] if status_only else await self._admit_update(new, old)
            try:
                if self._deletion_complete(new):
                    return await self._remove(key, kv, new)
                stored = await self._replace(key, kv, new)
                if not status_only:
                    for hook in self.admission:
                        await hook.updated(new, old)
                return stored
            except (StoreConflict, KeyNotFoundError):
                await _run_undos(undos)
                if wanted_rv is not None:
                    raise conflict(kind, name) from None
            except BaseException:
                await _run_undos(undos)
                raise
        raise conflict(kind, name)

    def _merge_spec(self, obj: Any, old: Any) -> Any:
        """Update: the client's object, with status and server-owned metadata kept."""
        kind = self.kind
        new = _copy(obj)
        meta, old_meta = new.metadata, old.metadata
        meta.namespace = old_meta.namespace
        # Like Kubernetes: the stored uid if none is given; a different one is refused by
        # validation (metadata.uid is immutable), never silently replaced.
        meta.uid = meta.uid or old_meta.uid
        meta.creation_timestamp.CopyFrom(old_meta.creation_timestamp)
        meta.generation = old_meta.generation
        meta.resource_version = ""
        meta.generate_name = old_meta.generate_name
        _copy_optional_meta(meta, old_meta)
        if kind.has_status:
            new.status.CopyFrom(old.status)
        self.strategy.prepare_update(new, old)
        default_object(kind.kind, new)
        violations = validate_object(kind.kind, new, old)
        if violations:
            raise self._invalid(new, violations)
        if _fingerprint(new, kind.has_status) != _fingerprint(old, kind.has_status):
            meta.generation = old_meta.generation + 1
        return new

    def _merge_status(self, obj: Any, old: Any) -> Any:
        """UpdateStatus: the stored object with only the client's status."""
        new = _copy(old)
        new.metadata.resource_version = ""
        new.status.CopyFrom(obj.status)
        violations = validate_status_update(self.kind.kind, new, old)
        if violations:
            raise self._invalid(new, violations)
        return new

    async def guaranteed_update(
        self,
        namespace: str,
        name: str,
        mutate: Callable[[Any], None],
        *,
        expected_rv: int | None = None,
        validate: bool = True,
    ) -> Stored:
        """Read, mutate, validate and compare-and-swap until it sticks (subresources)."""
        kind = self.kind
        key = self._key(namespace, name)
        for _ in range(MAX_RETRIES):
            kv = await self._current(key, name)
            if expected_rv is not None and expected_rv != kv.mod_revision:
                raise conflict(kind, name)
            old = objects.decode(kind, kv).obj
            new = _copy(old)
            mutate(new)
            new.metadata.resource_version = ""
            if validate:
                violations = validate_object(kind.kind, new, old)
                if violations:
                    raise self._invalid(new, violations)
            if _unchanged(new, old):
                return objects.decode(kind, kv)
            if _fingerprint(new, kind.has_status) != _fingerprint(old, kind.has_status):
                new.metadata.generation = old.metadata.generation + 1
            try:
                return await self._replace(key, kv, new)
            except (StoreConflict, KeyNotFoundError):
                if expected_rv is not None:
                    raise conflict(kind, name) from None
        raise conflict(kind, name)

    # ------------------------------------------------------------------ delete
    def _deletion_complete(self, obj: Any) -> bool:
        meta = obj.metadata
        return (
            meta.HasField("deletion_timestamp")
            and not self.strategy.blocks_deletion(obj)
            and meta.deletion_grace_period_seconds == 0
        )

    async def _replace(self, key: str, kv: KeyValue, new: Any) -> Stored:
        """Write new in place of the version kv was read at (compare-and-swap on its
        revision; the store's ConflictError/KeyNotFoundError tell the caller to re-read)."""
        written = await self.store.update(
            key,
            objects.encode_for_store(new),
            expected_mod_revision=kv.mod_revision,
            ttl_seconds=self.kind.ttl_seconds,
        )
        return objects.stored_from(new, written.mod_revision)

    async def _remove(self, key: str, kv: KeyValue, obj: Any) -> Stored:
        deleted = await self.store.delete(key, expected_mod_revision=kv.mod_revision)
        await self._released(obj)
        return objects.stored_from(obj, deleted.mod_revision)

    async def delete(self, req: meta_pb2.DeleteRequest) -> Stored:
        kind = self.kind
        name = req.name
        key = self._key(req.namespace, name)
        policy = req.propagation_policy
        if policy and policy not in ("Orphan", "Background", "Foreground"):
            raise BadRequestError(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Orphan", "Background", "Foreground"'
            )
        requested = req.grace_period_seconds if req.HasField("grace_period_seconds") else None
        for _ in range(MAX_RETRIES):
            kv = await self._current(key, name)
            cur = objects.decode(kind, kv).obj
            pre = req.preconditions
            if pre.uid and pre.uid != cur.metadata.uid:
                raise ConflictError(
                    f"Precondition failed: UID in precondition: {pre.uid}, "
                    f"UID in object meta: {cur.metadata.uid}"
                )
            if pre.resource_version and pre.resource_version != str(kv.mod_revision):
                raise ConflictError(
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre.resource_version}, ResourceVersion in object meta: {kv.mod_revision}"
                )
            grace = self.strategy.grace_period(cur, requested)
            new = _copy(cur)
            finalizer = PROPAGATION_FINALIZERS.get(policy)
            if finalizer and finalizer not in new.metadata.finalizers:
                new.metadata.finalizers.append(finalizer)
            try:
                if not self.strategy.blocks_deletion(new) and grace == 0:
                    return await self._remove(key, kv, cur)
                meta = new.metadata
                deleting = meta.HasField("deletion_timestamp")
                if not deleting or grace < meta.deletion_grace_period_seconds:
                    deadline = Timestamp(seconds=int(time.time()) + grace)
                    meta.deletion_timestamp.CopyFrom(deadline)
                    meta.deletion_grace_period_seconds = grace
                if not deleting:
                    self.strategy.deletion_started(new)
                if new == cur:
                    return objects.decode(kind, kv)
                new.metadata.resource_version = ""
                return await self._replace(key, kv, new)
            except (StoreConflict, KeyNotFoundError):
                continue
        raise conflict(kind, name)

    # ------------------------------------------------------------------- watch
    async def open_watch(self, opts: meta_pb2.ListOptions) -> tuple[Watcher, float]:
        """Register a watch; returns the watcher and how long it may run."""
        flt = build_filter(self.kind, opts.namespace, opts.label_selector, opts.field_selector)
        after = parse_resource_version(opts.resource_version)
        if after is not None and after > self.caches.revision:
            await self.caches.wait_for_revision(after)
        else:
            await self.caches.wait_ready()
        watcher = self.cache.add_watcher(
            flt,
            after,
            initial_events=opts.send_initial_events,
            bookmarks=opts.allow_watch_bookmarks,
        )
        # Like Kubernetes' min-request-timeout: end long watches at a random point so
        # clients reconnect (and rebalance across apiservers) spread out in time.
        return watcher, float(opts.timeout_seconds or random.uniform(1800, 3600))

    async def watch(
        self, opts: meta_pb2.ListOptions, write: Callable[[bytes], Awaitable[None]]
    ) -> None:
        """Stream encoded watch events to write until the watch ends (OK on timeout)."""
        watcher, timeout = await self.open_watch(opts)
        try:
            async with asyncio.timeout(timeout):
                await watcher.pump(write)
        except TimeoutError:
            return
        finally:
            watcher.close()


def _copy_optional_meta(meta: Any, old_meta: Any) -> None:
    for f in ("deletion_timestamp", "deletion_grace_period_seconds"):
        if old_meta.HasField(f):
            if f == "deletion_timestamp":
                meta.deletion_timestamp.CopyFrom(old_meta.deletion_timestamp)
            else:
                meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds
        else:
            meta.ClearField(f)


async def _run_undos(undos: list[Undo]) -> None:
    for undo in reversed(undos):
        await undo()


def _encode_continue(revision: int, start_after: str) -> str:
    raw = json.dumps({"rv": revision, "start": start_after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        rv, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as e:
        raise BadRequestError(f"invalid continue token: {e}") from None
    if rv <= 0 or not start.startswith(prefix):
        raise BadRequestError("invalid continue token: it belongs to another list")
    return rv, start

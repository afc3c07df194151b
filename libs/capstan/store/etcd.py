"""The Store on an etcd v3 cluster (capstan's HA backend).

Every write is one etcd transaction that checks the revision the caller expects, so the
optimistic concurrency of the Store contract is etcd's own. Watches share one Watch
stream (see etcd_watch) and keys with a TTL share leases (see etcd_lease).

Revisions: etcd counts its empty, freshly created keyspace as revision 1, the Store
contract as 0. The store therefore reports etcd revision - 1 everywhere (and adds 1 on the
way in), so both backends number the same history identically: the first write is
revision 1 on either. etcdctl shows the etcd numbers, one higher.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import grpc
from grpc import aio

from capstan.api.etcd import kv_pb2, rpc_pb2
from capstan.store.etcd_client import EtcdClient
from capstan.store.etcd_lease import LeasePool
from capstan.store.etcd_watch import WatchEnded, WatchMux
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

REVISION_OFFSET = 1

_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
_LEASE_NOT_FOUND = "requested lease not found"
# A key nothing writes: ranges on it cost etcd no more than a header.
_PROBE_KEY = b"\x00capstan/revision-probe"
_Compare = rpc_pb2.Compare


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with prefix (etcd's range_end);
    b'\\0' (meaning "no upper bound") when there is none."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\x00"
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _etcd_rev(revision: int) -> int:
    return revision + REVISION_OFFSET


def _store_rev(revision: int) -> int:
    return max(0, revision - REVISION_OFFSET)


def _kv(kv: kv_pb2.KeyValue) -> KeyValue:
    return KeyValue(
        key=kv.key.decode(),
        value=kv.value,
        create_revision=_store_rev(kv.create_revision),
        mod_revision=_store_rev(kv.mod_revision),
    )


def _event(event: kv_pb2.Event) -> WatchEvent:
    prev = _kv(event.prev_kv) if event.HasField("prev_kv") else None
    if event.type == kv_pb2.Event.PUT:
        return WatchEvent(EventType.PUT, _kv(event.kv), prev)
    # etcd's delete event carries only the key; the contract wants the deleted value.
    deleted = KeyValue(
        key=event.kv.key.decode(),
        value=prev.value if prev else b"",
        create_revision=prev.create_revision if prev else 0,
        mod_revision=_store_rev(event.kv.mod_revision),
    )
    return WatchEvent(EventType.DELETE, deleted, prev)


def _op_range(key: bytes, *, keys_only: bool = False) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key, keys_only=keys_only))


def _exists(key: bytes) -> rpc_pb2.Compare:
    return _Compare(result=_Compare.GREATER, target=_Compare.VERSION, key=key, version=0)


def _mod_is(key: bytes, revision: int) -> rpc_pb2.Compare:
    return _Compare(
        result=_Compare.EQUAL, target=_Compare.MOD, key=key, mod_revision=_etcd_rev(revision)
    )


def _current_or_missing(key: str, response: rpc_pb2.TxnResponse) -> StoreError:
    """The error of a failed conditional write whose failure branch read the key."""
    kvs = response.responses[0].response_range.kvs
    if not kvs:
        return KeyNotFoundError(key)
    return ConflictError(key, _kv(kvs[0]))


class EtcdStore(Store):
    def __init__(self, client: EtcdClient) -> None:
        self._client = client
        self._watches = WatchMux(client)
        self._leases = LeasePool(self._grant_lease)

    @classmethod
    async def connect(
        cls,
        endpoints: Sequence[str],
        *,
        dial_timeout: float = 5.0,
        request_timeout: float = 10.0,
    ) -> EtcdStore:
        """Connect to the members at endpoints ("host:port" or "http://host:port").

        StoreUnavailableError if none answers within dial_timeout. Later calls fail over
        between members and give up with StoreUnavailableError after request_timeout."""
        store = cls(EtcdClient(endpoints, request_timeout=request_timeout))
        try:
            await store._header_revision(budget=dial_timeout)
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def client(self) -> EtcdClient:
        return self._client

    @property
    def watch_mux(self) -> WatchMux:
        return self._watches

    # Reads

    async def get(self, key: str) -> KeyValue | None:
        response = await self._client.unary(
            lambda m: m.kv.Range, rpc_pb2.RangeRequest(key=key.encode())
        )
        return _kv(response.kvs[0]) if response.kvs else None

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        start = prefix.encode()
        if start_after:
            start = max(start, start_after.encode() + b"\x00")
        request = rpc_pb2.RangeRequest(
            key=start or b"\x00",
            range_end=prefix_end(prefix.encode()),
            limit=max(0, limit),
            revision=_etcd_rev(revision) if revision > 0 else 0,
        )
        try:
            response = await self._client.unary(lambda m: m.kv.Range, request)
        except aio.AioRpcError as e:
            raise await self._revision_error(e, revision) from e
        return RangeResult(
            kvs=[_kv(kv) for kv in response.kvs],
            revision=revision if revision > 0 else _store_rev(response.header.revision),
            more=response.more,
        )

    async def current_revision(self) -> int:
        return _store_rev(await self._header_revision())

    # Writes

    async def create(
        self,
        key: str,
        value: bytes,
        *,
        ttl_seconds: int = 0,
        guard: tuple[str, int] | None = None,
    ) -> KeyValue:
        raw = key.encode()
        absent = _Compare(result=_Compare.EQUAL, target=_Compare.CREATE, key=raw, create_revision=0)
        compare = [absent]
        otherwise: list[rpc_pb2.RequestOp] = []
        if guard is not None:
            guard_raw = guard[0].encode()
            compare.append(_mod_is(guard_raw, guard[1]))
            # On failure, read both keys to tell "exists" from "guard moved".
            otherwise = [_op_range(raw, keys_only=True), _op_range(guard_raw)]
        response = await self._put_txn(raw, value, ttl_seconds, compare, otherwise)
        if not response.succeeded:
            if guard is None or response.responses[0].response_range.kvs:
                raise KeyExistsError(key)
            guard_kvs = response.responses[1].response_range.kvs
            raise ConflictError(guard[0], _kv(guard_kvs[0]) if guard_kvs else None)
        revision = _store_rev(response.header.revision)
        return KeyValue(key, value, create_revision=revision, mod_revision=revision)

    async def update(
        self, key: str, value: bytes, *, expected_mod_revision: int, ttl_seconds: int = 0
    ) -> KeyValue:
        raw = key.encode()
        response = await self._put_txn(
            raw,
            value,
            ttl_seconds,
            [_exists(raw), _mod_is(raw, expected_mod_revision)],
            [_op_range(raw)],
            # Read back (without the value) for the unchanged create_revision.
            then=[_op_range(raw, keys_only=True)],
        )
        if not response.succeeded:
            raise _current_or_missing(key, response)
        written = response.responses[1].response_range.kvs[0]
        return KeyValue(
            key,
            value,
            create_revision=_store_rev(written.create_revision),
            mod_revision=_store_rev(response.header.revision),
        )

    async def delete(self, key: str, *, expected_mod_revision: int = 0) -> KeyValue:
        raw = key.encode()
        compare = [_exists(raw)]
        if expected_mod_revision:
            compare.append(_mod_is(raw, expected_mod_revision))
        delete = rpc_pb2.DeleteRangeRequest(key=raw, prev_kv=True)
        request = rpc_pb2.TxnRequest(
            compare=compare,
            success=[rpc_pb2.RequestOp(request_delete_range=delete)],
            failure=[_op_range(raw)],
        )
        response = await self._txn(request)
        if not response.succeeded:
            raise _current_or_missing(key, response)
        previous = response.responses[0].response_delete_range.prev_kvs[0]
        return KeyValue(
            key,
            previous.value,
            create_revision=_store_rev(previous.create_revision),
            mod_revision=_store_rev(response.header.revision),
        )

    async def compact(self, revision: int) -> None:
        request = rpc_pb2.CompactionRequest(revision=_etcd_rev(revision), physical=False)
        try:
            await self._client.unary(lambda m: m.kv.Compact, request)
        except aio.AioRpcError as e:
            if _COMPACTED in (e.details() or ""):
                return  # that history is already gone: nothing left to do
            raise await self._revision_error(e, revision) from e

    # Watch

    def watch(self, prefix: str, *, after_revision: int) -> AsyncGenerator[list[WatchEvent], None]:
        return self._watch(prefix, after_revision)

    async def _watch(
        self, prefix: str, after_revision: int
    ) -> AsyncGenerator[list[WatchEvent], None]:
        try:
            if after_revision > 0:
                await self._check_history(after_revision)
            else:
                # Pin "now" to a revision here, so it does not depend on when etcd gets
                # to the create request and a resumed stream knows where it started.
                after_revision = await self.current_revision()
        except StoreUnavailableError:
            if self._client.closed:
                return
            raise
        key = prefix.encode()
        start = _etcd_rev(after_revision) + 1
        watcher = self._watches.add(key or b"\x00", prefix_end(key), start)
        try:
            while True:
                item = await watcher.queue.get()
                if item is None:
                    return
                if isinstance(item, WatchEnded):
                    requested = _store_rev(watcher.next_revision - 1)
                    if item.compact_revision:
                        raise CompactedError(requested, _store_rev(item.compact_revision))
                    raise StoreError(f"etcd canceled the watch on {prefix!r}: {item.reason}")
                yield [_event(event) for event in item.events]
        finally:
            self._watches.remove(watcher)

    async def close(self) -> None:
        await self._watches.close()
        await self._client.close()

    # Internals

    async def _header_revision(self, *, budget: float | None = None) -> int:
        request = rpc_pb2.RangeRequest(key=_PROBE_KEY, count_only=True)
        response = await self._client.unary(lambda m: m.kv.Range, request, budget=budget)
        return response.header.revision

    async def _txn(self, request: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        try:
            return await self._client.unary(lambda m: m.kv.Txn, request)
        except aio.AioRpcError as e:
            raise _unexpected(e) from e

    async def _put_txn(
        self,
        key: bytes,
        value: bytes,
        ttl_seconds: int,
        compare: list[rpc_pb2.Compare],
        otherwise: list[rpc_pb2.RequestOp],
        then: Sequence[rpc_pb2.RequestOp] = (),
    ) -> rpc_pb2.TxnResponse:
        for attempt in range(2):
            lease = await self._leases.lease_for(ttl_seconds) if ttl_seconds > 0 else 0
            put = rpc_pb2.PutRequest(key=key, value=value, lease=lease)
            request = rpc_pb2.TxnRequest(
                compare=compare,
                success=[rpc_pb2.RequestOp(request_put=put), *then],
                failure=otherwise,
            )
            try:
                return await self._client.unary(lambda m: m.kv.Txn, request)
            except aio.AioRpcError as e:
                lease_gone = _LEASE_NOT_FOUND in (e.details() or "")
                if not lease_gone or attempt:
                    raise _unexpected(e) from e
                # The shared lease expired or was revoked under us: take a fresh one.
                self._leases.forget(lease)
        raise AssertionError("unreachable")

    async def _grant_lease(self, ttl_seconds: int) -> int:
        request = rpc_pb2.LeaseGrantRequest(TTL=ttl_seconds)
        try:
            response = await self._client.unary(lambda m: m.lease.LeaseGrant, request)
        except aio.AioRpcError as e:
            raise _unexpected(e) from e
        if response.error:
            raise StoreError(f"etcd refused a lease: {response.error}")
        return response.ID

    async def _check_history(self, after_revision: int) -> None:
        """CompactedError if the state at after_revision is gone. etcd itself would still
        start a watch one revision later, but the contract ties watch and range to the same
        boundary."""
        request = rpc_pb2.RangeRequest(
            key=_PROBE_KEY, count_only=True, revision=_etcd_rev(after_revision)
        )
        try:
            await self._client.unary(lambda m: m.kv.Range, request)
        except aio.AioRpcError as e:
            if _FUTURE in (e.details() or ""):
                return  # a watch may wait for revisions that do not exist yet
            raise await self._revision_error(e, after_revision) from e

    async def _revision_error(self, error: aio.AioRpcError, revision: int) -> StoreError:
        details = error.details() or ""
        if _COMPACTED in details:
            return CompactedError(revision, _store_rev(await self._compact_revision(revision)))
        if _FUTURE in details:
            return FutureRevisionError(revision, await self.current_revision())
        return _unexpected(error)

    async def _compact_revision(self, revision: int) -> int:
        """etcd's current compaction revision. Its errors do not carry it; a watcher asked
        to start at a compacted revision is told it, so open one and read the answer."""
        watcher = self._watches.add(_PROBE_KEY, b"", _etcd_rev(revision))
        try:
            async with asyncio.timeout(self._client.request_timeout):
                while True:
                    item = await watcher.queue.get()
                    if isinstance(item, WatchEnded) and item.compact_revision:
                        return item.compact_revision
                    if item is None or isinstance(item, WatchEnded):
                        break
        except TimeoutError:
            pass
        finally:
            self._watches.remove(watcher)
        # Unknown: at least the next revision is gone.
        return _etcd_rev(revision) + 1


def _unexpected(error: aio.AioRpcError) -> StoreError:
    code = error.code()
    name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    return StoreError(f"etcd: {name}: {error.details()}")

"""Many etcd watchers over one Watch stream, resumed without gap after the stream breaks.

An apiserver holds one watcher per client watch; a gRPC stream each would mean thousands
of HTTP/2 streams and server goroutines. etcd (>= 3.4) lets the client pick watch ids, so
every watcher of this process shares a single stream and responses are routed by id.

Each watcher remembers the next revision it needs. When the stream fails (member down,
etcd restarted), a new stream is opened - on the next member if there are several - and
every watcher is created again from that revision, so consumers see neither a gap nor a
duplicate as long as that history has not been compacted.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from grpc import aio

from capstan.api.etcd import rpc_pb2
from capstan.store.etcd_client import EtcdClient

_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


@dataclass(frozen=True, slots=True)
class WatchEnded:
    """etcd canceled the watcher. compact_revision > 0: the history it needs is gone."""

    compact_revision: int
    reason: str


# What a watcher's queue carries: a response with events, the end of the watcher, or
# None when the client closes.
WatchItem = rpc_pb2.WatchResponse | WatchEnded | None


@dataclass(eq=False, slots=True)
class Watcher:
    id: int
    key: bytes
    range_end: bytes
    # The etcd revision to (re)start from, inclusive; 0 until etcd told us what "now" is.
    next_revision: int
    queue: asyncio.Queue[WatchItem] = field(default_factory=asyncio.Queue)

    def create_request(self) -> rpc_pb2.WatchRequest:
        return rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(
                key=self.key,
                range_end=self.range_end,
                start_revision=self.next_revision,
                prev_kv=True,
                watch_id=self.id,
            )
        )


class WatchMux:
    """The shared Watch stream of one EtcdClient. The stream is opened with the first
    watcher and kept (and re-opened) until close()."""

    def __init__(self, client: EtcdClient) -> None:
        self._client = client
        self._watchers: dict[int, Watcher] = {}
        self._next_id = 1
        # Requests for the stream that is open right now; None while reconnecting (the
        # next stream creates every registered watcher anyway).
        self._outbox: asyncio.Queue[rpc_pb2.WatchRequest] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.streams_opened = 0

    def __len__(self) -> int:
        return len(self._watchers)

    def add(self, key: bytes, range_end: bytes, start_revision: int) -> Watcher:
        watcher = Watcher(self._next_id, key, range_end, start_revision)
        self._next_id += 1
        if self._closed:
            watcher.queue.put_nowait(None)
            return watcher
        self._watchers[watcher.id] = watcher
        if self._outbox is not None:
            self._outbox.put_nowait(watcher.create_request())
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return watcher

    def remove(self, watcher: Watcher) -> None:
        if self._watchers.pop(watcher.id, None) is not None and self._outbox is not None:
            cancel = rpc_pb2.WatchCancelRequest(watch_id=watcher.id)
            self._outbox.put_nowait(rpc_pb2.WatchRequest(cancel_request=cancel))

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watcher in self._watchers.values():
            watcher.queue.put_nowait(None)
        self._watchers.clear()

    async def _run(self) -> None:
        backoff = _MIN_BACKOFF
        while not self._closed:
            index = self._client.current
            call = self._client.members[index].watch.Watch()
            self.streams_opened += 1
            outbox: asyncio.Queue[rpc_pb2.WatchRequest] = asyncio.Queue()
            for watcher in self._watchers.values():
                outbox.put_nowait(watcher.create_request())
            self._outbox = outbox
            writer = asyncio.get_running_loop().create_task(_write(call, outbox))
            try:
                while True:
                    response = await call.read()
                    if response is aio.EOF:
                        break
                    assert isinstance(response, rpc_pb2.WatchResponse)
                    backoff = _MIN_BACKOFF
                    self._dispatch(response)
            except aio.AioRpcError:
                pass
            finally:
                self._outbox = None
                writer.cancel()
                call.cancel()
            # The stream ended or broke: the member is gone or restarting.
            self._client.member_failed(index)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _dispatch(self, response: rpc_pb2.WatchResponse) -> None:
        watcher = self._watchers.get(response.watch_id)
        if watcher is None:
            return  # removed by its consumer; the cancel is on its way
        if response.compact_revision or response.canceled:
            del self._watchers[watcher.id]
            ended = WatchEnded(response.compact_revision, response.cancel_reason)
            watcher.queue.put_nowait(ended)
            return
        if response.created and watcher.next_revision == 0:
            watcher.next_revision = response.header.revision + 1
        if response.events:
            watcher.next_revision = response.events[-1].kv.mod_revision + 1
            watcher.queue.put_nowait(response)


async def _write(
    call: aio.StreamStreamCall[rpc_pb2.WatchRequest, rpc_pb2.WatchResponse],
    outbox: asyncio.Queue[rpc_pb2.WatchRequest],
) -> None:
    """The stream's only writer (grpc.aio allows one write at a time)."""
    with contextlib.suppress(aio.AioRpcError, asyncio.InvalidStateError):
        while True:
            await call.write(await outbox.get())

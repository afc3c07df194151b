"""A minimal etcd v3 client on grpc.aio: one channel per cluster member, unary calls that
fail over to the next member when one is unreachable.

It speaks etcd's own wire format through the hand-written subset in
protos/capstan/api/etcd, so it needs no etcd client library (the maintained ones either
wrap synchronous gRPC in threads or no longer import with current protobuf).

Retrying is limited to what cannot have been a semantic failure: UNAVAILABLE (connection
refused or reset, no leader, server-side timeout) and RESOURCE_EXHAUSTED ("too many
requests"). As with any gRPC client, a write whose connection broke after etcd applied it
is retried too; the conditional writes of the store then report the resulting state (for
instance KeyExistsError for a create that actually landed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import grpc
from grpc import aio

from capstan.api.etcd import rpc_pb2_grpc
from capstan.store.interface import StoreUnavailableError

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Big ranges (a full list of every pod) must fit in one message; etcd itself has no
# send limit by default.
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024

CHANNEL_OPTIONS: Final[list[tuple[str, int]]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # gRPC's default reconnect backoff grows to 120 s; a restarted member must be picked
    # up again within about a second.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Detect a member that vanished without closing the connection (watch streams can
    # be idle for long). etcd's server accepts pings every 5 s or slower.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 0),
]

RETRYABLE: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})

_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


def parse_endpoint(endpoint: str) -> str:
    """'http://127.0.0.1:2379' or '127.0.0.1:2379' -> a gRPC target."""
    endpoint = endpoint.strip()
    if endpoint.startswith("https://"):
        raise ValueError(f"TLS etcd endpoints are not supported yet: {endpoint}")
    target = endpoint.removeprefix("http://").rstrip("/")
    if not target or ":" not in target:
        raise ValueError(f"etcd endpoint needs host:port, got {endpoint!r}")
    return target


@dataclass(frozen=True, slots=True)
class MemberStubs:
    """The gRPC services of one etcd member."""

    target: str
    channel: aio.Channel
    kv: rpc_pb2_grpc.KVAsyncStub
    watch: rpc_pb2_grpc.WatchAsyncStub
    lease: rpc_pb2_grpc.LeaseAsyncStub


class EtcdClient:
    """Channels to every member; calls go to the current member and move on when it is
    unreachable. Safe for any number of concurrent calls."""

    def __init__(self, endpoints: Sequence[str], *, request_timeout: float = 10.0) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.request_timeout = request_timeout
        self.members: list[MemberStubs] = []
        for target in (parse_endpoint(e) for e in endpoints):
            channel = aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            self.members.append(
                MemberStubs(
                    target=target,
                    channel=channel,
                    kv=rpc_pb2_grpc.KVStub(channel),
                    watch=rpc_pb2_grpc.WatchStub(channel),
                    lease=rpc_pb2_grpc.LeaseStub(channel),
                )
            )
        self._current = 0
        self.closed = False

    @property
    def current(self) -> int:
        """Index of the member calls go to now."""
        return self._current

    def member_failed(self, index: int) -> None:
        """Move on to the next member, unless another caller already did."""
        if index == self._current:
            self._current = (index + 1) % len(self.members)

    async def unary(
        self,
        method: Callable[[MemberStubs], aio.UnaryUnaryMultiCallable[Req, Resp]],
        request: Req,
        *,
        budget: float | None = None,
    ) -> Resp:
        """Call method on the current member, failing over on retryable errors until
        budget (seconds, default request_timeout) runs out; then StoreUnavailableError. Other
        gRPC errors are raised as they are (callers translate them)."""
        budget = self.request_timeout if budget is None else budget
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        # With several members, one hung member must not eat the whole budget.
        per_attempt = budget if len(self.members) == 1 else budget / 2
        backoff = _MIN_BACKOFF
        failures = 0
        last: aio.AioRpcError | None = None
        while not self.closed:
            index = self._current
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                return await method(self.members[index])(
                    request, timeout=min(per_attempt, remaining)
                )
            except aio.AioRpcError as e:
                code = e.code()
                if code not in RETRYABLE and code is not grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
                last = e
            self.member_failed(index)
            failures += 1
            if failures % len(self.members) == 0:
                # Every member failed once: wait before the next round.
                await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
                backoff = min(backoff * 2, _MAX_BACKOFF)
        if self.closed:
            raise StoreUnavailableError("etcd client is closed")
        detail = f"{last.code().name}: {last.details()}" if last else "timed out"
        targets = ", ".join(m.target for m in self.members)
        raise StoreUnavailableError(f"etcd unreachable at {targets} for {budget:g}s ({detail})")

    async def close(self) -> None:
        self.closed = True
        await asyncio.gather(*(m.channel.close() for m in self.members))

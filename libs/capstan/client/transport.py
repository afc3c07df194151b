"""Channels to a list of apiservers: client-side round robin, fail-over, TLS, retries.

Every apiserver replica is equal (they share one store), so each call goes to the next
server in turn and a server that refuses connections is skipped for a while. What may be
retried is decided per call by the caller (see Retry) because only the caller knows whether
repeating the request is harmless:

- a request that never reached a server ("failed to connect") is always safe to send to
  the next server, whatever it does;
- any other UNAVAILABLE (connection lost mid-call, the server's store is down) is retried
  only for idempotent calls: reads, watch (re-)opens and whole-object updates. Create,
  delete, bind and evict are not retried then: the first attempt may have been applied and
  a retry would answer AlreadyExists/NotFound/Conflict for a request that in fact succeeded.

Retries back off exponentially with full jitter and never outlive the call's deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import grpc

from capstan.apierrors import ApiError, UnavailableError, from_rpc_error
from capstan.grpc_server import channel_options

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Serializer = Callable[[Any], bytes]
Deserializer = Callable[[bytes], Any]

# How long a server that refused a connection is passed over while others remain.
DOWN_COOLDOWN = 2.0


@dataclass(frozen=True)
class ClientTLS:
    """Server verification (ca_file) and, for mTLS, the client's own certificate."""

    ca_file: str | None
    cert_file: str | None = None
    key_file: str | None = None
    # Expected name in the server certificate when it differs from the dialled host.
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        ca = Path(self.ca_file).read_bytes() if self.ca_file else None
        cert = Path(self.cert_file).read_bytes() if self.cert_file else None
        key = Path(self.key_file).read_bytes() if self.key_file else None
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )


class Retry(Enum):
    """What a call may be repeated on (see the module docstring)."""

    # Only when the request provably never left the client.
    CONNECT = "connect"
    # On any UNAVAILABLE: the call is a read or otherwise idempotent.
    IDEMPOTENT = "idempotent"


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.05
    maximum: float = 2.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, capped exponential], so clients that lost the
        same server do not come back in lock-step."""
        cap = min(self.maximum, self.initial * self.multiplier**attempt)
        return random.uniform(cap / 2, cap)


def never_sent(error: grpc.aio.AioRpcError) -> bool:
    """UNAVAILABLE raised before the request reached any server."""
    if error.code() is not grpc.StatusCode.UNAVAILABLE:
        return False
    text = (error.details() or "").lower()
    return "failed to connect" in text or "connection refused" in text


def retryable(error: grpc.aio.AioRpcError, retry: Retry) -> bool:
    if error.code() is not grpc.StatusCode.UNAVAILABLE:
        return False
    return retry is Retry.IDEMPOTENT or never_sent(error)


class _Server:
    __slots__ = ("address", "channel", "down_until")

    def __init__(self, address: str, channel: grpc.aio.Channel) -> None:
        self.address = address
        self.channel = channel
        self.down_until = 0.0


class Transport:
    """One lazily connected channel per server address, chosen round robin."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        tls: ClientTLS | None = None,
        user_agent: str = "capstan",
        backoff: Backoff | None = None,
    ) -> None:
        if not servers:
            raise ValueError("at least one apiserver address is required")
        self.backoff = backoff or Backoff()
        options: list[tuple[str, Any]] = [
            *channel_options(),
            ("grpc.primary_user_agent", user_agent),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # Reconnect quickly after a server restarts; the defaults wait up to 2 minutes.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        if tls is not None and tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        creds = tls.credentials() if tls is not None else None
        self._servers: list[_Server] = []
        for address in servers:
            if creds is not None and not address.startswith("unix:"):
                ch = grpc.aio.secure_channel(address, creds, options=options)
            else:
                ch = grpc.aio.insecure_channel(address, options=options)
            self._servers.append(_Server(address, ch))
        self._next = 0

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self._servers]

    def _pick(self) -> _Server:
        """The next server in turn that is not known to be down (or the one that comes
        back soonest, when all are)."""
        now = time.monotonic()
        n = len(self._servers)
        for i in range(n):
            server = self._servers[(self._next + i) % n]
            if server.down_until <= now:
                self._next = (self._next + i + 1) % n
                return server
        server = min(self._servers, key=lambda s: s.down_until)
        self._next = (self._servers.index(server) + 1) % n
        return server

    def current_channel(self) -> grpc.aio.Channel:
        now = time.monotonic()
        for i in range(len(self._servers)):
            server = self._servers[(self._next + i) % len(self._servers)]
            if server.down_until <= now:
                return server.channel
        return self._servers[self._next].channel

    def _failed(self, server: _Server, error: grpc.aio.AioRpcError) -> None:
        if never_sent(error) and len(self._servers) > 1:
            server.down_until = time.monotonic() + DOWN_COOLDOWN

    async def _sleep_before_retry(self, attempt: int, deadline: float | None) -> bool:
        """Back off before attempt+1; False if the deadline leaves no time for it."""
        # The first fail-over to another server is immediate: it is probably up.
        delay = 0.0 if attempt < len(self._servers) - 1 else self.backoff.delay(attempt)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    async def unary(
        self,
        method: str,
        request: Any,
        serializer: Serializer,
        deserializer: Deserializer,
        *,
        timeout: float | None,
        retry: Retry,
    ) -> Any:
        """One unary call; gRPC failures surface as typed ApiErrors."""
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            server = self._pick()
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            call = server.channel.unary_unary(
                method, request_serializer=serializer, response_deserializer=deserializer
            )
            try:
                return await call(request, timeout=remaining)
            except grpc.aio.AioRpcError as e:
                self._failed(server, e)
                if not retryable(e, retry) or not await self._sleep_before_retry(attempt, deadline):
                    raise from_rpc_error(e) from None
            attempt += 1

    async def server_stream(
        self,
        method: str,
        request: Any,
        serializer: Serializer,
        deserializer: Deserializer,
        *,
        timeout: float | None,
        retry: Retry,
        open_timeout: float | None = None,
    ) -> AsyncGenerator[Any, None]:
        """A server stream. Opening it is retried like a unary call until the first
        message arrives (for at most open_timeout, else timeout); after that a failure
        is raised, because only the caller knows where to resume (a watch resumes from
        the last resource version it saw)."""
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        budget = open_timeout if open_timeout is not None else timeout
        open_deadline = None if budget is None else start + budget
        attempt = 0
        while True:
            server = self._pick()
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            call = server.channel.unary_stream(
                method, request_serializer=serializer, response_deserializer=deserializer
            )(request, timeout=remaining)
            received = False
            try:
                async for message in call:
                    received = True
                    yield message
                return
            except grpc.aio.AioRpcError as e:
                self._failed(server, e)
                if (
                    received
                    or not retryable(e, retry)
                    or not await self._sleep_before_retry(attempt, open_deadline)
                ):
                    raise from_rpc_error(e) from None
            finally:
                call.cancel()
            attempt += 1

    async def stream_stream(
        self,
        method: str,
        requests: AsyncIterator[Any],
        serializer: Serializer,
        deserializer: Deserializer,
        *,
        timeout: float | None,
    ) -> AsyncGenerator[Any, None]:
        """A bidirectional stream (exec, port-forward): never retried, the request
        iterator cannot be replayed."""
        server = self._pick()
        call = server.channel.stream_stream(
            method, request_serializer=serializer, response_deserializer=deserializer
        )(requests, timeout=timeout)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as e:
            self._failed(server, e)
            raise from_rpc_error(e) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        for server in self._servers:
            await server.channel.close()


def is_retryable_api_error(error: ApiError) -> bool:
    """For loops above the transport (informers, leader election): errors after which
    trying again later can succeed."""
    return isinstance(error, UnavailableError) or error.code in (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    )

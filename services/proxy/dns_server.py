"""Cluster DNS over UDP and TCP on one asyncio loop (dnspython for the wire format).

Names in the cluster zone are answered from the informer caches (dns_records.ClusterDns);
other names go to --dns-upstream when one is configured and are REFUSED otherwise, so a
node without an upstream never leaks queries.

Answers for the zone are cached as wire bytes keyed by the query's bytes after its ID
(question, flags, EDNS options: everything the answer depends on) and the cache is dropped
whenever a Service or Endpoints changes, so a cached answer is never staler than the
informer cache it came from; a hit costs a dict lookup instead of a parse and a render.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import structlog

from proxy import metrics
from proxy.dns_records import ClusterDns

log = structlog.get_logger(__name__)

UDP_DEFAULT_PAYLOAD = 512
TCP_IDLE_TIMEOUT = 10.0
UPSTREAM_TIMEOUT = 2.0


def split_host_port(value: str, default_port: int = 53) -> tuple[str, int]:
    """host, host:port, [v6]:port or a bare IPv6 address."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = value.rpartition(":")
    if not sep or ":" in host:
        return value, default_port
    return host, int(port)


@dataclass
class DnsServer:
    resolver: ClusterDns
    host: str = "127.0.0.1"
    port: int = 53
    upstream: tuple[str, int] | None = None
    cache_size: int = 10000
    _cache: dict[bytes, bytes] = field(default_factory=dict)
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
        )
        self._udp = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        # The same port for TCP (port 0 picked one for UDP above).
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        log.info(
            "cluster DNS listening", host=self.host, port=self.port, zone=str(self.resolver.zone)
        )

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def invalidate(self, *_: object) -> None:
        """Informer handler: the data behind cached answers changed."""
        self._cache.clear()

    # ------------------------------------------------------------------ answering
    async def handle(self, wire: bytes, max_size: int | None) -> bytes | None:
        """The response to one query (None: drop it); max_size None means TCP."""
        result = self.respond(wire, max_size)
        if not isinstance(result, dns.message.Message):
            return result
        response = await self._forward(result, tcp=max_size is None)
        return self._render(result, response, max_size, None)

    def respond(self, wire: bytes, max_size: int | None) -> bytes | dns.message.Message | None:
        """Without awaiting anything: the response bytes, None to drop the query, or the
        parsed query when it must be forwarded (the only case that waits on I/O)."""
        key = wire[2:]
        cached = self._cache.get(key) if max_size is not None else None
        if cached is not None:
            _count(cached)
            return wire[:2] + cached
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _formerr(wire)
        if query.flags & dns.flags.QR:
            return None
        if len(query.question) == 1 and not self.resolver.handles(query.question[0].name):
            return query
        return self._render(query, self.resolver.answer(query), max_size, key)

    def _render(
        self,
        query: dns.message.Message,
        response: dns.message.Message,
        max_size: int | None,
        cache_key: bytes | None,
    ) -> bytes:
        limit = 65535 if max_size is None else max(query.payload, UDP_DEFAULT_PAYLOAD)
        try:
            out = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            out = response.to_wire()
            cache_key = None
        _count(out[2:])
        if cache_key is not None and max_size is not None and self.cache_size:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[cache_key] = out[2:]
        return out

    async def _forward(self, query: dns.message.Message, tcp: bool) -> dns.message.Message:
        if self.upstream is None:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.REFUSED)
            return response
        host, port = self.upstream
        try:
            if tcp:
                return await dns.asyncquery.tcp(query, host, UPSTREAM_TIMEOUT, port)
            answer = await dns.asyncquery.udp(query, host, UPSTREAM_TIMEOUT, port)
            if answer.flags & dns.flags.TC:
                answer = await dns.asyncquery.tcp(query, host, UPSTREAM_TIMEOUT, port)
            return answer
        except (dns.exception.DNSException, OSError) as e:
            log.warning("upstream DNS failed", upstream=f"{host}:{port}", error=str(e))
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response

    # ------------------------------------------------------------------ transports
    def _spawn_udp(self, wire: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.create_task(self._answer_udp(wire, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(self, wire: bytes, addr: tuple[str, int]) -> None:
        try:
            out = await self.handle(wire, UDP_DEFAULT_PAYLOAD)
        except Exception:
            log.exception("DNS query failed")
            out = _servfail(wire)
        if out is not None and self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(out, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                (length,) = struct.unpack("!H", header)
                wire = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                try:
                    out = await self.handle(wire, None)
                except Exception:
                    log.exception("DNS query failed")
                    out = _servfail(wire)
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Answered right here, without a task per query; only forwarding needs one.
        server = self.server
        try:
            result = server.respond(data, UDP_DEFAULT_PAYLOAD)
        except Exception:
            log.exception("DNS query failed")
            result = _servfail(data)
        if isinstance(result, dns.message.Message):
            server._spawn_udp(data, addr)
        elif result is not None and server._udp is not None:
            server._udp.sendto(result, addr)


_RCODES = {int(r): r.name for r in dns.rcode.Rcode}


def _count(header_after_id: bytes) -> None:
    metrics.DNS_QUERIES.labels(_RCODES.get(header_after_id[1] & 0x0F, "OTHER")).inc()


def _formerr(wire: bytes) -> bytes | None:
    if len(wire) < 12:
        return None
    flags = struct.unpack("!H", wire[2:4])[0]
    if flags & 0x8000:  # a response: never answer those
        return None
    # ID, QR + opcode echoed, RCODE=FORMERR, no sections.
    return wire[:2] + struct.pack(
        "!HHHHH", 0x8000 | (flags & 0x7800) | dns.rcode.FORMERR, 0, 0, 0, 0
    )


def _servfail(wire: bytes) -> bytes | None:
    try:
        response = dns.message.make_response(dns.message.from_wire(wire))
    except dns.exception.DNSException:
        return None
    response.set_rcode(dns.rcode.SERVFAIL)
    return response.to_wire()

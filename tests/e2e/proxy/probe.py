"""Small network actors the proxy e2e tests run inside their namespaces (python -m ...):
a backend that answers its name, a client that counts who answered, a DNS query, an HTTP
GET and a fixed-answer upstream DNS server. Results are one JSON line on stdout.

Never run outside a test namespace: the addresses it is given are cluster IPs.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import socketserver
import time
from collections import Counter

import dns.message
import dns.query
import dns.rcode
import dns.rrset


def serve(args: argparse.Namespace) -> None:
    name = args.name.encode()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(name + b" " + self.client_address[0].encode())

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server((args.host, args.port), Handler) as server:
        print(json.dumps({"listening": args.port}), flush=True)
        server.serve_forever()


def connect(args: argparse.Namespace) -> None:
    names: Counter[str] = Counter()
    peers: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    slowest = 0.0
    for _ in range(args.count):
        start = time.monotonic()
        try:
            with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
                data = b""
                while chunk := s.recv(256):
                    data += chunk
            backend, _, peer = data.decode().partition(" ")
            names[backend] += 1
            peers[peer] += 1
        except OSError as e:
            errors[errno.errorcode.get(e.errno or 0, type(e).__name__)] += 1
        slowest = max(slowest, time.monotonic() - start)
    print(json.dumps({"names": names, "peers": peers, "errors": errors, "slowest": slowest}))


def query(args: argparse.Namespace) -> None:
    q = dns.message.make_query(args.name, args.type)
    if args.tcp:
        r = dns.query.tcp(q, args.server, timeout=3, port=args.port)
    else:
        r = dns.query.udp(q, args.server, timeout=3, port=args.port)
    out = {
        "rcode": dns.rcode.to_text(r.rcode()),
        "answer": sorted(rd.to_text() for rrset in r.answer for rd in rrset),
        "types": sorted({dns.rdatatype.to_text(rrset.rdtype) for rrset in r.answer}),
    }
    print(json.dumps(out))


def http_get(args: argparse.Namespace) -> None:
    with socket.create_connection((args.host, args.port), timeout=3) as s:
        s.sendall(f"GET {args.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    print(json.dumps({"status": int(head.split(b" ", 2)[1]), "body": body.decode()}))


def upstream(args: argparse.Namespace) -> None:
    """Answers every A query with args.answer (what a recursive resolver would return)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    print(json.dumps({"listening": args.port}), flush=True)
    while True:
        wire, addr = sock.recvfrom(4096)
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", args.answer))
        sock.sendto(r.to_wire(), addr)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--name", required=True)
    c = sub.add_parser("connect")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--timeout", type=float, default=3.0)
    q = sub.add_parser("dns")
    q.add_argument("server")
    q.add_argument("name")
    q.add_argument("type", nargs="?", default="A")
    q.add_argument("--port", type=int, default=53)
    q.add_argument("--tcp", action="store_true")
    h = sub.add_parser("http")
    h.add_argument("host")
    h.add_argument("port", type=int)
    h.add_argument("path")
    u = sub.add_parser("upstream")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, required=True)
    u.add_argument("--answer", required=True)
    args = p.parse_args()
    {"serve": serve, "connect": connect, "dns": query, "http": http_get, "upstream": upstream}[
        args.cmd
    ](args)


if __name__ == "__main__":
    main()

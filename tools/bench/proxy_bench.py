"""Proxy benchmark: iptables sync cost at scale, and cluster DNS throughput/latency.

iptables, per backend and size (N services x 10 endpoints), in a fresh network namespace:
- full sync: the real Proxier sync (render, plan, iptables-restore) from empty tables;
- one-service change: one endpoint of one service replaced, the real partial sync;
- resync check: iptables-save, parse and compare (nothing to repair);
- baseline, the naive approach: one `iptables` invocation per chain or rule (what
  kube-proxy did before iptables-restore). The one-service change is run in full at full
  scale; the naive full sync would take hours at 10,000 services, so it is timed on a
  sample of services while the full ruleset is loaded and extrapolated per invocation;
- --cleanup of everything.
DNS, in its own namespace on loopback: the proxy's DnsServer in a separate process over
1,000 services, queried by an asyncio UDP client with a fixed number in flight, for repeated
names (the answer cache) and for every name once per round with the cache off.

Bars (issue 7): one-service change at 10,000 services < 1 s; DNS >= 5,000 q/s, p99 < 5 ms.
Everything that touches iptables or sends a packet runs inside namespaces made here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dns.message
from capstan.api.core.v1 import core_pb2
from capstan.client import Client, Informer
from proxy.__main__ import CLUSTER_IP_INDEX, InformerLookup, cleanup, cluster_ips
from proxy.dns_records import ClusterDns
from proxy.dns_server import DnsServer
from proxy.iptables import Iptables, detect
from proxy.proxier import Proxier
from proxy.restore import parse_save, plan_sync
from proxy.rules import RuleConfig

from tools.bench.harness import percentile

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS_PER_SERVICE = 10
CHANGE_BAR = 1.0
DNS_QPS_BAR = 5000.0
DNS_P99_BAR = 0.005


# ---------------------------------------------------------------------- synthetic cluster
def service(i: int, ns: str = "bench") -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = f"svc-{i}", ns
    svc.metadata.resource_version = "1"
    svc.spec.type = "ClusterIP"
    svc.spec.cluster_ip = f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"
    svc.spec.ports.add(name="http", port=80, protocol="TCP")
    return svc


def endpoints(i: int, ns: str = "bench", shift: int = 0) -> core_pb2.Endpoints:
    eps = core_pb2.Endpoints()
    eps.metadata.name, eps.metadata.namespace = f"svc-{i}", ns
    sub = eps.subsets.add()
    for j in range(ENDPOINTS_PER_SERVICE):
        k = i * ENDPOINTS_PER_SERVICE + j + shift
        sub.addresses.add(ip=f"10.{128 + k // 65536}.{k // 256 % 256}.{k % 256}")
    sub.ports.add(name="http", port=8080, protocol="TCP")
    return eps


def informers(client: Client) -> tuple[Informer[core_pb2.Service], Informer[core_pb2.Endpoints]]:
    """Informers that are never started: the benchmark fills their caches directly and
    tells the Proxier about changes the way their handlers would."""
    services = Informer(client.services, indexers={CLUSTER_IP_INDEX: cluster_ips})
    return services, Informer(client.endpoints)


def put(informer: Informer[Any], obj: Any) -> None:
    informer.indexer.upsert(f"{obj.metadata.namespace}/{obj.metadata.name}", obj)


# ---------------------------------------------------------------------- naive baseline
def naive_commands(text: str, existing: set[tuple[str, str]]) -> list[list[str]]:
    """The iptables-restore input as one `iptables` invocation per chain or rule."""
    out: list[list[str]] = []
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain = line[1:].split(" ")[0]
            out.append(["-t", table, "-F" if (table, chain) in existing else "-N", chain])
            existing.add((table, chain))
        elif line.startswith(("-A ", "-I ", "-X ", "-D ")):
            out.append(["-t", table, *_split(line)])
    return out


def _split(line: str) -> list[str]:
    """Shell-like split for the quoted comments iptables-restore accepts."""
    parts: list[str] = []
    current, quoted = "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == " " and not quoted:
            if current:
                parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return parts


async def run_naive(iptables: Iptables, commands: list[list[str]]) -> float:
    binary = iptables.restore_cmd[0].replace("-restore", "")
    start = time.perf_counter()
    for argv in commands:
        proc = await asyncio.create_subprocess_exec(
            binary, "-w", "5", *argv, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"iptables {' '.join(argv)}: {err.decode().strip()}")
    return time.perf_counter() - start


async def existing_chains(iptables: Iptables) -> set[tuple[str, str]]:
    saved = parse_save(await iptables.save())
    return {(t, c) for t, chains in saved.tables.items() for c in chains}


# ---------------------------------------------------------------------- iptables (inside)
async def inner_iptables(backend: str, size: int, sample: int) -> dict[str, Any]:
    iptables = await detect(backend)
    client = Client(["unix:///nonexistent-benchmark-never-connects"])
    services, eps = informers(client)
    for i in range(size):
        put(services, service(i))
        put(eps, endpoints(i))
    proxier = Proxier(iptables, services, eps, RuleConfig(), min_interval=0, resync_period=3600)
    for svc in services.list():
        proxier.changed(svc)
    out: dict[str, Any] = {"backend": backend, "services": size}

    start = time.perf_counter()
    await proxier.sync(True)
    out["full_sync_s"] = time.perf_counter() - start
    assert proxier.last is not None
    full_plan = proxier.last.plan
    out["rules"] = proxier.last.rules
    out["chains"] = len(full_plan.written)
    out["full_sync_transactions"] = len(full_plan.texts)
    full_text = "".join(full_plan.texts)

    changes = []
    for round_ in range(3):
        k = random.randrange(size)
        changed = endpoints(k, shift=size * ENDPOINTS_PER_SERVICE + 1 + round_)
        put(eps, changed)
        proxier.changed(changed)
        start = time.perf_counter()
        await proxier.sync(False)
        changes.append(time.perf_counter() - start)
    out["change_s"] = sorted(changes)[1]
    out["change_rules_written"] = proxier.last.plan.rules_written

    start = time.perf_counter()
    await proxier.sync(True)
    out["resync_check_s"] = time.perf_counter() - start
    assert proxier.last.plan.empty, "resync found drift in a quiet benchmark"

    # Naive one-service change, at full scale: the same change, one invocation per line.
    k = random.randrange(size)
    changed = endpoints(k, shift=2 * size * ENDPOINTS_PER_SERVICE)
    put(eps, changed)
    proxier.changed(changed)
    plan_text = _partial_text(proxier)  # the new desired state, applied the naive way below
    commands = naive_commands(plan_text, await existing_chains(iptables))
    out["naive_change_invocations"] = len(commands)
    out["naive_change_s"] = await run_naive(iptables, commands)

    # Naive full sync: a sample of extra services, one invocation per chain/rule, with the
    # full ruleset loaded; extrapolated to `size` by invocations.
    sample_ports = [service(i, ns="naive") for i in range(sample)]
    sample_client_svcs, sample_eps = informers(client)
    for i, svc in enumerate(sample_ports):
        put(sample_client_svcs, svc)
        put(sample_eps, endpoints(i, ns="naive"))
    sampler = Proxier(iptables, sample_client_svcs, sample_eps, RuleConfig(), max_chains=0)
    for svc in sample_ports:
        sampler.changed(svc)
    sample_text = "".join(plan_sync(sampler.tables(), None).texts)
    # Only the sample's own chains (the shared jump tables belong to the loaded ruleset).
    sample_cmds = [
        c for c in naive_commands(sample_text, await existing_chains(iptables))
        if "CAPSTAN-SERVICES" not in c and "CAPSTAN-NODEPORTS" not in c
        and "CAPSTAN-MARK-MASQ" not in c[3:4] and "CAPSTAN-POSTROUTING" not in c[3:4]
    ]  # fmt: skip
    elapsed = await run_naive(iptables, sample_cmds)
    per_invocation = elapsed / len(sample_cmds)
    full_invocations = len(naive_commands(full_text, set()))
    out["naive_sample_services"] = sample
    out["naive_per_invocation_s"] = per_invocation
    out["naive_full_invocations"] = full_invocations
    out["naive_full_extrapolated_s"] = per_invocation * full_invocations

    start = time.perf_counter()
    await cleanup("10.96.0.0/12")
    out["cleanup_s"] = time.perf_counter() - start
    left = [line for line in (await iptables.save()).splitlines() if "CAPSTAN" in line]
    assert not left, f"cleanup left {len(left)} lines"
    await client.close()
    return out


def _partial_text(proxier: Proxier) -> str:
    written = proxier.written
    assert written is not None
    return "".join(plan_sync(proxier.tables(), written).texts)


# ---------------------------------------------------------------------- DNS (inside)
def dns_data(count: int) -> tuple[Client, InformerLookup]:
    client = Client(["unix:///nonexistent-benchmark-never-connects"])
    services, eps = informers(client)
    for i in range(count):
        put(services, service(i))
        put(eps, endpoints(i))
    return client, InformerLookup(services, eps)


def dns_names(count: int) -> list[tuple[str, str]]:
    zone = "bench.svc.cluster.local."
    names = [(f"svc-{i}.{zone}", "A") for i in range(count)]
    names += [(f"_http._tcp.svc-{i}.{zone}", "SRV") for i in range(0, count, 4)]
    names += [(f"missing-{i}.{zone}", "A") for i in range(0, count, 4)]
    return names


async def serve_dns(cache: int) -> None:
    """The server process: prints its port, then answers until terminated."""
    _, lookup = dns_data(1000)
    server = DnsServer(ClusterDns(lookup), "127.0.0.1", 0, None, cache_size=cache)
    await server.start()
    print(f"PORT {server.port}", flush=True)
    await asyncio.Event().wait()


class DnsClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        fut = self.waiting.pop(int.from_bytes(data[:2], "big"), None)
        if fut is not None and not fut.done():
            fut.set_result(data)


async def drive_dns(
    port: int, names: list[tuple[str, str]], seconds: float, inflight: int
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        DnsClient, remote_addr=("127.0.0.1", port)
    )
    wires = [dns.message.make_query(n, t).to_wire()[2:] for n, t in names]
    latencies: list[float] = []
    errors = 0
    next_id = 0
    deadline = loop.time() + seconds

    async def worker(w: int) -> None:
        nonlocal next_id, errors
        i = w
        while loop.time() < deadline:
            next_id = (next_id + 1) % 65536
            qid = next_id
            fut: asyncio.Future[bytes] = loop.create_future()
            proto.waiting[qid] = fut
            start = time.perf_counter()
            transport.sendto(qid.to_bytes(2, "big") + wires[i % len(wires)])
            try:
                data = await asyncio.wait_for(fut, 1.0)
                if data[3] & 0x0F not in (0, 3):  # NOERROR / NXDOMAIN
                    errors += 1
            except TimeoutError:
                errors += 1
                proto.waiting.pop(qid, None)
            latencies.append(time.perf_counter() - start)
            i += inflight

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(inflight)))
    elapsed = time.perf_counter() - start
    transport.close()
    return {
        "queries": len(latencies),
        "qps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": errors,
    }


async def inner_dns(seconds: float, inflight: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = dns_names(1000)
    for label, cache, workload in (
        ("repeated names, answer cache", 10000, names[:50]),
        ("every name once per round, no cache", 0, names),
    ):
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-dns", "--dns-cache", str(cache),
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = b""
            while not line.startswith(b"PORT "):  # after any log lines
                line = await asyncio.wait_for(server.stdout.readline(), 30)
            port = int(line.split()[1])
            await drive_dns(port, workload, 0.5, inflight)  # warm-up
            out[label] = await drive_dns(port, workload, seconds, inflight)
            out[label]["server_cpu"] = _cpu_seconds(server.pid)
        finally:
            server.terminate()
            await server.wait()
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- outside
def in_new_netns(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run this script with argv in a fresh namespace (lo only) and return its JSON."""
    name = f"capstan-proxy-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        proc = subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{name}", "--", sys.executable, __file__, *argv],
            capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark step {argv} failed:\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def print_iptables(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'backend':8} {'services':>8} {'rules':>8} {'full sync':>10} {'txns':>5} "
        f"{'1-svc change':>13} {'resync chk':>10} {'cleanup':>8} "
        f"{'naive change':>13} {'naive full (extrap.)':>21}"
    )
    for r in rows:
        print(
            f"{r['backend']:8} {r['services']:>8,} {r['rules']:>8,} {r['full_sync_s']:>9.2f}s "
            f"{r['full_sync_transactions']:>5} {r['change_s'] * 1000:>11.0f}ms "
            f"{r['resync_check_s']:>9.2f}s {r['cleanup_s']:>7.1f}s "
            f"{r['naive_change_s'] * 1000:>11.0f}ms "
            f"{r['naive_full_extrapolated_s']:>19,.0f}s"
        )
    print(
        "naive full sync: timed on a sample of services "
        f"({', '.join(str(r['naive_sample_services']) for r in rows)}), one `iptables` call per "
        "chain/rule with the full ruleset loaded, extrapolated by the number of invocations"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--backends", default="nft,legacy")
    p.add_argument(
        "--naive-sample", type=int, default=10,
        help="services timed the naive way at 1,000 (scaled down with size, at least 2: with "
        "legacy iptables one call at 10,000 services takes about a second)",
    )  # fmt: skip
    p.add_argument("--dns-seconds", type=float, default=5.0)
    p.add_argument("--dns-inflight", type=int, default=8)
    p.add_argument("--skip-dns", action="store_true")
    p.add_argument("--skip-iptables", action="store_true")
    p.add_argument("--json", help="write the results here")
    # Internal: the steps that run inside a namespace.
    p.add_argument("--inner", choices=["iptables", "dns"], help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--serve-dns", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dns-cache", type=int, default=10000, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.serve_dns:
        asyncio.run(serve_dns(args.dns_cache))
        return 0
    if args.inner == "iptables":
        print(json.dumps(asyncio.run(inner_iptables(args.backend, args.size, args.naive_sample))))
        return 0
    if args.inner == "dns":
        print(json.dumps(asyncio.run(inner_dns(args.dns_seconds, args.dns_inflight))))
        return 0

    if os.geteuid() != 0 or not shutil.which("nsenter"):
        print("needs root and nsenter: every step runs in its own network namespace")
        return 2
    results: dict[str, Any] = {"iptables": [], "dns": {}}
    ok = True
    if not args.skip_iptables:
        for backend in args.backends.split(","):
            if not shutil.which(f"iptables-{backend}-restore"):
                print(f"skipping {backend}: not installed")
                continue
            for size in (int(s) for s in args.sizes.split(",")):
                print(f"iptables {backend}, {size:,} services ...", flush=True)
                row = in_new_netns(
                    ["--inner", "iptables", "--backend", backend, "--size", str(size),
                     "--naive-sample", str(max(2, args.naive_sample * 1000 // size))],
                    timeout=3600,
                )  # fmt: skip
                results["iptables"].append(row)
                if size >= 10000 and row["change_s"] >= CHANGE_BAR:
                    ok = False
        print_iptables(results["iptables"])
    if not args.skip_dns:
        dns_result = in_new_netns(
            ["--inner", "dns", "--dns-seconds", str(args.dns_seconds),
             "--dns-inflight", str(args.dns_inflight)],
            timeout=600,
        )  # fmt: skip
        results["dns"] = dns_result
        print(f"\nDNS over UDP on loopback, {args.dns_inflight} queries in flight:")
        for label, r in dns_result.items():
            verdict = (
                "PASS" if r["qps"] >= DNS_QPS_BAR and r["p99_ms"] < DNS_P99_BAR * 1000 else "FAIL"
            )
            print(
                f"  {label:40} {r['qps']:>8,.0f} q/s  p50 {r['p50_ms']:.2f} ms  "
                f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']}  server CPU "
                f"{r['server_cpu']:.1f}s  {verdict}"
            )
            ok = ok and verdict == "PASS"
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The apiserver benchmark (tools/bench/apiserver): for each store backend, one run measures
the raw store's puts/s (the baseline) and then, through a separate apiserver process,
Create/s, Get latency, List time, watch fan-out latency and memory, against the bars of
docs/benchmarks.md.

The baseline and Create/s are driven by the same closed loop (harness.closed_loop) with
the same number in flight, so their ratio is the apiserver's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pstats
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from capstan import eventloop
from capstan.api.core.v1 import core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2
from capstan.grpc_server import channel_options
from capstan.store import open_store

from tests.support.etcd import run_etcd
from tools.bench import harness
from tools.bench.cpu import CpuMeter
from tools.bench.pods import NAMESPACE, make_pod, pod_name
from tools.bench.processes import ApiserverProcess, apiserver_process, python_env, stop_process

RPC_TIMEOUT = 60.0


@dataclass
class Options:
    pods: int = 10000
    concurrency: int = 64
    channels: int = 4
    get_rate: float = 500.0
    get_seconds: float = 10.0
    list_runs: int = 5
    watchers: int = 1000
    watch_procs: int = 4
    watch_events: int = 100
    watch_rate: float = 10.0
    phases: tuple[str, ...] = ("get", "list", "watch")
    profile_dir: Path | None = None


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    bar: str = ""
    passed: bool | None = None


@dataclass
class BackendResult:
    backend: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(
        self, metric: str, value: float, unit: str, bar: str = "", ok: bool | None = None
    ) -> None:
        self.rows.append(Row(metric, value, unit, bar, ok))


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def client_channels(address: str, count: int) -> list[grpc.aio.Channel]:
    """count channels on separate TCP connections (a private subchannel pool each)."""
    options = [*channel_options(), ("grpc.use_local_subchannel_pool", 1)]
    return [grpc.aio.insecure_channel(address, options=options) for _ in range(count)]


@contextlib.asynccontextmanager
async def store_backend(backend: str, workdir: Path) -> AsyncIterator[tuple[str, str, int | None]]:
    """(apiserver store URL, raw baseline store URL, store server pid or None)."""
    if backend == "etcd":
        async with run_etcd() as etcd:
            url = f"etcd://{etcd.endpoint}"
            yield url, url, etcd.process.pid
    else:
        yield f"sqlite://{workdir}/apiserver.db", f"sqlite://{workdir}/raw.db", None


async def raw_puts(url: str, opts: Options) -> harness.Throughput:
    """The baseline: Store.create of pod-sized values, straight from this process."""
    value = make_pod(pod_name(0), 0).SerializeToString()
    store = await open_store(url)
    try:

        async def put(i: int) -> None:
            await store.create(f"/bench/raw/{i:06d}", value)

        return await harness.closed_loop(put, opts.pods, opts.concurrency)
    finally:
        await store.close()


async def create_pods(stubs: list[Any], opts: Options) -> harness.Throughput:
    pods = [make_pod(pod_name(i), i) for i in range(opts.pods)]

    async def create(i: int) -> None:
        await stubs[i % len(stubs)].Create(pods[i], timeout=RPC_TIMEOUT)

    return await harness.closed_loop(create, opts.pods, opts.concurrency)


async def get_paced(stubs: list[Any], opts: Options) -> harness.Paced:
    async def get(i: int) -> None:
        name = pod_name(i * 7919 % opts.pods)
        request = meta_pb2.GetRequest(namespace=NAMESPACE, name=name)
        await stubs[i % len(stubs)].Get(request, timeout=RPC_TIMEOUT)

    return await harness.paced(get, opts.get_rate, opts.get_seconds)


async def list_times(stub: Any, selector: str, runs: int) -> tuple[list[float], int]:
    """Client-observed List time (request, server, transfer and decoding the PodList)."""
    times: list[float] = []
    items = 0
    for _ in range(runs):
        start = time.perf_counter()
        reply = await stub.List(meta_pb2.ListOptions(label_selector=selector), timeout=RPC_TIMEOUT)
        times.append(time.perf_counter() - start)
        items = len(reply.items)
    return times, items


@dataclass
class WatchWorker:
    process: asyncio.subprocess.Process

    async def line(self, timeout: float) -> bytes:
        assert self.process.stdout is not None
        return await asyncio.wait_for(self.process.stdout.readline(), timeout)

    async def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()


@contextlib.asynccontextmanager
async def watch_workers(address: str, opts: Options) -> AsyncIterator[list[WatchWorker]]:
    share = math.ceil(opts.watchers / opts.watch_procs)
    counts = [min(share, opts.watchers - i * share) for i in range(opts.watch_procs)]
    workers: list[WatchWorker] = []
    try:
        for count in (c for c in counts if c > 0):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tools.bench.watch_worker", address, str(count),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=1 << 28, env=python_env(),
            )  # fmt: skip
            workers.append(WatchWorker(process))
        yield workers
    finally:
        for worker in workers:
            await stop_process(worker.process, grace=10)


async def watch_fanout(
    address: str, stub: Any, opts: Options, pids: dict[str, int]
) -> tuple[list[float], int, int, list[str], dict[str, float]]:
    """(latencies over every (watcher, event) pair, delivered, expected, errors, cpu).

    Streams are registered once a sentinel write reaches all of them; then watch_events
    pods are created at watch_rate and each delivery is timed from the moment the
    Create returned to the writer."""
    async with watch_workers(address, opts) as workers:
        pending = {asyncio.ensure_future(w.line(300)): w for w in workers}
        sentinel = 0
        while pending:
            await stub.Create(make_pod(f"bench-sentinel-{sentinel}", 0), timeout=RPC_TIMEOUT)
            sentinel += 1
            done, _ = await asyncio.wait(pending, timeout=1.0)
            for fut in done:
                if fut.result().strip() != b"ready":
                    raise RuntimeError(f"watch worker said {fut.result()!r}")
                del pending[fut]
        pods = [make_pod(f"bench-watch-{i:06d}", i) for i in range(opts.watch_events)]
        written: dict[str, float] = {}

        async def create(i: int) -> None:
            reply = await stub.Create(pods[i], timeout=RPC_TIMEOUT)
            written[reply.metadata.resource_version] = time.monotonic()

        meter = CpuMeter({**pids, **{f"watcher{i}": w.process.pid for i, w in enumerate(workers)}})
        meter.start(time.perf_counter())
        await harness.paced(create, opts.watch_rate, opts.watch_events / opts.watch_rate)
        cpu = meter.stop(time.perf_counter())
        await asyncio.sleep(3.0)
        latencies: list[float] = []
        errors: list[str] = []
        delivered = 0
        for worker in workers:
            await worker.send("stop")
            report = json.loads(await worker.line(120))
            errors.extend(report["errors"])
            for rv, times in report["receipts"].items():
                at = written.get(rv)
                if at is not None:
                    delivered += len(times)
                    latencies.extend(max(0.0, t - at) for t in times)
        return latencies, delivered, len(written) * opts.watchers, errors, cpu


async def bench_backend(backend: str, workdir: Path, opts: Options) -> BackendResult:
    result = BackendResult(backend)
    async with store_backend(backend, workdir) as (store_url, raw_url, store_pid):
        raw_meter = CpuMeter({"client": os.getpid()} | ({"etcd": store_pid} if store_pid else {}))
        raw_meter.start(time.perf_counter())
        raw = await raw_puts(raw_url, opts)
        result.details["raw_cpu_cores"] = raw_meter.stop(time.perf_counter())
        result.details["raw_puts_per_s"] = raw.per_second
        result.add("raw store puts/s (baseline)", round(raw.per_second), "/s")
        profile = opts.profile_dir / f"apiserver-{backend}.prof" if opts.profile_dir else None
        log_path = workdir / "apiserver.log"
        async with apiserver_process(store_url, log_path, profile_path=profile) as api:
            pids = {"apiserver": api.pid}
            if store_pid is not None:
                pids["etcd"] = store_pid
            await measure_api(api, result, opts, pids)
        if profile is not None:
            result.details["profile"] = str(profile)
    return result


async def measure_api(
    api: ApiserverProcess, result: BackendResult, opts: Options, pids: dict[str, int]
) -> None:
    channels = client_channels(api.address, opts.channels)
    stubs = [core_pb2_grpc.PodsStub(ch) for ch in channels]
    meter = CpuMeter({**pids, "client": os.getpid()})
    details = result.details
    raw_rate = details["raw_puts_per_s"]
    try:
        meter.start(time.perf_counter())
        created = await create_pods(stubs, opts)
        details["create_cpu_cores"] = meter.stop(time.perf_counter())
        rate = created.per_second
        ratio = rate / raw_rate
        details.update(create_per_s=rate, create_ratio=ratio)
        details["create_latency_ms"] = {
            "p50": ms(harness.percentile(created.latencies, 50)),
            "p99": ms(harness.percentile(created.latencies, 99)),
        }
        result.add(
            f"Create Pod/s, {opts.concurrency} in flight",
            round(rate),
            "/s",
            f">= 50% of raw ({ratio:.0%})",
            ratio >= 0.5,
        )
        if "get" in opts.phases:
            meter.start(time.perf_counter())
            got = await get_paced(stubs, opts)
            details["get_cpu_cores"] = meter.stop(time.perf_counter())
            p99 = harness.percentile(got.latencies, 99)
            details["get_ms"] = {
                "p50": ms(harness.percentile(got.latencies, 50)),
                "p99": ms(p99),
                "service_p99": ms(harness.percentile(got.service, 99)),
                "client_max_start_lag": ms(got.max_start_lag),
                "count": len(got.latencies),
            }
            result.add(f"Get p50 @ {opts.get_rate:.0f}/s", details["get_ms"]["p50"], "ms")
            result.add(f"Get p99 @ {opts.get_rate:.0f}/s", ms(p99), "ms", "< 10 ms", p99 < 0.010)
        if "list" in opts.phases:
            await list_phase(stubs[0], result, opts)
        memory = api.memory_kib()
        rss_mb = memory["VmRSS"] * 1024 / 1e6
        details["memory_kib_after_load"] = memory
        result.add(
            f"apiserver RSS, {opts.pods} pods", round(rss_mb, 1), "MB", "< 300 MB", rss_mb < 300
        )
        if "watch" in opts.phases:
            await watch_phase(api, stubs[0], result, opts, meter)
        details["memory_kib_end"] = api.memory_kib()
    finally:
        for channel in channels:
            await channel.close()


async def list_phase(stub: Any, result: BackendResult, opts: Options) -> None:
    full, items = await list_times(stub, "", opts.list_runs)
    if items < opts.pods:
        raise RuntimeError(f"List returned {items} pods, expected at least {opts.pods}")
    p50 = harness.percentile(full, 50)
    result.details["list_ms"] = [ms(t) for t in full]
    result.add(f"List {items} pods (p50)", ms(p50), "ms", "< 300 ms", p50 < 0.300)
    selected, count = await list_times(stub, "shard=3", opts.list_runs)
    result.details["list_selector_ms"] = [ms(t) for t in selected]
    result.add(
        f"List shard=3 ({count}/{items} pods, p50)", ms(harness.percentile(selected, 50)), "ms"
    )


async def watch_phase(
    api: ApiserverProcess, stub: Any, result: BackendResult, opts: Options, meter: CpuMeter
) -> None:
    latencies, delivered, expected, errors, cpu = await watch_fanout(
        api.address, stub, opts, meter.pids
    )
    result.details["watch_cpu_cores"] = cpu
    p99 = harness.percentile(latencies, 99)
    result.details["watch"] = {
        "watchers": opts.watchers,
        "events": opts.watch_events,
        "rate": opts.watch_rate,
        "delivered": delivered,
        "expected": expected,
        "errors": errors[:10],
        "p50_ms": ms(harness.percentile(latencies, 50)),
        "p99_ms": ms(p99),
        "max_ms": ms(max(latencies, default=math.nan)),
    }
    complete = delivered == expected and not errors
    result.add(
        f"Watch delivery p50, {opts.watchers} watchers",
        ms(harness.percentile(latencies, 50)),
        "ms",
    )
    result.add(
        f"Watch delivery p99 ({delivered}/{expected} delivered)",
        ms(p99),
        "ms",
        "< 200 ms, all delivered",
        complete and p99 < 0.200,
    )


def render(result: BackendResult) -> str:
    lines = [f"== {result.backend} ==", f"{'metric':<46}{'value':>12}  {'bar':<28}result"]
    for row in result.rows:
        verdict = "" if row.passed is None else ("PASS" if row.passed else "FAIL")
        value = f"{row.value:g} {row.unit}"
        lines.append(f"{row.metric:<46}{value:>12}  {row.bar:<28}{verdict}")
    for key in ("raw_cpu_cores", "create_cpu_cores", "get_cpu_cores", "watch_cpu_cores"):
        if key in result.details:
            lines.append(f"  cores busy during {key.split('_')[0]}: {result.details[key]}")
    if "loadavg_1m" in result.details:
        before, after = result.details["loadavg_1m"]
        lines.append(f"  1-minute load average: {before:.2f} before, {after:.2f} after")
    return "\n".join(lines)


def print_profile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def parse_args(argv: list[str]) -> tuple[list[str], Options, bool, Path | None]:
    p = argparse.ArgumentParser(prog="tools/bench/apiserver", description=__doc__)
    p.add_argument("--backend", choices=["sqlite", "etcd", "both"], default="both")
    p.add_argument("--pods", type=int, default=10000, help="pods to create (default 10000)")
    p.add_argument("--quick", action="store_true", help="a smaller, faster run (smoke test)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON here")
    p.add_argument(
        "--phases",
        default="get,list,watch",
        help="phases after Create (always run), comma-separated: get,list,watch",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the apiserver under cProfile, write DIR/apiserver-<backend>.prof and print "
        "its top functions (numbers of a profiled run are slower than the real ones)",
    )
    args = p.parse_args(argv)
    opts = Options(pods=args.pods, phases=tuple(x for x in args.phases.split(",") if x))
    if args.quick:
        opts.pods = min(opts.pods, 2000)
        opts.get_seconds = 3.0
        opts.list_runs = 3
        opts.watchers = 200
        opts.watch_procs = 2
        opts.watch_events = 30
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        opts.profile_dir = args.profile.resolve()
    backends = ["sqlite", "etcd"] if args.backend == "both" else [args.backend]
    return backends, opts, args.quick, args.json


async def run(backends: list[str], opts: Options) -> list[BackendResult]:
    results = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"capstan-bench-{backend}-") as tmp:
            started = time.perf_counter()
            load_before = os.getloadavg()[0]
            result = await bench_backend(backend, Path(tmp), opts)
            result.details["seconds"] = round(time.perf_counter() - started, 1)
            # The machine is shared: say how busy it was, or numbers cannot be compared.
            result.details["loadavg_1m"] = [load_before, os.getloadavg()[0]]
            print(render(result), flush=True)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    backends, opts, quick, json_path = parse_args(sys.argv[1:] if argv is None else argv)
    pod_bytes = len(make_pod(pod_name(0), 0).SerializeToString())
    print(
        f"apiserver benchmark: {opts.pods} pods ({pod_bytes} B each before defaulting), "
        f"{opts.concurrency} in flight, {opts.watchers} watchers in {opts.watch_procs} "
        f"processes{' (quick)' if quick else ''}",
        flush=True,
    )
    try:
        results = eventloop.run(run(backends, opts))
    except KeyboardInterrupt:
        # asyncio.run cancelled the run: every process was stopped on the way out.
        print("interrupted; every process this run started has been stopped", file=sys.stderr)
        return 130
    if opts.profile_dir is not None:
        for result in results:
            print(f"\n== cProfile of the {result.backend} apiserver ==")
            print_profile(Path(result.details["profile"]), 30)
    if json_path is not None:
        json_path.write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d"),
                    "options": {k: str(v) for k, v in vars(opts).items()},
                    "results": [
                        {"backend": r.backend, "rows": [vars(x) for x in r.rows], **r.details}
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    failed = any(row.passed is False for r in results for row in r.rows)
    return 1 if failed else 0

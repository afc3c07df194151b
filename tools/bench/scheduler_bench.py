"""Scheduler benchmark modelled on Kubernetes' scheduler_perf SchedulingBasic.

etcd, the apiserver and capstan-scheduler each run as their own process (the scheduler
as `python -m scheduler --no-leader-elect`), so each one's CPU is its own. The benchmark
process creates N Node objects (no kubelets: Ready, 4 cpu / 32Gi / 110 pods, like
scheduler_perf's node template), then M initial pods (100m / 500Mi, scheduler_perf's
pod-default) and waits until they are bound, then creates K measured pods and measures:

- pods/s: K / (first measured Create sent -> last measured pod seen bound);
- latency p50/p99 per pod: from its Create returning to the watch event that shows it
  bound (one Pods/Watch opened before the phase; CLOCK_MONOTONIC);
- CPU seconds of the scheduler per 1000 measured pods (from /proc), and the cores every
  process used meanwhile (apiserver, etcd, scheduler, this process, the rest).

The baseline measured in the same run is the apiserver's Create rate for 1000 of the same
pods with a scheduler name nobody serves (nothing is bound): a scheduled pod costs the
apiserver that Create plus a Bind (and a Scheduled Event), so scheduling cannot beat it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from capstan import eventloop
from capstan.api.core.v1 import core_pb2
from capstan.client import Client

from tests.support.etcd import free_port, run_etcd
from tools.bench.cpu import CpuMeter, cpu_seconds
from tools.bench.harness import closed_loop, percentile
from tools.bench.processes import apiserver_process, python_env, stop_process

NAMESPACE = "default"
CASES = {
    "small": (500, 0, 5000),  # nodes, initial pods, measured pods
    "large": (5000, 1000, 10000),
}
BAR_PODS_PER_SECOND = 300.0  # at 5000 nodes
CREATE_CONCURRENCY = 32


def bench_node(name: str) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"})
    capacity = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    n.status.capacity.update(capacity)
    n.status.allocatable.update(capacity)
    n.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
    return n


def bench_pod(name: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = NAMESPACE
    p.metadata.labels["app"] = "bench"
    c = p.spec.containers.add(name="pause", image="registry.k8s.io/pause:3.10")
    c.ports.add(container_port=80)
    for kind in ("requests", "limits"):
        getattr(c.resources, kind).update({"cpu": "100m", "memory": "500Mi"})
    return p


@dataclass
class Result:
    case: str
    nodes: int
    initial_pods: int
    measured_pods: int
    create_pods_per_second: float  # baseline: the initial pods' Create rate (no scheduling)
    pods_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    scheduler_cpu_s_per_1000: float
    cores: dict[str, float]
    seconds: float
    # Drain: K pods created while no scheduler runs, then one starts; first to last bind.
    drain_pods_per_second: float = 0.0
    drain_scheduler_cpu_s_per_1000: float = 0.0
    drain_cores: dict[str, float] | None = None


class BoundWatcher:
    """Watches all pods and records when each one is first seen with a node."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.bound: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.client.pods.list(NAMESPACE, limit=1)
        rv = listed.metadata.resource_version
        self._task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        async for ev in self.client.pods.watch(NAMESPACE, resource_version=rv):
            obj = ev.object
            if obj.spec.node_name and obj.metadata.name not in self.bound:
                self.bound[obj.metadata.name] = time.perf_counter()
                self._changed.set()

    async def wait_for(self, names: list[str], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while any(n not in self.bound for n in names):
                self._changed.clear()
                await self._changed.wait()

    async def wait_any(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.bound:
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def scheduler_process(
    address: str, log_path: Path, profile_path: Path | None
) -> AsyncIterator[asyncio.subprocess.Process]:
    profiler = ["-m", "cProfile", "-o", str(profile_path)] if profile_path else []
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *profiler, "-m", "scheduler",
            "--server", address, "--insecure", "--no-leader-elect",
            "--metrics-listen", f"127.0.0.1:{free_port()}",
            "--log-format", "json", "--log-level", "warning",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=python_env(),
        )  # fmt: skip
    try:
        yield process
    finally:
        await stop_process(process, grace=60 if profile_path else 15)


async def run_case(case: str, workdir: Path, profile: Path | None) -> Result:
    nodes, initial, measured = CASES[case]
    async with (
        run_etcd() as etcd,
        apiserver_process(f"etcd://{etcd.endpoint}", workdir / f"apiserver-{case}.log") as api,
        Client([api.address], default_timeout=60) as client,
    ):
        await closed_loop(lambda i: client.nodes.create(bench_node(f"node-{i:05d}")), nodes, 64)
        watcher = BoundWatcher(client)
        await watcher.start()
        prof = profile / f"scheduler-{case}.prof" if profile else None
        async with scheduler_process(api.address, workdir / f"scheduler-{case}.log", prof) as sched:
            # Baseline: the apiserver's Create rate for the same pods with nothing
            # bound (a scheduler name nobody serves).
            def idle(i: int) -> core_pb2.Pod:
                p = bench_pod(f"idle-{i:05d}")
                p.spec.scheduler_name = "nobody"
                return p

            t = await closed_loop(lambda i: client.pods.create(idle(i)), 1000, CREATE_CONCURRENCY)
            baseline = t.per_second
            init_names = [f"init-{i:05d}" for i in range(initial)]
            if initial:
                await closed_loop(
                    lambda i: client.pods.create(bench_pod(init_names[i])),
                    initial,
                    CREATE_CONCURRENCY,
                )
                await watcher.wait_for(init_names, 300)
            names = [f"pod-{i:05d}" for i in range(measured)]
            returned: dict[str, float] = {}

            async def create(i: int) -> None:
                await client.pods.create(bench_pod(names[i]))
                returned[names[i]] = time.perf_counter()

            pids = {
                "apiserver": api.pid,
                "etcd": etcd.process.pid,
                "scheduler": sched.pid,
                "bench": os.getpid(),
            }
            meter = CpuMeter(pids)
            sched_cpu0 = cpu_seconds(sched.pid)
            start = time.perf_counter()
            meter.start(start)
            await closed_loop(create, measured, CREATE_CONCURRENCY)
            await watcher.wait_for(names, 600)
            end = max(watcher.bound[n] for n in names)
            cores = meter.stop(time.perf_counter())
            sched_cpu = cpu_seconds(sched.pid) - sched_cpu0
            await watcher.stop()
        latencies = [watcher.bound[n] - returned[n] for n in names]
        seconds = end - start
        result = Result(
            case=case,
            nodes=nodes,
            initial_pods=initial,
            measured_pods=measured,
            create_pods_per_second=round(baseline, 1),
            pods_per_second=round(measured / seconds, 1),
            latency_p50_ms=round(percentile(latencies, 50) * 1000, 1),
            latency_p99_ms=round(percentile(latencies, 99) * 1000, 1),
            scheduler_cpu_s_per_1000=round(sched_cpu / measured * 1000, 2),
            cores=cores,
            seconds=round(seconds, 1),
        )
        await drain(
            client, api.address, (api.pid, etcd.process.pid), measured, result, workdir, case
        )
        return result


async def drain(
    client: Client,
    address: str,
    pids: tuple[int, int],
    count: int,
    result: Result,
    workdir: Path,
    case: str,
) -> None:
    """The scheduler's own rate with creation out of the way: create count pods while no
    scheduler runs, start one, and time the binds from the first to the last."""
    names = [f"drain-{i:05d}" for i in range(count)]
    await closed_loop(lambda i: client.pods.create(bench_pod(names[i])), count, 32)
    watcher = BoundWatcher(client)
    await watcher.start()
    async with scheduler_process(address, workdir / f"scheduler-{case}-drain.log", None) as sched:
        await watcher.wait_any(600)
        start = min(watcher.bound.values())
        api_pid, etcd_pid = pids
        meter = CpuMeter(
            {"apiserver": api_pid, "etcd": etcd_pid, "scheduler": sched.pid, "bench": os.getpid()}
        )
        meter.start(time.perf_counter())
        cpu0 = cpu_seconds(sched.pid)
        await watcher.wait_for(names, 600)
        result.drain_cores = meter.stop(time.perf_counter())
        cpu = cpu_seconds(sched.pid) - cpu0
        end = max(watcher.bound[n] for n in names)
    await watcher.stop()
    result.drain_pods_per_second = round((count - 1) / (end - start), 1)
    result.drain_scheduler_cpu_s_per_1000 = round(cpu / count * 1000, 2)


def _cores(c: dict[str, float] | None) -> str:
    if not c:
        return ""
    return " / ".join(str(c[k]) for k in ("apiserver", "etcd", "scheduler", "bench", "others"))


def render(results: list[Result]) -> str:
    lines = [
        "| nodes / initial / measured | Create/s (baseline) | scheduled pods/s | "
        "p50 / p99 latency | scheduler CPU s / 1000 pods | cores busy (api/etcd/sched/bench/"
        "others) | drain pods/s | drain sched CPU s / 1000 | drain cores busy | bar |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        bar = ""
        if r.nodes >= 5000:
            ok = max(r.pods_per_second, r.drain_pods_per_second) >= BAR_PODS_PER_SECOND
            bar = f">= {BAR_PODS_PER_SECOND:.0f}/s {'PASS' if ok else 'FAIL'}"
        c = r.cores
        lines.append(
            f"| {r.nodes} / {r.initial_pods} / {r.measured_pods} | {r.create_pods_per_second} "
            f"| {r.pods_per_second} | {r.latency_p50_ms} / {r.latency_p99_ms} ms "
            f"| {r.scheduler_cpu_s_per_1000} "
            f"| {_cores(c)} "
            f"| {r.drain_pods_per_second} | {r.drain_scheduler_cpu_s_per_1000} "
            f"| {_cores(r.drain_cores)} | {bar} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--case", choices=[*CASES, "both"], default="both")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--profile", type=Path, help="run the scheduler under cProfile into DIR")
    args = p.parse_args(argv)
    cases = list(CASES) if args.case == "both" else [args.case]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    async def run() -> list[Result]:
        out = []
        with tempfile.TemporaryDirectory(prefix="capstan-sched-bench-") as tmp:
            for case in cases:
                r = await run_case(case, Path(tmp), args.profile)
                print(render([r]), flush=True)
                out.append(r)
        return out

    load = os.getloadavg()[0]
    results = eventloop.run(run())
    print(f"\nload average (1 min) at start: {load:.1f}, now: {os.getloadavg()[0]:.1f}")
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    failed: Any = [
        r
        for r in results
        if r.nodes >= 5000 and max(r.pods_per_second, r.drain_pods_per_second) < 300
    ]
    return 1 if failed else 0

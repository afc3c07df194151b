"""Kubelet benchmark: pod startup latency (creation to Running, observed through a watch, image
present) over N pods on one node, and the kubelet's RSS and CPU with those pods running.

The baseline, measured in the same run on the same dockerd, is what Docker alone needs for a
pod's two containers (sandbox + app: create, start, inspect) with nothing of ours in between.
Bars (issue 5): p99 < 2 s, kubelet RSS with 100 pods < 150 MB.
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
from pathlib import Path

from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError
from capstan.client import Client
from kubelet.docker_runtime import DockerRuntime
from kubelet.runtime import ContainerConfig

from tests.support.apiserver import apiserver_process
from tests.support.etcd import free_port
from tests.support.images import BUSYBOX, PAUSE, build_test_images
from tools.bench.harness import percentile
from tools.bench.processes import stop_process

NODE = "bench-node"
P99_BAR = 2.0
RSS_BAR_MB = 150.0


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MB, user+system CPU seconds) of one process, from /proc."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


async def docker_baseline(count: int) -> list[float]:
    rt = DockerRuntime(os.environ["DOCKER_HOST"])
    times: list[float] = []
    made: list[str] = []
    try:
        for i in range(count):
            start = time.perf_counter()
            labels = {"capstan.bench": "baseline"}
            sandbox = await rt.create(ContainerConfig(f"bench-base-sb-{i}", PAUSE, labels))
            await rt.start(sandbox)
            app = await rt.create(
                ContainerConfig(
                    f"bench-base-app-{i}",
                    BUSYBOX,
                    labels,
                    entrypoint=["sleep", "3600"],
                    network_mode=f"container:{sandbox}",
                )
            )
            await rt.start(app)
            await rt.inspect(app)
            times.append(time.perf_counter() - start)
            made += [app, sandbox]
    finally:
        for cid in made:
            await rt.remove(cid)
        await rt.close()
    return times


async def wait_node_ready(client: Client) -> None:
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(ApiError):
                node = await client.nodes.get(NODE)
                if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions):
                    return
            await asyncio.sleep(0.2)


def bench_pod(i: int) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace, p.metadata.name = "default", f"bench-{i}"
    p.spec.node_name = NODE
    p.spec.termination_grace_period_seconds = 0
    c = p.spec.containers.add(name="main", image=BUSYBOX, image_pull_policy="IfNotPresent")
    c.command.extend(["sleep", "3600"])
    return p


async def run(pods: int, rate: float, idle_seconds: float) -> dict[str, object]:
    baseline = await docker_baseline(20)
    work = Path(tempfile.mkdtemp(prefix="capstan-kubelet-bench-"))
    async with apiserver_process(f"sqlite://{work / 'state.db'}") as apiserver:
        log = (work / "kubelet.log").open("ab")
        kubelet = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kubelet", "--server", apiserver.address, "--insecure",
            "--node-name", NODE, "--root-dir", str(work / "root"),
            "--listen", f"127.0.0.1:{free_port()}", "--pod-infra-container-image", PAUSE,
            "--metrics-listen", "", "--log-format", "json", "--log-level", "warning",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        client = Client([apiserver.address], default_timeout=30)
        try:
            async with asyncio.timeout(60):
                while True:
                    try:
                        node = await client.nodes.get(NODE)
                        if any(
                            c.type == "Ready" and c.status == "True" for c in node.status.conditions
                        ):
                            break
                    except Exception:
                        pass
                    await asyncio.sleep(0.2)
            created: dict[str, float] = {}
            running: dict[str, float] = {}
            done = asyncio.Event()

            async def watch() -> None:
                async for ev in client.pods.watch("default"):
                    name = ev.object.metadata.name
                    if ev.object.status.phase == "Running" and name not in running:
                        running[name] = time.perf_counter()
                        if len(running) == pods:
                            done.set()
                            return

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.5)
            for i in range(pods):
                created[f"bench-{i}"] = time.perf_counter()
                await client.pods.create(bench_pod(i))
                await asyncio.sleep(1 / rate)
            await asyncio.wait_for(done.wait(), 300)
            watcher.cancel()
            latencies = [running[n] - created[n] for n in created]
            rss_start, cpu_start = proc_stats(kubelet.pid)
            t0 = time.perf_counter()
            await asyncio.sleep(idle_seconds)
            rss, cpu_end = proc_stats(kubelet.pid)
            idle_cpu = (cpu_end - cpu_start) / (time.perf_counter() - t0)
            for i in range(pods):
                await client.pods.delete(f"bench-{i}", "default")
            async with asyncio.timeout(120):
                while (await client.pods.list("default")).items:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
        finally:
            await client.close()
            await stop_process(kubelet, 15)
            log.close()
    return {
        "pods": pods,
        "create_rate_per_s": rate,
        "startup_p50_s": percentile(latencies, 50),
        "startup_p99_s": percentile(latencies, 99),
        "startup_max_s": max(latencies),
        "docker_baseline_p50_s": percentile(baseline, 50),
        "docker_baseline_p99_s": percentile(baseline, 99),
        "kubelet_rss_mb": round(max(rss, rss_start), 1),
        "kubelet_cpu_cores_idle": round(idle_cpu, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/bench/kubelet", description=__doc__)
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--rate", type=float, default=2.0, help="pod creations per second")
    p.add_argument("--idle-seconds", type=float, default=20.0, help="CPU/RSS sample window")
    p.add_argument("--json", default="", help="also write the results here")
    args = p.parse_args(argv)
    if not os.environ.get("DOCKER_HOST") or not os.environ.get("CAPSTAN_SANDBOX"):
        print("run inside the sandbox: tools/sandbox.sh --docker -- ...", file=sys.stderr)
        return 2
    build_test_images()
    result = asyncio.run(run(args.pods, args.rate, args.idle_seconds))
    print(f"{'metric':32} {'value':>10}  bar")
    bars = {"startup_p99_s": f"< {P99_BAR}", "kubelet_rss_mb": f"< {RSS_BAR_MB}"}
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:32} {shown:>10}  {bars.get(key, '')}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    p99, rss = result["startup_p99_s"], result["kubelet_rss_mb"]
    ok = isinstance(p99, float) and isinstance(rss, float) and p99 < P99_BAR and rss < RSS_BAR_MB
    return 0 if ok else 1

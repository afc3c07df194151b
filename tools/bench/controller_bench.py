"""Controller benchmark: how fast capstan-controller converges a 1000-replica ReplicaSet
and a 100-replica rolling update on 100 hollow nodes, and its memory with 10k pods cached.

Every component is its own process: the apiserver (SQLite store), capstan-scheduler,
capstan-kubelet --hollow (100 hollow kubelets: the real kubelet over an in-memory
runtime, so pods really go Pending -> bound -> Running/Ready), and
capstan-controller --no-leader-elect. The benchmark process only creates the objects
and watches.

- ReplicaSet 1000: "created" is the time from the ReplicaSet's Create to the 1000th pod
  ADDED on a Pods/Watch of its namespace (bar: 10 s); "available" is the time until the
  ReplicaSet's status reports 1000 available replicas (scheduled, started, ready).
- Rolling update 100: a Deployment of 100 replicas (maxSurge/maxUnavailable 25%) is
  created and left to become available, then its image changes; the time until the
  status shows 100 updated, 100 total and 100 available replicas.
- RSS: the controller's VmRSS (from /proc) after the ReplicaSet, and after 9000 more pods
  (with a scheduler name nobody serves, so nothing runs them) bring the pods it caches to
  over 10k (bar: 200 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from capstan import eventloop
from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.client import ADDED, Client

from tests.support.etcd import free_port
from tools.bench.cpu import cpu_seconds
from tools.bench.harness import closed_loop
from tools.bench.processes import apiserver_process, python_env, stop_process

BAR_CREATE_SECONDS = 10.0
BAR_RSS_MB = 200.0
NODES = 100
RS_REPLICAS = 1000
DEPLOY_REPLICAS = 100
CACHED_PODS = 10_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.asynccontextmanager
async def daemon(
    module: str, address: str, log_dir: Path, *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    log = (log_dir / f"{module}.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--server", address, "--insecure",
        "--metrics-listen", f"127.0.0.1:{free_port()}", "--log-format", "json", "--log-level",
        "warning", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=python_env(),
    )  # fmt: skip
    try:
        yield proc
    finally:
        await stop_process(proc, grace=15)
        log.close()


def template(app: str, image: str) -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.metadata.labels["app"] = app
    c = t.spec.containers.add(name="main", image=image)
    c.resources.requests.update({"cpu": "10m", "memory": "16Mi"})
    return t


async def namespace(client: Client, name: str) -> None:
    ns = core_pb2.Namespace()
    ns.metadata.name = name
    await client.namespaces.create(ns)


async def wait_for(check: Any, timeout: float, interval: float = 0.1) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if await check():
            return time.perf_counter() - start
        await asyncio.sleep(interval)
    raise TimeoutError("condition not met")


async def replicaset_phase(client: Client, controller_pid: int) -> dict[str, float]:
    await namespace(client, "rs")
    seen = 0
    done = asyncio.Event()

    async def count() -> None:
        nonlocal seen
        async for ev in client.pods.watch("rs"):
            if ev.type == ADDED:
                seen += 1
                if seen >= RS_REPLICAS:
                    done.set()
                    return

    watcher = asyncio.create_task(count())
    await asyncio.sleep(0.5)  # the watch is open
    rs = apps_pb2.ReplicaSet()
    rs.metadata.namespace, rs.metadata.name = "rs", "big"
    rs.spec.replicas = RS_REPLICAS
    rs.spec.selector.match_labels["app"] = "big"
    rs.spec.template.CopyFrom(template("big", "busybox:1"))
    cpu0 = cpu_seconds(controller_pid)
    t0 = time.perf_counter()
    await client.replicasets.create(rs)
    await asyncio.wait_for(done.wait(), 120)
    created = time.perf_counter() - t0
    watcher.cancel()

    async def available() -> bool:
        cur = await client.replicasets.get("big", "rs")
        return cur.status.available_replicas == RS_REPLICAS

    await wait_for(available, 300)
    converged = time.perf_counter() - t0
    return {
        "rs_created_s": created,
        "rs_available_s": converged,
        "rs_controller_cpu_s": cpu_seconds(controller_pid) - cpu0,
        "rss_after_rs_mb": rss_mb(controller_pid),
    }


async def rolling_phase(client: Client, controller_pid: int) -> dict[str, float]:
    await namespace(client, "deploy")
    d = apps_pb2.Deployment()
    d.metadata.namespace, d.metadata.name = "deploy", "web"
    d.spec.replicas = DEPLOY_REPLICAS
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.CopyFrom(template("web", "busybox:1"))
    await client.deployments.create(d)

    async def rolled_out() -> bool:
        cur = await client.deployments.get("web", "deploy")
        s = cur.status
        return (
            s.observed_generation >= cur.metadata.generation
            and s.updated_replicas == DEPLOY_REPLICAS
            and s.replicas == DEPLOY_REPLICAS
            and s.available_replicas == DEPLOY_REPLICAS
        )

    first = await wait_for(rolled_out, 300)
    cpu0 = cpu_seconds(controller_pid)
    for _ in range(20):
        cur = await client.deployments.get("web", "deploy")
        cur.spec.template.spec.containers[0].image = "busybox:2"
        try:
            await client.deployments.update(cur)
            break
        except Exception:  # a conflict with the controller's status write: re-read
            await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    await asyncio.sleep(0.2)  # let the generation be observed
    await wait_for(rolled_out, 300)
    return {
        "deploy_initial_s": first,
        "rolling_update_s": time.perf_counter() - t0 + 0.2,
        "rolling_controller_cpu_s": cpu_seconds(controller_pid) - cpu0,
    }


async def cache_phase(client: Client, controller_pid: int) -> dict[str, float]:
    await namespace(client, "cache")
    extra = CACHED_PODS - RS_REPLICAS - DEPLOY_REPLICAS + 100

    async def one(i: int) -> None:
        p = core_pb2.Pod()
        p.metadata.namespace = "cache"
        p.metadata.name = f"idle-{i}"
        p.metadata.labels["app"] = "idle"
        p.spec.scheduler_name = "nobody"
        p.spec.containers.add(name="main", image="busybox:1")
        await client.pods.create(p)

    await closed_loop(one, extra, 32)
    await asyncio.sleep(3.0)  # the controller's informer catches up
    total = len((await client.pods.list()).items)
    return {"cached_pods": float(total), "rss_10k_mb": rss_mb(controller_pid)}


async def run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="capstan-controller-bench-") as tmp:
        work = Path(tmp)
        async with (
            apiserver_process(f"sqlite://{work / 'state.db'}", work / "apiserver.log") as api,
            daemon("scheduler", api.address, work, "--no-leader-elect"),
            daemon(
                "kubelet",
                api.address,
                work,
                "--hollow",
                "--hollow-nodes",
                str(NODES),
                "--node-name",
                "hollow",
                "--max-pods",
                "250",
            ),  # fmt: skip
            daemon(
                "controller",
                api.address,
                work,
                "--no-leader-elect",
                "--controllers",
                "replicaset,deployment",
            ) as ctrl,  # fmt: skip
            Client([api.address], default_timeout=30) as client,
        ):

            async def nodes_ready() -> bool:
                return len((await client.nodes.list()).items) >= NODES

            await wait_for(nodes_ready, 120, 0.5)
            results: dict[str, float] = {}
            results.update(await replicaset_phase(client, ctrl.pid))
            results.update(await rolling_phase(client, ctrl.pid))
            results.update(await cache_phase(client, ctrl.pid))
            if args.keep_logs:
                keep_logs(work, Path(args.keep_logs))
            return results


def keep_logs(work: Path, dest: Path) -> None:
    for log in work.glob("*.log"):
        (dest / log.name).write_bytes(log.read_bytes())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="also write the numbers as JSON here")
    p.add_argument("--keep-logs", help="copy the daemons' logs into this directory")
    args = p.parse_args()
    results = eventloop.run(run(args))
    ok_create = results["rs_created_s"] <= BAR_CREATE_SECONDS
    ok_rss = results["rss_10k_mb"] <= BAR_RSS_MB
    print(f"nodes: {NODES} hollow kubelets, store: SQLite")
    print(
        f"ReplicaSet {RS_REPLICAS}: pods created in {results['rs_created_s']:.2f} s "
        f"(bar {BAR_CREATE_SECONDS:.0f} s: {'PASS' if ok_create else 'FAIL'}), "
        f"all available in {results['rs_available_s']:.2f} s, "
        f"controller CPU {results['rs_controller_cpu_s']:.2f} s"
    )
    print(
        f"Deployment {DEPLOY_REPLICAS}: initial rollout {results['deploy_initial_s']:.2f} s, "
        f"rolling update {results['rolling_update_s']:.2f} s, "
        f"controller CPU {results['rolling_controller_cpu_s']:.2f} s"
    )
    print(
        f"controller RSS: {results['rss_after_rs_mb']:.0f} MB after the ReplicaSet, "
        f"{results['rss_10k_mb']:.0f} MB with {results['cached_pods']:.0f} pods cached "
        f"(bar {BAR_RSS_MB:.0f} MB: {'PASS' if ok_rss else 'FAIL'})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok_create and ok_rss else 1

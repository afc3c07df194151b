"""Informer benchmark: how many watch events per second an informer absorbs, and how
much memory its cache takes per 10k pods, each against a baseline measured in the same run.

The apiserver (SQLite) and a writer (tools.bench.informer_writer) run as their own
processes. The writer creates the pods, the informer syncs (memory is measured here,
against holding the same pods as one plain List), the informer is stopped, and the writer
makes U updates. Then each consumer replays exactly those U events from the apiserver's
watch cache as fast as it can, starting at the same resource version:

- raw stream: the generated gRPC stub, events counted and dropped (the transport's and
  protobuf's share of the cost);
- typed watch: ResourceClient.watch (adds the typed WatchEvent wrapper);
- informer: resumes from where it stopped - cache update, namespace and node-name indices,
  one counting handler (what a controller's informer does per event).

    python -m tools.bench.informer [--pods 10000] [--updates 15000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from capstan import eventloop
from capstan.api.core.v1 import core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2
from capstan.client import NODE_NAME_INDEX, Client, Informer, index_by_node_name
from capstan.grpc_server import channel_options

from tools.bench.pods import NAMESPACE
from tools.bench.processes import apiserver_process, python_env


@dataclass
class Row:
    consumer: str
    events: int
    seconds: float
    # This process's CPU time while consuming: the consumer's own cost, whatever the
    # apiserver's sending rate (which bounds events/s when the consumer is cheap).
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def writer(address: str, pods: int, updates: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.bench.informer_writer", address, str(pods), str(updates),
        stdout=asyncio.subprocess.PIPE, env=python_env(),
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"writer failed with status {proc.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def probe(address: str, what: str) -> tuple[int, int]:
    """In this (fresh) process: RSS growth from holding the pods one way, and a size
    (List bytes, or objects cached)."""
    async with Client([address], default_timeout=120) as client:
        await client.namespaces.get("default")  # channel up, lazy imports done
        gc.collect()
        before = rss_kib()
        if what == "list":
            listed = await client.pods.list(NAMESPACE)
            size = listed.ByteSize()
            held: Any = listed
        else:
            informer = Informer(
                client.pods, namespace=NAMESPACE, indexers={NODE_NAME_INDEX: index_by_node_name}
            )
            informer.start()
            await informer.wait_for_sync()
            await informer.stop()
            size = len(informer.indexer)
            held = informer
        gc.collect()
        grown = rss_kib() - before
        del held
        return grown, size


async def memory_probe(address: str, what: str) -> tuple[int, int]:
    """Memory is measured in a fresh process per way of holding the pods: RSS never
    shrinks after a free, so two measurements in one process would share arenas."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.bench.informer", "--probe", what, "--address", address,
        stdout=asyncio.subprocess.PIPE, env=python_env(),
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed with status {proc.returncode}")
    kib, size = json.loads(out.decode().strip().splitlines()[-1])
    return int(kib), int(size)


async def raw_stream(address: str, start_rv: str, until: int) -> Row:
    async with grpc.aio.insecure_channel(address, options=channel_options()) as ch:
        stub = core_pb2_grpc.PodsStub(ch)
        count = 0
        t0, c0 = time.perf_counter(), time.process_time()
        async for ev in stub.Watch(
            meta_pb2.ListOptions(namespace=NAMESPACE, resource_version=start_rv)
        ):
            count += 1
            if int(ev.object.metadata.resource_version) >= until:
                break
        return Row(
            "raw gRPC stream (baseline)",
            count,
            time.perf_counter() - t0,
            time.process_time() - c0,
        )


async def typed_watch(client: Client, start_rv: str, until: int) -> Row:
    count = 0
    t0, c0 = time.perf_counter(), time.process_time()
    async for ev in client.pods.watch(NAMESPACE, resource_version=start_rv):
        count += 1
        if int(ev.object.metadata.resource_version) >= until:
            break
    return Row("ResourceClient.watch", count, time.perf_counter() - t0, time.process_time() - c0)


async def informer_replay(informer: Informer[Any], until: int) -> Row:
    seen = 0
    done = asyncio.Event()

    def on_update(old: Any, new: Any) -> None:
        nonlocal seen
        seen += 1
        if int(new.metadata.resource_version) >= until:
            done.set()

    informer.add_event_handler(on_update=on_update)
    lists = informer.lists
    t0, c0 = time.perf_counter(), time.process_time()
    informer.start()
    await done.wait()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await informer.stop()
    if informer.lists != lists:
        raise RuntimeError("the informer relisted: raise the apiserver's watch cache size")
    return Row("Informer (cache + 2 indices + handler)", seen, elapsed, cpu)


async def run(pods: int, updates: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="capstan-bench-informer-") as tmp:
        work = Path(tmp)
        async with apiserver_process(
            f"sqlite://{work / 'state.db'}", work / "apiserver.log"
        ) as api:
            created = await writer(api.address, pods, 0)
            list_kib, wire_bytes = await memory_probe(api.address, "list")
            informer_kib, cached = await memory_probe(api.address, "informer")
            async with Client([api.address], default_timeout=120) as client:
                informer = Informer(
                    client.pods,
                    namespace=NAMESPACE,
                    indexers={NODE_NAME_INDEX: index_by_node_name},
                )
                informer.start()
                await informer.wait_for_sync()
                await informer.stop()
                start_rv = informer.resource_version

                wrote = await writer(api.address, 0, updates)
                until = int(wrote["resource_version"])
                rows = [
                    await raw_stream(api.address, start_rv, until),
                    await typed_watch(client, start_rv, until),
                    await informer_replay(informer, until),
                ]
        per_10k = 10_000 / max(cached, 1)
        return {
            "pods": cached,
            "updates": updates,
            "writer_create_per_second": created["created"] / created["seconds"],
            "writer_update_per_second": wrote["updates"] / wrote["seconds"],
            "throughput": [
                asdict(r) | {"per_second": r.per_second, "cpu_us_per_event": r.cpu_us_per_event}
                for r in rows
            ],
            "memory_kib_per_10k_pods": {
                "serialised List bytes": wire_bytes / 1024 * per_10k,
                "one List held (baseline)": list_kib * per_10k,
                "informer cache + indices": informer_kib * per_10k,
            },
        }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"informer benchmark: {result['pods']} pods, {result['updates']} updates "
        f"(writer: {result['writer_update_per_second']:.0f} updates/s)",
        "",
        f"{'consumer':42} {'events':>8} {'seconds':>8} {'events/s':>10} {'CPU us/event':>13}",
    ]
    for r in result["throughput"]:
        lines.append(
            f"{r['consumer']:42} {r['events']:>8} {r['seconds']:>8.2f} "
            f"{r['per_second']:>10.0f} {r['cpu_us_per_event']:>13.1f}"
        )
    lines += ["", f"{'memory per 10k pods':42} {'MiB':>8}"]
    for name, kib in result["memory_kib_per_10k_pods"].items():
        lines.append(f"{name:42} {kib / 1024:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument(
        "--updates",
        type=int,
        default=15_000,
        help="must stay below the apiserver's watch cache size (20000 by default)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--probe", choices=["list", "informer"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(eventloop.run(probe(args.address, args.probe))))
        return 0
    result = eventloop.run(run(args.pods, args.updates))
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

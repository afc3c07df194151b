"""`top nodes` and `top pods`: CPU and memory in use, from each node's kubelet Stats, read
through the apiserver's NodeStats relay (no metrics-server needed)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

import grpc

from capstan.api.node.v1 import node_pb2
from capstan.apierrors import from_rpc_error
from capstan.cli.common import CliError, Session
from capstan.cli.printers import render_table
from capstan.machinery.quantity import cpu_millis, to_bytes

NODE_STATS_GET = "/capstan.node.v1.NodeStats/Get"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    p = sub.add_parser(
        "top",
        parents=parents,
        help="show CPU and memory use of nodes or pods",
        description="Show CPU (cores) and memory in use, as the kubelets measure them.",
    )
    what = p.add_subparsers(dest="top_kind", metavar="nodes|pods", required=True)
    n = what.add_parser("nodes", aliases=["node", "no"], parents=parents, help="per node")
    n.add_argument("names", nargs="*", metavar="NAME")
    n.add_argument("-l", "--selector", default="", help="label selector on nodes")
    n.add_argument("--no-headers", action="store_true")
    n.set_defaults(handler=run_top_nodes)
    q = what.add_parser("pods", aliases=["pod", "po"], parents=parents, help="per pod")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.add_argument("-A", "--all-namespaces", action="store_true")
    q.add_argument("-l", "--selector", default="", help="label selector on pods")
    q.add_argument("--containers", action="store_true", help="one row per container")
    q.add_argument("--no-headers", action="store_true")
    q.set_defaults(handler=run_top_pods)


async def _sample(session: Session, node: str, namespace: str) -> node_pb2.StatsSample | None:
    """One Stats sample of a node's pods (None when its kubelet does not answer)."""
    call = cast(
        Any,
        session.client.channel.unary_stream(
            NODE_STATS_GET,
            request_serializer=node_pb2.NodeStatsRequest.SerializeToString,
            response_deserializer=node_pb2.StatsSample.FromString,
        ),
    )
    request = node_pb2.NodeStatsRequest(
        node_name=node, request=node_pb2.StatsRequest(namespace=namespace)
    )
    try:
        async for sample in call(request, timeout=session.settings.timeout):
            return cast(node_pb2.StatsSample, sample)
    except grpc.aio.AioRpcError as e:
        err = from_rpc_error(e)
        if err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        raise err from None
    return None


def _cores(nano: int) -> str:
    return f"{nano // 1_000_000}m"


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)}Mi"


async def run_top_nodes(session: Session, args: argparse.Namespace) -> int:
    nodes, _ = await session.client.nodes.list_all(label_selector=args.selector)
    if args.names:
        nodes = [n for n in nodes if n.metadata.name in set(args.names)]
        missing = set(args.names) - {n.metadata.name for n in nodes}
        if missing:
            raise CliError(f'nodes "{sorted(missing)[0]}" not found')
    samples = await asyncio.gather(*(_sample(session, n.metadata.name, "") for n in nodes))
    rows = []
    for node, sample in zip(nodes, samples, strict=True):
        name = node.metadata.name
        if sample is None:
            rows.append([name, "<unknown>", "<unknown>", "<unknown>", "<unknown>"])
            continue
        cpu_nano = sample.node.cpu_usage_nano_cores
        mem = sample.node.memory_working_set_bytes
        alloc = node.status.allocatable
        cpu_alloc = cpu_millis(alloc["cpu"]) * 1_000_000 if "cpu" in alloc else 0
        mem_alloc = to_bytes(alloc["memory"]) if "memory" in alloc else 0
        rows.append(
            [
                name,
                _cores(cpu_nano),
                f"{100 * cpu_nano // cpu_alloc}%" if cpu_alloc else "<unknown>",
                _mib(mem),
                f"{100 * mem // mem_alloc}%" if mem_alloc else "<unknown>",
            ]
        )
    headers = ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    print(render_table(headers, rows, no_headers=args.no_headers), end="")
    return 0


async def run_top_pods(session: Session, args: argparse.Namespace) -> int:
    namespace = "" if args.all_namespaces else session.namespace
    pods, _ = await session.client.pods.list_all(namespace, label_selector=args.selector)
    wanted = {(p.metadata.namespace, p.metadata.name) for p in pods if p.spec.node_name}
    if args.names:
        wanted = {w for w in wanted if w[1] in set(args.names)}
        if not wanted:
            raise CliError(f'pods "{args.names[0]}" not found or not running on a node')
    nodes = sorted(
        {p.spec.node_name for p in pods if (p.metadata.namespace, p.metadata.name) in wanted}
    )
    samples = await asyncio.gather(*(_sample(session, n, namespace) for n in nodes))
    rows = []
    for sample in samples:
        if sample is None:
            continue
        for pod in sample.pods:
            if (pod.namespace, pod.name) not in wanted:
                continue
            prefix = [pod.namespace] if args.all_namespaces else []
            if args.containers:
                for c in pod.containers:
                    rows.append(
                        [
                            *prefix,
                            pod.name,
                            c.name,
                            _cores(c.usage.cpu_usage_nano_cores),
                            _mib(c.usage.memory_working_set_bytes),
                        ]
                    )
            else:
                rows.append(
                    [
                        *prefix,
                        pod.name,
                        _cores(pod.usage.cpu_usage_nano_cores),
                        _mib(pod.usage.memory_working_set_bytes),
                    ]
                )
    if not rows:
        raise CliError("metrics not available yet (no kubelet answered for these pods)")
    headers = (["NAMESPACE"] if args.all_namespaces else []) + ["NAME"]
    headers += (["CONTAINER"] if args.containers else []) + ["CPU(cores)", "MEMORY(bytes)"]
    print(render_table(headers, sorted(rows), no_headers=args.no_headers), end="")
    return 0

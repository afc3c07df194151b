"""capstan-kubelet: the node agent. With --hollow it runs --hollow-nodes kubelets on an
in-memory runtime in this one process (kubemark-style scale testing)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.client import SharedInformerFactory
from capstan.daemon import Runtime, base_parser, parse_map, run_daemon, split_csv
from capstan.grpc_server import GrpcServer, TLSConfig

from kubelet.docker_runtime import DockerRuntime
from kubelet.hollow import run_hollow_nodes
from kubelet.kubelet import Kubelet, KubeletConfig
from kubelet.node import NodeConfig, read_host
from kubelet.node_api import SERVICE, NodeApi

log = structlog.get_logger(__name__)


def parser() -> argparse.ArgumentParser:
    p = base_parser("capstan-kubelet", "Run the pods bound to this node with Docker.")
    k = p.add_argument_group("kubelet")
    k.add_argument("--node-name", default=os.environ.get("NODE_NAME", "") or os.uname().nodename)
    k.add_argument("--node-ip", default="127.0.0.1", help="InternalIP the apiserver dials")
    k.add_argument("--node-labels", action="append", default=[], help="k=v,k=v")
    k.add_argument("--pod-cidr", default="", help="informational: Docker's bridge assigns IPs")
    k.add_argument("--cluster-dns", default="", help="comma-separated cluster DNS IPs")
    k.add_argument("--cluster-domain", default="cluster.local")
    k.add_argument("--root-dir", default="/var/lib/capstan-kubelet")
    k.add_argument("--listen", default="127.0.0.1:10250", help="node API host:port")
    k.add_argument("--tls-cert-file", default="")
    k.add_argument("--tls-private-key-file", default="")
    k.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST", ""))
    k.add_argument("--pod-infra-container-image", default="capstan/pause:latest")
    k.add_argument("--max-pods", type=int, default=110)
    k.add_argument("--sync-frequency", type=float, default=60.0, help="seconds")
    k.add_argument("--node-status-update-frequency", type=float, default=10.0)
    k.add_argument(
        "--node-lease-duration-seconds",
        type=int,
        default=40,
        help="the node Lease's duration; the kubelet renews it every quarter of it",
    )
    k.add_argument("--hollow", action="store_true", help="in-memory runtime (scale tests)")
    k.add_argument("--hollow-nodes", type=int, default=1)
    return p


def kubelet_config(args: argparse.Namespace, port: int, name: str = "") -> KubeletConfig:
    return KubeletConfig(
        node=NodeConfig(
            name=name or args.node_name,
            ip=args.node_ip,
            port=port,
            labels=parse_map(args.node_labels),
            max_pods=args.max_pods,
            pod_cidr=args.pod_cidr,
            status_check_seconds=args.node_status_update_frequency,
            lease_duration_seconds=args.node_lease_duration_seconds,
            lease_seconds=args.node_lease_duration_seconds / 4,
        ),
        root_dir=Path(args.root_dir),
        cluster_dns=split_csv(args.cluster_dns),
        cluster_domain=args.cluster_domain,
        pause_image=args.pod_infra_container_image,
        sync_frequency=args.sync_frequency,
        materialize=not args.hollow,
    )


async def run_kubelet(rt: Runtime) -> None:
    args = rt.args
    if args.hollow:
        await run_hollow_nodes(rt.client, args.hollow_nodes, args.node_name, rt.stop, args)
        return
    runtime = DockerRuntime(args.docker_host or None)
    informers = SharedInformerFactory(rt.client)
    kubelet: Kubelet | None = None
    tls = TLSConfig(args.tls_cert_file, args.tls_private_key_file) if args.tls_cert_file else None

    def find(namespace: str, name: str) -> core_pb2.Pod | None:
        return kubelet.find_pod(namespace, name) if kubelet is not None else None

    api = NodeApi(
        runtime,
        args.node_name,
        find,
        lambda: kubelet.pods.list() if kubelet is not None else [],
    )
    server = GrpcServer([args.listen], [api.handler()], [SERVICE], tls)
    await server.start()
    await server.set_serving(True)
    config = kubelet_config(args, server.ports[0])
    kubelet = Kubelet(rt.client, runtime, config, informers, lambda: read_host(config.root_dir))
    try:
        await kubelet.start()
        log.info("kubelet running", node=config.node.name, node_api=server.ports[0])
        await rt.stop.wait()
    finally:
        await kubelet.stop()
        await informers.stop()
        await server.stop(2)
        await runtime.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.hollow:
        Path(args.root_dir).mkdir(parents=True, exist_ok=True)
    return run_daemon(args, run_kubelet)


if __name__ == "__main__":
    sys.exit(main())

"""capstan-proxy: one per node. Programs iptables so cluster IPs, external IPs and node ports
reach ready endpoints, routes the service CIDR to a local sink, and answers cluster DNS.

`capstan-proxy --cleanup` removes every rule and chain the proxy owns (in both iptables
backends) and the sink, and touches nothing else; it needs no apiserver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Sequence
from typing import Any

import structlog
from capstan import logs
from capstan.api.core.v1 import core_pb2
from capstan.client import NAMESPACE_INDEX, Informer, SharedInformerFactory
from capstan.daemon import Runtime, base_parser, run_daemon

from proxy.dns_records import ClusterDns
from proxy.dns_server import DnsServer, split_host_port
from proxy.iptables import BACKENDS, IptablesError, detect
from proxy.proxier import NFT_MAX_CHAINS, Proxier
from proxy.restore import parse_save, plan_cleanup
from proxy.rules import RuleConfig
from proxy.sink import DEFAULT_SINK, ensure_sink, remove_sink

log = structlog.get_logger(__name__)

CLUSTER_IP_INDEX = "clusterIP"


def build_parser() -> argparse.ArgumentParser:
    p = base_parser("capstan-proxy", __doc__ or "")
    g = p.add_argument_group("proxy")
    g.add_argument("--node-name", default=socket.gethostname(), help="this node's Node name")
    g.add_argument("--service-cidr", default="10.96.0.0/12", help="the cluster's service CIDR")
    g.add_argument(
        "--cluster-cidr", default="",
        help="pod CIDR of the whole cluster: cluster-IP traffic from outside it is masqueraded "
        "(default: the node's own pod CIDR from its Node object)",
    )  # fmt: skip
    g.add_argument("--masquerade-all", action="store_true", help="SNAT all service traffic")
    g.add_argument("--masquerade-bit", type=int, default=14, help="fwmark bit for SNAT (0-31)")
    g.add_argument(
        "--min-sync-period", type=float, default=1.0,
        help="seconds between syncs at most once (a change after a quiet period applies at once)",
    )  # fmt: skip
    g.add_argument(
        "--sync-period", type=float, default=30.0,
        help="seconds between resyncs that check the kernel's rules and repair them",
    )  # fmt: skip
    g.add_argument("--iptables-backend", choices=["auto", *BACKENDS], default="auto")
    g.add_argument(
        "--max-restore-chains", type=int, default=-1,
        help="split syncs writing more chains than this (-1: 2000 with nft, unlimited legacy)",
    )  # fmt: skip
    g.add_argument(
        "--sink", action=argparse.BooleanOptionalAction, default=True,
        help="route the service CIDR to a local sink device",
    )  # fmt: skip
    g.add_argument("--sink-device", default=DEFAULT_SINK)
    g.add_argument("--cleanup", action="store_true", help="remove all proxy rules and exit")
    d = p.add_argument_group("cluster DNS")
    d.add_argument(
        "--dns-listen", default="127.0.0.1:53", help="host:port for UDP and TCP ('' disables)"
    )
    d.add_argument("--cluster-domain", default="cluster.local")
    d.add_argument("--dns-upstream", default="", help="host[:port] for names outside the zone")
    d.add_argument("--dns-ttl", type=int, default=5)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.masquerade_bit <= 31:
        raise SystemExit("error: --masquerade-bit must be 0-31")
    if args.cleanup:
        logs.configure(args.log_format, args.log_level)
        return asyncio.run(cleanup(args.service_cidr, args.sink_device))
    holder: list[Proxier] = []
    return run_daemon(
        args,
        lambda runtime: serve(runtime, holder),
        ready=lambda: bool(holder) and holder[0].healthy(),
    )


async def cleanup(service_cidr: str, sink_device: str = DEFAULT_SINK) -> int:
    status = 0
    for backend in BACKENDS:
        try:
            iptables = await detect(backend)
            texts = plan_cleanup(
                parse_save(await iptables.save()), NFT_MAX_CHAINS if backend == "nft" else 0
            )
            for text in texts:
                await iptables.restore(text)
            if texts:
                log.info("removed proxy rules", backend=backend, transactions=len(texts))
        except IptablesError as e:
            if "not installed" not in str(e):
                log.error("cleanup failed", backend=backend, error=str(e))
                status = 1
    if await remove_sink(service_cidr, sink_device):
        log.info("removed service CIDR sink", device=sink_device)
    return status


class InformerLookup:
    """dns_records.ServiceLookup over the proxy's informer caches."""

    def __init__(
        self, services: Informer[core_pb2.Service], endpoints: Informer[core_pb2.Endpoints]
    ) -> None:
        self.services = services
        self.endpoints_informer = endpoints

    def service(self, namespace: str, name: str) -> core_pb2.Service | None:
        return self.services.get(name, namespace)

    def endpoints(self, namespace: str, name: str) -> core_pb2.Endpoints | None:
        return self.endpoints_informer.get(name, namespace)

    def has_namespace(self, namespace: str) -> bool:
        return bool(self.services.indexer.index_keys(NAMESPACE_INDEX, namespace))

    def services_by_cluster_ip(self, ip: str) -> list[core_pb2.Service]:
        return self.services.by_index(CLUSTER_IP_INDEX, ip)


def cluster_ips(service: Any) -> list[str]:
    return [
        ip for ip in service.spec.cluster_ips or [service.spec.cluster_ip] if ip and ip != "None"
    ]


async def serve(runtime: Runtime, holder: list[Proxier]) -> None:
    args = runtime.args
    client = runtime.client
    iptables = await detect(args.iptables_backend)
    log.info("iptables backend", backend=iptables.backend)
    if args.sink:
        await ensure_sink(args.service_cidr, args.sink_device)
    factory = SharedInformerFactory(client)
    services = factory.for_resource(client.services, indexers={CLUSTER_IP_INDEX: cluster_ips})
    endpoints = factory.for_resource(client.endpoints)
    node = factory.for_resource(client.nodes, field_selector=f"metadata.name={args.node_name}")
    config = RuleConfig(
        service_cidr=args.service_cidr,
        local_cidr=args.cluster_cidr,
        masquerade_all=args.masquerade_all,
        masquerade_bit=args.masquerade_bit,
    )
    proxier = Proxier(
        iptables,
        services,
        endpoints,
        config,
        node=node,
        min_interval=args.min_sync_period,
        resync_period=args.sync_period,
        max_chains=None if args.max_restore_chains < 0 else args.max_restore_chains,
        on_resync=(lambda: ensure_sink(args.service_cidr, args.sink_device)) if args.sink else None,
    )
    holder.append(proxier)
    dns: DnsServer | None = None
    tasks: list[asyncio.Task[None]] = []
    factory.start()
    try:
        synced = asyncio.create_task(factory.wait_for_sync())
        stopping = asyncio.create_task(runtime.stop.wait())
        await asyncio.wait({synced, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if runtime.stop.is_set():
            synced.cancel()
            return
        proxier.runner.request(resync=True)
        tasks.append(asyncio.create_task(proxier.runner.run(), name="proxy-sync"))
        if args.dns_listen:
            host, port = split_host_port(args.dns_listen)
            upstream = split_host_port(args.dns_upstream) if args.dns_upstream else None
            resolver = ClusterDns(
                InformerLookup(services, endpoints), args.cluster_domain, args.dns_ttl
            )
            dns = DnsServer(resolver, host, port, upstream)
            for informer in (services, endpoints):
                informer.add_event_handler(dns.invalidate, dns.invalidate, dns.invalidate)
            await dns.start()
        await runtime.stop.wait()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if dns is not None:
            await dns.stop()
        await factory.stop()


if __name__ == "__main__":
    sys.exit(main())

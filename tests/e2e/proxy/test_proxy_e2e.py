"""capstan-proxy end to end: a real apiserver, the real daemon, real iptables and real TCP
backends, all inside namespaces this module creates (netlab.py) and removes afterwards.

Endpoints are written by the test (the endpoints controller is not needed for this).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from apiserver.server import ApiServer, Config
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Client

from tests.e2e.proxy.netlab import NODE_IP, POD_CIDR, NetLab, Proc, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces"),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("ip", "nsenter", "iptables-save", "unshare")),
        reason="needs ip, nsenter, unshare and iptables",
    ),
]

BACKENDS = {"b1": 11, "b2": 12, "b3": 13}
METRICS = "10249"
UPSTREAM_PORT = "5353"
UPSTREAM_ANSWER = "192.0.2.53"


@dataclass
class Connects:
    """Who answered `count` connections: backend names, the peer address backends saw,
    errors by errno name, and the slowest attempt in seconds."""

    names: dict[str, int]
    peers: dict[str, int]
    errors: dict[str, int]
    slowest: float


@dataclass
class Env:
    lab: NetLab
    client: Client
    socket: str
    baseline: str
    proxy: Proc | None = None

    async def start_proxy(self) -> None:
        self.proxy = await self.lab.spawn(
            self.lab.node, sys.executable, "-m", "proxy",
            "--server", self.socket, "--node-name", "node1",
            "--dns-listen", f"{NODE_IP}:53", "--dns-upstream", f"127.0.0.1:{UPSTREAM_PORT}",
            "--metrics-listen", f"127.0.0.1:{METRICS}", "--sync-period", "3",
            "--iptables-backend", self.lab.backend,
            "--log-format", "json", name=f"proxy-{len(self.lab.procs)}",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                got = await self.lab.probe(self.lab.node, "http", "127.0.0.1", METRICS, "/readyz")
                if got["status"] == 200:
                    return
            await asyncio.sleep(0.2)
        raise AssertionError(f"proxy not ready: {self.proxy.log.read_text()[-3000:]}")

    async def stop_proxy(self) -> None:
        assert self.proxy is not None
        assert await self.proxy.stop() == 0, self.proxy.log.read_text()[-3000:]
        self.proxy = None

    async def service(
        self, name: str, kind: str = "ClusterIP", affinity: bool = False, headless: bool = False
    ) -> core_pb2.Service:
        svc = core_pb2.Service()
        svc.metadata.name, svc.metadata.namespace = name, "default"
        svc.spec.type = kind
        if headless:
            svc.spec.cluster_ip = "None"
        if affinity:
            svc.spec.session_affinity = "ClientIP"
            svc.spec.session_affinity_config.client_ip.timeout_seconds = 60
        svc.spec.ports.add(name="http", port=80, protocol="TCP")
        return await self.client.services.create(svc)

    async def endpoints(
        self, name: str, ready: list[str], not_ready: tuple[str, ...] = (), hostnames: bool = False
    ) -> None:
        eps = core_pb2.Endpoints()
        eps.metadata.name, eps.metadata.namespace = name, "default"
        sub = eps.subsets.add()
        for pod in ready:
            sub.addresses.add(ip=self.lab.pods[pod], hostname=f"{name}-{pod}" if hostnames else "")
        for pod in not_ready:
            sub.not_ready_addresses.add(ip=self.lab.pods[pod])
        sub.ports.add(name="http", port=8080, protocol="TCP")
        try:
            old = await self.client.endpoints.get(name, "default")
        except NotFoundError:
            await self.client.endpoints.create(eps)
            return
        eps.metadata.resource_version = old.metadata.resource_version
        await self.client.endpoints.update(eps)

    async def wait_rules(self, check: Callable[[str], bool], timeout: float = 10) -> float:
        """Seconds until iptables-save satisfies check."""
        start = time.monotonic()
        while not check(self.lab.iptables_save()):
            if time.monotonic() - start > timeout:
                raise AssertionError(f"rules not as expected after {timeout}s")
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def connect(self, netns: str, host: str, port: int, count: int) -> Connects:
        got = await self.lab.probe(netns, "connect", host, str(port), "--count", str(count))
        return Connects(got["names"], got["peers"], got["errors"], got["slowest"])


def ours(save: str) -> list[str]:
    return [line for line in save.splitlines() if "CAPSTAN" in line]


@pytest.fixture(scope="module", params=["nft", "legacy"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """The whole module once per iptables backend."""
    if not shutil.which(f"iptables-{request.param}-restore"):
        pytest.skip(f"iptables-{request.param} is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="cpx-"))  # short: unix socket paths are limited
    lab = NetLab(workdir, backend=request.param)
    server: ApiServer | None = None
    client: Client | None = None
    try:
        lab.create()
        for pod, index in BACKENDS.items():
            lab.add_pod(pod, index)
        lab.add_pod("client", 20)
        # Someone else's rules, which the proxy must leave alone.
        lab.iptables("-t", "nat", "-N", "FOREIGN-TEST")
        lab.iptables(
            "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9", "-j", "FOREIGN-TEST"
        )
        lab.iptables("-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "ACCEPT")
        baseline = lab.iptables_save()
        socket = f"unix://{workdir}/api.sock"
        server = await ApiServer.open(
            Config(listen=[socket], store=f"sqlite:///{workdir}/state.db", metrics_listen="")
        )
        await server.start()
        client = Client([socket])
        node = core_pb2.Node()
        node.metadata.name = "node1"
        node.spec.pod_cidr = POD_CIDR
        await client.nodes.create(node)
        for pod in BACKENDS:
            await lab.serve(pod, 8080)
        await lab.spawn(
            lab.node, sys.executable, "-m", "tests.e2e.proxy.probe", "upstream",
            "--port", UPSTREAM_PORT, "--answer", UPSTREAM_ANSWER, name="upstream",
        )  # fmt: skip
        e = Env(lab, client, socket, baseline)
        await e.start_proxy()
        yield e
    finally:
        await lab.close()
        if client is not None:
            await client.close()
        if server is not None:
            await server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_cluster_ip_spreads_evenly_and_unready_backend_leaves_rotation(env: Env) -> None:
    svc = await env.service("web")
    ip = svc.spec.cluster_ip
    await env.endpoints("web", ["b1", "b2", "b3"])
    await env.wait_rules(lambda s: "default/web:http -> 10.200.0.13:8080" in s)
    got = await env.connect(env.lab.node, ip, 80, 300)
    assert got.errors == {}
    names = got.names
    assert isinstance(names, dict) and set(names) == {"b1", "b2", "b3"}
    assert all(60 <= n <= 140 for n in names.values()), names  # 100 each expected
    # From a pod too (PREROUTING, then back through the bridge).
    from_pod = await env.connect(env.lab.pod_netns("client"), ip, 80, 30)
    assert from_pod.errors == {} and sum(from_pod.names.values()) == 30

    start = time.monotonic()
    await env.endpoints("web", ["b2", "b3"], not_ready=("b1",))
    await env.wait_rules(lambda s: "default/web:http -> 10.200.0.11:8080" not in s)
    assert time.monotonic() - start < 2.0
    after = await env.connect(env.lab.node, ip, 80, 60)
    assert after.errors == {} and "b1" not in after.names


async def test_no_endpoints_is_refused_and_unknown_cluster_ip_never_leaves(env: Env) -> None:
    svc = await env.service("empty")
    await env.wait_rules(lambda s: "default/empty:http has no endpoints" in s)
    got = await env.connect(env.lab.node, svc.spec.cluster_ip, 80, 3)
    assert got.errors == {"ECONNREFUSED": 3} and got.slowest < 0.5
    # A cluster IP nobody has: routed to the sink and rejected at once.
    nobody = await env.connect(env.lab.node, "10.111.222.233", 80, 2)
    assert nobody.names == {} and nobody.slowest < 0.5
    assert set(nobody.errors) <= {"ENETUNREACH", "EHOSTUNREACH"}
    assert "capstan-sink" in run("ip", "route", "show", "10.96.0.0/12", netns=env.lab.node)


async def test_node_port_from_outside_and_from_the_node(env: Env) -> None:
    svc = await env.service("np", kind="NodePort")
    node_port = svc.spec.ports[0].node_port
    assert node_port
    await env.endpoints("np", ["b2", "b3"])
    await env.wait_rules(
        lambda s: f"--dport {node_port} -j CAPSTAN-EXT-" in s and "np:http ->" in s
    )
    outside = await env.connect(env.lab.pod_netns("client"), NODE_IP, node_port, 30)
    assert outside.errors == {} and set(outside.names) == {"b2", "b3"}
    # Masqueraded: backends see the node's address, so replies return through the node.
    assert outside.peers == {NODE_IP: 30}
    local = await env.connect(env.lab.node, NODE_IP, node_port, 5)
    assert local.errors == {} and sum(local.names.values()) == 5


async def test_session_affinity_pins_a_client(env: Env) -> None:
    svc = await env.service("sticky", affinity=True)
    await env.endpoints("sticky", ["b1", "b2", "b3"])
    await env.wait_rules(lambda s: "default/sticky:http -> 10.200.0.13:8080" in s)
    for netns in (env.lab.pod_netns("client"), env.lab.node):
        got = await env.connect(netns, svc.spec.cluster_ip, 80, 30)
        assert got.errors == {} and len(got.names) == 1, got


async def test_dns_answers_every_record_kind(env: Env) -> None:
    web = await env.client.services.get("web", "default")
    await env.service("db", headless=True)
    await env.endpoints("db", ["b1", "b2"], hostnames=True)
    ext = core_pb2.Service()
    ext.metadata.name, ext.metadata.namespace = "search", "default"
    ext.spec.type, ext.spec.external_name = "ExternalName", "search.example.org"
    await env.client.services.create(ext)
    pod = env.lab.pod_netns("client")

    async def ask(name: str, rdtype: str = "A", *flags: str) -> dict[str, object]:
        got: dict[str, object] = await env.lab.probe(pod, "dns", NODE_IP, name, rdtype, *flags)
        return got

    zone = "default.svc.cluster.local."
    deadline = time.monotonic() + 10
    while (await ask(f"db.{zone}"))["answer"] != ["10.200.0.11", "10.200.0.12"]:
        assert time.monotonic() < deadline, "headless service never answered"
        await asyncio.sleep(0.2)
    assert (await ask(f"web.{zone}"))["answer"] == [web.spec.cluster_ip]
    assert (await ask(f"web.{zone}", "A", "--tcp"))["answer"] == [web.spec.cluster_ip]
    assert (await ask(f"db-b2.db.{zone}"))["answer"] == ["10.200.0.12"]
    srv = await ask(f"_http._tcp.web.{zone}", "SRV")
    assert srv["answer"] == [f"0 100 80 web.{zone}"]
    cname = await ask(f"search.{zone}")
    assert cname["types"] == ["CNAME"] and cname["answer"] == ["search.example.org."]
    assert (await ask(f"nope.{zone}"))["rcode"] == "NXDOMAIN"
    # Outside the zone: forwarded to the configured upstream.
    assert (await ask("example.org."))["answer"] == [UPSTREAM_ANSWER]
    # Inside a pod, through the C library and a pod's resolv.conf with the search path.
    resolv = env.lab.workdir / "resolv.conf"
    resolv.write_text(
        f"nameserver {NODE_IP}\nsearch default.svc.cluster.local svc.cluster.local "
        "cluster.local\noptions ndots:5\n"
    )
    script = f"mount --bind {resolv} /etc/resolv.conf && getent ahostsv4 web db.default"
    out = run("unshare", "--mount", "sh", "-c", script, netns=pod)
    assert web.spec.cluster_ip in out and "10.200.0.11" in out


async def test_delete_repair_restart_and_cleanup(env: Env) -> None:
    await env.service("gone")
    await env.endpoints("gone", ["b1"])
    await env.wait_rules(lambda s: "default/gone:http ->" in s)
    await env.client.services.delete("gone", "default")
    await env.client.endpoints.delete("gone", "default")
    await env.wait_rules(lambda s: "default/gone" not in s)

    # Rules deleted behind the proxy's back come back with the next resync (--sync-period 3).
    save = env.lab.iptables_save()
    web_chain = next(
        line.split()[1]
        for line in save.splitlines()
        if line.startswith("-A CAPSTAN-SVC-") and "default/web:http" in line
    )
    env.lab.iptables("-t", "nat", "-F", web_chain)
    env.lab.iptables("-t", "nat", "-D", "OUTPUT", "-m", "comment", "--comment",
                     "capstan service portals", "-j", "CAPSTAN-SERVICES")  # fmt: skip
    await env.wait_rules(lambda s: ours(s) == ours(save), timeout=8)

    async def scrape() -> dict[str, float]:
        got = await env.lab.probe(env.lab.node, "http", "127.0.0.1", METRICS, "/metrics")
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in got["body"].splitlines()
            if line and not line.startswith("#")
        }

    # The resync counts its repair once its restore has returned, a moment after the rules
    # are visible: scrape until the count shows (bounded).
    deadline = time.monotonic() + 5
    metrics = await scrape()
    while metrics["capstan_proxy_chains_repaired_total"] < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        metrics = await scrape()
    assert metrics["capstan_proxy_chains_repaired_total"] >= 1
    assert metrics["capstan_proxy_sync_proxy_rules_last_timestamp_seconds"] > time.time() - 10
    assert metrics['capstan_proxy_sync_proxy_rules_duration_seconds_count{kind="partial"}'] >= 1
    assert metrics['capstan_proxy_sync_proxy_rules_total{table="nat"}'] > 20

    # A restarted proxy rebuilds exactly the same rules.
    before = ours(env.lab.iptables_save())
    await env.stop_proxy()
    await env.start_proxy()
    await asyncio.sleep(1.5)
    assert ours(env.lab.iptables_save()) == before

    # --cleanup leaves the tables exactly as they were before the proxy ever ran.
    await env.stop_proxy()
    run(sys.executable, "-m", "proxy", "--cleanup", "--log-format", "json", netns=env.lab.node)
    assert env.lab.iptables_save() == env.baseline
    assert "FOREIGN-TEST" in env.baseline
    assert "capstan-sink" not in run("ip", "link", "show", netns=env.lab.node)

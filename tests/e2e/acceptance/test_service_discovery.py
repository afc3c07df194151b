"""Scenario 4: service discovery. A deployment exposed as a NodePort Service is reached by
cluster IP, by DNS name (short, namespaced, fully qualified) and by node port, from a pod and
from the nodes' own network namespaces; a pod started after the Service gets its
Kubernetes-style environment variables."""

from __future__ import annotations

import functools

import pytest

from tests.e2e.acceptance.cluster import NODES, Capstan, Cluster, eventually

pytestmark = [pytest.mark.e2e]

KUARD = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: kuard
    spec:
      replicas: 2
      selector:
        matchLabels: {app: kuard}
      template:
        metadata:
          labels: {app: kuard}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: demo
            image: capstan/demo:1
            ports:
            - {containerPort: 8080}
            readinessProbe:
              httpGet: {path: /ready, port: 8080}
              periodSeconds: 1
"""

CLIENT = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: client
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: util
        image: capstan/util:1
"""

# dnspython from the project's venv stands in for dig on the node (the node's resolver is the
# host's; the cluster DNS listens on each node's own address).
RESOLVE = (
    "import sys, dns.resolver; r = dns.resolver.Resolver(configure=False);"
    "r.nameservers = [sys.argv[1]]; print(r.resolve(sys.argv[2], 'A')[0].address)"
)


def node_ip(i: int) -> str:
    return f"10.250.0.{10 + i}"


def node_gets(cluster: Cluster, i: int, url: str, want: str) -> bool:
    """url, fetched from node i's own namespace, answers want."""
    return cluster.in_node(i, "curl", "-sf", "-m", "5", url).out.strip() == want


def test_service_discovery(cluster: Cluster, k: Capstan) -> None:
    k.apply(KUARD)
    k.wait_rollout("deployment/kuard")
    assert k("expose", "deployment", "kuard", "--type", "NodePort", "--port", "80",
             "--target-port", "8080").strip() == "service/kuard exposed"  # fmt: skip
    svc = k.get("service", "kuard")
    cluster_ip = svc["spec"]["clusterIP"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    row = k("get", "service", "kuard", "--no-headers").split()
    assert row[1:3] == ["NodePort", cluster_ip] and row[4] == f"80:{node_port}/TCP", row
    eventually(
        lambda: len(k.get("endpoints", "kuard").get("subsets", [{}])[0].get("addresses", [])) == 2,
        "two ready endpoints",
    )

    # A pod started after the Service: the docker-links-style variables.
    k.apply(CLIENT)
    k.wait_ready("client")
    env = dict(
        line.split("=", 1) for line in k("exec", "client", "--", "env").splitlines() if "=" in line
    )
    assert env["KUARD_SERVICE_HOST"] == cluster_ip
    assert env["KUARD_SERVICE_PORT"] == "80"
    assert env["KUARD_PORT"] == f"tcp://{cluster_ip}:80"
    assert env["KUARD_PORT_80_TCP"] == f"tcp://{cluster_ip}:80"
    assert env["KUARD_PORT_80_TCP_ADDR"] == cluster_ip
    assert env["KUARD_PORT_80_TCP_PORT"] == "80"
    assert env["KUARD_PORT_80_TCP_PROTO"] == "tcp"

    # From a pod: cluster IP, the three DNS names, every node's node port.
    fqdn = f"kuard.{k.ns}.svc.cluster.local"
    targets = [cluster_ip, "kuard", f"kuard.{k.ns}", fqdn]
    targets += [f"{node_ip(i)}:{node_port}" for i in range(1, NODES + 1)]
    for target in targets:
        k.exec_until("client", f"timeout 5 wget -qO- http://{target}/version", "1")
    lookup = k.exec_until("client", f"nslookup {fqdn}", cluster_ip)
    assert f"Name:\t{fqdn}" in lookup or f"Name: {fqdn}" in lookup, lookup
    # The demo page names the pod that served it: both replicas serve through the Service.
    pods = {p["metadata"]["name"] for p in k.items("pods", "-l", "app=kuard")}
    served: set[str] = set()

    def both_served() -> bool:
        page = k.exec("client", f"timeout 5 wget -qO- http://{cluster_ip}/").out
        served.update(name for name in pods if f"hostname: {name}" in page)
        return served == pods

    eventually(
        both_served, "both replicas answering through the cluster IP", timeout=30, interval=0
    )

    # From the nodes' own namespaces: cluster IP, node ports (its own and another node's) and
    # the cluster DNS on the node's address.
    for i in range(1, NODES + 1):
        other = i % NODES + 1
        for url in (
            f"http://{cluster_ip}/version",
            f"http://{node_ip(i)}:{node_port}/version",
            f"http://{node_ip(other)}:{node_port}/version",
        ):
            serves = functools.partial(node_gets, cluster, i, url, "1")
            eventually(serves, f"{url} from node{i}", timeout=20)
        answer = cluster.in_node(i, str(cluster.python), "-c", RESOLVE, node_ip(i), fqdn)
        assert answer.rc == 0 and answer.out.strip() == cluster_ip, answer

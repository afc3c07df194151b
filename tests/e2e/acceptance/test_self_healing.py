"""Scenario 10: self-healing. A node whose kubelet is killed (-9) stops heartbeating; the node
lifecycle controller marks it NotReady and evicts its pods, and their ReplicaSet brings them
back on the other nodes. Then each control-plane daemon is killed -9 in turn during a rollout
and restarted the way tools/cluster starts it: the cluster converges with nothing lost.

These tests kill daemons, so they run after every other scenario (the `disruptive` marker),
and put each daemon back before they end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.acceptance.cluster import Capstan, Cluster, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.disruptive]


def deployment(name: str, image: str, replicas: int, min_ready: int = 0) -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:
      replicas: {replicas}
      minReadySeconds: {min_ready}
      strategy:
        rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
      selector:
        matchLabels: {{app: {name}}}
      template:
        metadata:
          labels: {{app: {name}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: demo
            image: {image}
            readinessProbe:
              httpGet: {{path: /ready, port: 8080}}
              periodSeconds: 1
    """


def live_pods(k: Capstan, app: str) -> list[dict[str, Any]]:
    return [
        p for p in k.items("pods", "-l", f"app={app}") if "deletionTimestamp" not in p["metadata"]
    ]


def node_status(k: Capstan, node: str) -> str:
    row = k("get", "node", node, "--no-headers", namespaced=False).split()
    return row[1]


@pytest.fixture
def restore(cluster: Cluster) -> Iterator[list[str]]:
    """Daemons a test killed; started again at the end whatever happened."""
    killed: list[str] = []
    try:
        yield killed
    finally:
        for daemon in killed:
            if not cluster.running(daemon):
                cluster.restart(daemon)


def test_pods_leave_a_dead_node(cluster: Cluster, k: Capstan, restore: list[str]) -> None:
    k.apply(deployment("heal", "capstan/demo:1", replicas=3))
    k.wait_rollout("deployment/heal")
    pods = live_pods(k, "heal")
    victim = pods[0]["spec"]["nodeName"]
    doomed = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim}

    restore.append(f"kubelet-{victim}")
    cluster.kill9(f"kubelet-{victim}")
    eventually(lambda: node_status(k, victim) == "NotReady", f"{victim} NotReady", timeout=40)

    def healed() -> bool:
        live = live_pods(k, "heal")
        assert not doomed & {p["metadata"]["name"] for p in live}, "evicted pods still live"
        assert len(live) == 3, [p["metadata"]["name"] for p in live]
        for p in live:
            assert p["spec"]["nodeName"] != victim
            assert k.pod_ready(p["metadata"]["name"])
        return True

    eventually(healed, "3 ready replicas on the other nodes", timeout=60)
    taints = {t["key"] for t in k.get("node", victim)["spec"].get("taints", [])}
    assert "node.kubernetes.io/unreachable" in taints, taints
    row = k("get", "deployment", "heal", "--no-headers").split()
    assert row[1] == "3/3", row

    # The kubelet comes back: the node turns Ready, the evicted pods finish terminating.
    cluster.restart(f"kubelet-{victim}")
    eventually(lambda: node_status(k, victim) == "Ready", f"{victim} Ready again", timeout=40)
    eventually(
        lambda: not doomed & {p["metadata"]["name"] for p in k.items("pods", "-l", "app=heal")},
        "the evicted pods gone",
        timeout=60,
    )


def test_control_plane_crashes_during_rollout(
    cluster: Cluster, k: Capstan, restore: list[str]
) -> None:
    k("create", "configmap", "keepsake", "--from-literal", "answer=42")
    k.apply(deployment("steady", "capstan/demo:1", replicas=4, min_ready=1))
    k.wait_rollout("deployment/steady")

    # A slow rollout (one surge pod at a time, each ready for 1 s before it counts): every
    # daemon dies and comes back while it is under way.
    k.apply(deployment("steady", "capstan/demo:2", replicas=4, min_ready=1))
    for daemon in ("apiserver", "scheduler", "controller"):
        restore.append(daemon)
        cluster.kill9(daemon)
        cluster.restart(daemon)
        restore.remove(daemon)

    k.wait_rollout("deployment/steady", timeout=120)

    def converged() -> bool:
        dep = k.get("deployment", "steady")
        status = dep["status"]
        assert status.get("observedGeneration") == dep["metadata"]["generation"], status
        for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
            assert status.get(field) == 4, status
        pods = k.items("pods", "-l", "app=steady")
        images = sorted(p["spec"]["containers"][0]["image"] for p in pods)
        assert images == ["capstan/demo:2"] * 4, images
        for p in pods:
            assert k.pod_ready(p["metadata"]["name"])
        sets = {
            r["spec"]["template"]["spec"]["containers"][0]["image"]: r["spec"]["replicas"]
            for r in k.items("rs", "-l", "app=steady")
        }
        assert sets == {"capstan/demo:1": 0, "capstan/demo:2": 4}, sets
        return True

    eventually(converged, "the rollout converged", timeout=60)
    history = k("rollout", "history", "deployment/steady").split()
    assert history[history.index("CHANGE-CAUSE") + 1 :: 2] == ["1", "2"], history
    assert k.get("configmap", "keepsake")["data"] == {"answer": "42"}
    # Every daemon serves again: a new pod is scheduled and started.
    k("run", "after", "--image", "capstan/util:1", "--restart", "Never")
    k.wait_ready("after")
    status = cluster.launcher("status").out
    assert "stopped" not in status and "SERVING" in status, status

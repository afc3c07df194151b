"""Scenario 7: a DaemonSet restricted by a nodeSelector runs one pod on exactly the labelled
nodes of the 3-node cluster, and follows the labels: label a node and a pod appears there,
remove the label and it goes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.acceptance.cluster import NODES, Capstan, eventually

pytestmark = [pytest.mark.e2e]

ALL_NODES = [f"node{i}" for i in range(1, NODES + 1)]


@pytest.fixture
def label_key(k: Capstan) -> Iterator[str]:
    """A node label of this test's own; removed from every node afterwards."""
    key = f"ssd-{k.ns}"[:63]
    try:
        yield key
    finally:
        k.run("label", "nodes", *ALL_NODES, f"{key}-", namespaced=False)


def manifest(key: str) -> str:
    return f"""
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: ssd-monitor
    spec:
      selector:
        matchLabels: {{app: ssd-monitor}}
      template:
        metadata:
          labels: {{app: ssd-monitor}}
        spec:
          terminationGracePeriodSeconds: 0
          nodeSelector:
            {key}: "true"
          containers:
          - name: monitor
            image: capstan/util:1
    """


def placement(k: Capstan) -> list[str]:
    """The nodes of the DaemonSet's live pods (sorted, repeats kept)."""
    return sorted(
        p["spec"].get("nodeName", "")
        for p in k.items("pods", "-l", "app=ssd-monitor")
        if "deletionTimestamp" not in p["metadata"]
    )


def settled(k: Capstan, nodes: list[str]) -> bool:
    assert placement(k) == nodes, placement(k)
    status = k.get("daemonset", "ssd-monitor")["status"]
    want = len(nodes)
    assert status.get("desiredNumberScheduled", 0) == want, status
    assert status.get("numberReady", 0) == want, status
    return True


def test_daemonset_follows_node_labels(k: Capstan, label_key: str) -> None:
    def label(node: str, change: str) -> str:
        return k("label", "node", node, change, namespaced=False)

    assert label("node1", f"{label_key}=true").strip() == "node/node1 labeled"
    label("node3", f"{label_key}=true")
    assert k.names("nodes", "-l", label_key, namespaced=False) == {"node1", "node3"}

    k.apply(manifest(label_key))
    eventually(lambda: settled(k, ["node1", "node3"]), "pods on node1 and node3")
    row = k("get", "daemonset", "ssd-monitor", "--no-headers").split()
    assert row[1:6] == ["2", "2", "2", "2", "2"] and row[6] == f"{label_key}=true", row

    label("node2", f"{label_key}=true")
    eventually(lambda: settled(k, ALL_NODES), "a pod on node2 too")

    label("node3", f"{label_key}-")
    eventually(lambda: settled(k, ["node1", "node2"]), "the pod on node3 gone")

"""The garbage collector's ownership graph keeps the reverse index exact."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from controller.garbagecollector import Graph, graph_node

pytestmark = pytest.mark.unit


def pod(uid: str, *owners: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = f"p-{uid}", "ns", uid
    for o in owners:
        p.metadata.owner_references.add(kind="ReplicaSet", name=o, uid=o, block_owner_deletion=True)
    return p


def test_dependents_follow_owner_reference_changes() -> None:
    g = Graph()
    g.upsert("a", graph_node("Pod", pod("a", "rs1")))
    g.upsert("b", graph_node("Pod", pod("b", "rs1", "rs2")))
    assert g.dependents_of("rs1") == ["a", "b"]
    assert g.dependents_of("rs2") == ["b"]
    g.upsert("b", graph_node("Pod", pod("b", "rs2")))
    assert g.dependents_of("rs1") == ["a"]
    g.remove("a")
    assert g.dependents_of("rs1") == []
    assert "rs1" not in g.dependents
    node = g.nodes["b"]
    assert node.owners[0].block and node.kind == "Pod" and not node.deleting

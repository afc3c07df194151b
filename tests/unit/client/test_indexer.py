"""The informer cache's indices stay correct through upserts, moves and removals."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.client.indexer import (
    NAMESPACE_INDEX,
    NODE_NAME_INDEX,
    OWNER_UID_INDEX,
    Indexer,
    index_by_label,
    index_by_namespace,
    index_by_node_name,
    index_by_owner_uid,
    object_key,
    split_key,
)

pytestmark = pytest.mark.unit


def pod(ns: str, name: str, node: str = "", owner: str = "", app: str = "") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace = ns
    p.metadata.name = name
    p.spec.node_name = node
    if owner:
        p.metadata.owner_references.append(meta_pb2.OwnerReference(uid=owner, kind="ReplicaSet"))
    if app:
        p.metadata.labels["app"] = app
    return p


def make() -> Indexer[core_pb2.Pod]:
    return Indexer(
        {
            NAMESPACE_INDEX: index_by_namespace,
            NODE_NAME_INDEX: index_by_node_name,
            OWNER_UID_INDEX: index_by_owner_uid,
            "app": index_by_label("app"),
        }
    )


def names(pods: list[core_pb2.Pod]) -> list[str]:
    return [p.metadata.name for p in pods]


def test_keys() -> None:
    assert object_key(pod("ns", "a")) == "ns/a"
    node = core_pb2.Node()
    node.metadata.name = "n1"
    assert object_key(node) == "n1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("n1") == ("", "n1")


def test_indices_follow_updates_and_removals() -> None:
    idx = make()
    idx.upsert("a/p1", pod("a", "p1", node="n1", owner="u1", app="web"))
    idx.upsert("a/p2", pod("a", "p2", node="n1", owner="u1"))
    idx.upsert("b/p3", pod("b", "p3", node="n2", app="web"))
    assert names(idx.by_index(NODE_NAME_INDEX, "n1")) == ["p1", "p2"]
    assert names(idx.by_index(OWNER_UID_INDEX, "u1")) == ["p1", "p2"]
    assert names(idx.by_index("app", "web")) == ["p1", "p3"]
    assert names(idx.by_index(NAMESPACE_INDEX, "b")) == ["p3"]

    # p1 moves node and loses its label.
    old = idx.upsert("a/p1", pod("a", "p1", node="n2", owner="u1"))
    assert old is not None and old.spec.node_name == "n1"
    assert names(idx.by_index(NODE_NAME_INDEX, "n1")) == ["p2"]
    assert names(idx.by_index(NODE_NAME_INDEX, "n2")) == ["p1", "p3"]
    assert names(idx.by_index("app", "web")) == ["p3"]

    idx.remove("a/p2")
    assert idx.by_index(NODE_NAME_INDEX, "n1") == []
    assert "n1" not in idx.index_values(NODE_NAME_INDEX)
    assert idx.remove("a/missing") is None
    assert len(idx) == 2


def test_indexer_added_later_covers_existing_objects_and_rejects_clashes() -> None:
    idx: Indexer[core_pb2.Pod] = Indexer()
    idx.upsert("a/p1", pod("a", "p1", node="n1"))
    idx.add_indexers({NODE_NAME_INDEX: index_by_node_name})
    idx.add_indexers({NODE_NAME_INDEX: index_by_node_name})  # same function: fine
    assert names(idx.by_index(NODE_NAME_INDEX, "n1")) == ["p1"]
    with pytest.raises(ValueError):
        idx.add_indexers({NODE_NAME_INDEX: index_by_namespace})
    with pytest.raises(KeyError):
        idx.by_index("nope", "x")

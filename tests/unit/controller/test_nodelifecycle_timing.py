"""Node lifecycle decisions with a fake clock: staleness, taints, eviction deadlines, CIDRs."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from controller.nodelifecycle import (
    NO_EXECUTE,
    NOT_READY,
    UNREACHABLE,
    CidrAllocator,
    desired_taints,
    eviction_time,
    mark_unknown,
    reconcile_taints,
)

pytestmark = pytest.mark.unit


def node(ready: str) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = "n1"
    n.status.conditions.add(type="Ready", status=ready, reason="KubeletReady")
    n.status.conditions.add(type="MemoryPressure", status="False")
    return n


def test_mark_unknown_sets_every_condition() -> None:
    n = node("True")
    mark_unknown(n, 1000.0)
    assert {(c.type, c.status, c.reason) for c in n.status.conditions} == {
        ("Ready", "Unknown", "NodeStatusUnknown"),
        ("MemoryPressure", "Unknown", "NodeStatusUnknown"),
    }


def test_taints_follow_ready_condition_and_keep_time_added() -> None:
    n = node("Unknown")
    assert reconcile_taints(n, 100.0)
    assert sorted((t.key, t.effect) for t in n.spec.taints) == [
        (UNREACHABLE, NO_EXECUTE),
        (UNREACHABLE, "NoSchedule"),
    ]
    added = next(t for t in n.spec.taints if t.effect == NO_EXECUTE).time_added.seconds
    assert added == 100
    assert not reconcile_taints(n, 200.0)
    n.status.conditions[0].status = "False"
    assert desired_taints(n) == [(NOT_READY, "NoSchedule"), (NOT_READY, NO_EXECUTE)]
    reconcile_taints(n, 300.0)
    assert {t.key for t in n.spec.taints} == {NOT_READY}
    n.status.conditions[0].status = "True"
    n.spec.taints.add(key="dedicated", effect="NoSchedule")
    reconcile_taints(n, 400.0)
    assert [t.key for t in n.spec.taints] == ["dedicated"]


def test_eviction_deadline_default_and_toleration_seconds() -> None:
    taint = core_pb2.Taint(key=UNREACHABLE, effect=NO_EXECUTE)
    taint.time_added.seconds = 1000
    plain = core_pb2.Pod()
    assert eviction_time(plain, [taint], 300.0) == 1300.0
    bounded = core_pb2.Pod()
    bounded.spec.tolerations.add(
        key=UNREACHABLE, operator="Exists", effect=NO_EXECUTE, toleration_seconds=30
    )
    assert eviction_time(bounded, [taint], 300.0) == 1030.0
    forever = core_pb2.Pod()
    forever.spec.tolerations.add(operator="Exists")
    assert eviction_time(forever, [taint], 300.0) is None


def test_cidr_allocator_skips_used_and_reserved() -> None:
    alloc = CidrAllocator("10.244.0.0/22", 24)
    assert alloc.allocate({"10.244.0.0/24"}) == "10.244.1.0/24"
    assert alloc.allocate(set()) == "10.244.0.0/24"
    assert alloc.allocate({"10.244.0.0/24"}) == "10.244.2.0/24"
    assert alloc.allocate(set()) == "10.244.3.0/24"
    assert alloc.allocate(set()) is None

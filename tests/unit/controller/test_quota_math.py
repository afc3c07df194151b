"""Quota usage and LimitRange arithmetic shared by admission and the controller."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.machinery import kinds
from capstan.machinery import quota as q

pytestmark = pytest.mark.unit

POD = kinds.by_kind("Pod")


def pod(*resources: tuple[str, str, str, str]) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = "p"
    for i, (rc, rm, lc, lm) in enumerate(resources):
        c = p.spec.containers.add(name=f"c{i}", image="x")
        for target, name, value in (
            (c.resources.requests, "cpu", rc),
            (c.resources.requests, "memory", rm),
            (c.resources.limits, "cpu", lc),
            (c.resources.limits, "memory", lm),
        ):
            if value:
                target[name] = value
    return p


def test_pod_usage_sums_containers() -> None:
    u = q.usage(POD, pod(("100m", "64Mi", "200m", ""), ("150m", "64Mi", "", "")))
    assert u["pods"] == 1 and u["count/pods"] == 1
    assert u["requests.cpu"] == Fraction(1, 4) and u["cpu"] == Fraction(1, 4)
    assert q.format_amount("requests.memory", u["requests.memory"]) == "128Mi"
    assert u["limits.cpu"] == Fraction(1, 5)


def test_exceeded_message_matches_kubernetes() -> None:
    hard = {"pods": "2"}
    used = {"pods": Fraction(2)}
    over = q.exceeded(hard, used, {"pods": Fraction(1)})
    assert over == ["pods"]
    assert q.exceeded_message("q", hard, used, {"pods": Fraction(1)}, over) == (
        "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    )
    assert q.exceeded(hard, {"pods": Fraction(1)}, {"pods": Fraction(1)}) == []


def test_compute_quota_requires_requests_and_limits() -> None:
    quota = core_pb2.ResourceQuota()
    quota.spec.hard["requests.cpu"] = "1"
    quota.spec.hard["limits.memory"] = "1Gi"
    assert q.missing_compute(quota, pod(("", "", "", ""))) == [
        "requests.cpu for: c0",
        "limits.memory for: c0",
    ]
    assert q.missing_compute(quota, pod(("100m", "", "", "128Mi"))) == []


def test_namespace_usage_skips_finished_and_out_of_scope_pods() -> None:
    quota = core_pb2.ResourceQuota()
    quota.spec.hard.update({"pods": "10", "requests.cpu": "2", "count/configmaps": "5"})
    running, done = pod(("500m", "", "", "")), pod(("1", "", "", ""))
    done.status.phase = "Succeeded"
    cm = core_pb2.ConfigMap()
    objects: dict[str, list[Any]] = {"Pod": [running, done], "ConfigMap": [cm, cm]}
    used = q.namespace_usage(quota, lambda k: objects.get(k, []))
    assert q.format_usage(used) == {"pods": "1", "requests.cpu": "500m", "count/configmaps": "2"}
    quota.spec.scopes.append("BestEffort")
    assert q.namespace_usage(quota, lambda k: objects.get(k, []))["pods"] == 0


def test_limit_range_defaults_then_min_max() -> None:
    lr = core_pb2.LimitRange()
    item = lr.spec.limits.add(type="Container")
    item.default["cpu"] = "500m"
    item.default_request["cpu"] = "100m"
    item.max["cpu"] = "1"
    p = pod(("", "", "", ""))
    assert q.apply_limit_range_defaults(lr, p)
    res = p.spec.containers[0].resources
    assert (res.requests["cpu"], res.limits["cpu"]) == ("100m", "500m")
    assert q.limit_range_violations(lr, "Pod", p) == []
    big = pod(("2", "", "2", ""))
    assert q.limit_range_violations(lr, "Pod", big) == [
        "maximum cpu usage per Container is 1, but limit is 2"
    ]

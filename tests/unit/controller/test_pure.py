"""The controller's pure parts: hashing, expectations, pod ranking, rollout arithmetic,
job and cron arithmetic, node matching, the --controllers grammar."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from capstan.machinery.validate_batch import parse_schedule
from controller import podutil, registry
from controller.cronjob import job_name, most_recent, next_after
from controller.deployment import (
    fenceposts,
    max_unavailable,
    new_rs_replicas,
    proportional_sizes,
)
from controller.expectations import Expectations
from controller.hashing import compute_hash, fnv32a, safe_encode
from controller.job import failure_backoff, want_active
from controller.nodematch import fits
from controller.podcontrol import SlowStartError, slow_start

from tests.integration.controller.workloads import deployment, job, template

pytestmark = pytest.mark.unit


def test_fnv32a_reference_values() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_template_hash_is_stable_safe_and_moved_by_collisions() -> None:
    a, b = template("web"), template("web")
    assert compute_hash(a) == compute_hash(b)
    assert compute_hash(a, 1) != compute_hash(a)
    assert compute_hash(template("web", "busybox:2")) != compute_hash(a)
    assert set(compute_hash(a)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert safe_encode("0123") == "4567"


def test_expectations() -> None:
    e = Expectations()
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert e.satisfied("k")
    e.expect_deletions("k", ["ns/a", "ns/b"])
    e.deletion_observed("k", "ns/a")
    e.deletion_observed("k", "ns/a")  # seen twice (terminating, then gone): counted once
    assert not e.satisfied("k")
    e.deletion_observed("k", "ns/b")
    assert e.satisfied("k")
    stale = Expectations(ttl=0.0)
    stale.expect_creations("k", 5)
    time.sleep(0.001)
    assert stale.satisfied("k")


def _pod(
    name: str, *, node: str = "", phase: str = "Pending", ready: bool = False, created: int = 0
) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.creation_timestamp.seconds = created
    p.spec.node_name = node
    p.status.phase = phase
    if ready:
        p.status.conditions.add(type="Ready", status="True").last_transition_time.seconds = 100
    return p


def test_deletion_rank_least_valuable_first() -> None:
    pods = [
        _pod("ready-old", node="n", phase="Running", ready=True, created=1),
        _pod("ready-new", node="n", phase="Running", ready=True, created=2),
        _pod("running-unready", node="n", phase="Running"),
        _pod("pending", node="n"),
        _pod("unscheduled"),
    ]
    order = [p.metadata.name for p in podutil.pods_to_delete(pods, 5)]
    assert order == ["unscheduled", "pending", "running-unready", "ready-new", "ready-old"]


def test_availability_waits_min_ready_seconds() -> None:
    p = _pod("p", node="n", phase="Running", ready=True)
    assert podutil.is_available(p, 0)
    assert podutil.is_available(p, 10, now=111)
    assert not podutil.is_available(p, 10, now=105)
    assert podutil.available_in(p, 10, now=105) == 5


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "want"),
    [
        (10, "25%", "25%", (3, 2)),
        (10, 0, 0, (0, 1)),
        (3, 1, "50%", (1, 1)),
        (1, "25%", "25%", (1, 0)),
    ],
)
def test_fenceposts(
    replicas: int, surge: int | str, unavailable: int | str, want: tuple[int, int]
) -> None:
    assert fenceposts(deployment("n", "d", replicas, surge=surge, unavailable=unavailable)) == want


def test_new_replicaset_growth_respects_surge() -> None:
    d = deployment("n", "d", 10, surge=3, unavailable=2)
    assert new_rs_replicas(d, 10, 0) == 3
    assert new_rs_replicas(d, 13, 3) == 3
    assert new_rs_replicas(d, 11, 5) == 7
    assert new_rs_replicas(d, 8, 9) == 10
    assert max_unavailable(deployment("n", "d", 10, strategy="Recreate")) == 0
    assert new_rs_replicas(deployment("n", "d", 4, strategy="Recreate"), 9, 0) == 4


def test_proportional_scaling() -> None:
    d = deployment("n", "d", 20, surge=3, unavailable=2)
    assert proportional_sizes(d, [("old", 8, 13), ("new", 5, 13)], 13) == {"old": 14, "new": 9}
    down = deployment("n", "d", 5, surge=3, unavailable=2)
    sizes = proportional_sizes(down, [("old", 8, 13), ("new", 5, 13)], 13)
    assert sum(sizes.values()) == 8 and sizes["old"] > sizes["new"]


def test_job_arithmetic() -> None:
    j = job("n", "j", completions=10, parallelism=5)
    assert want_active(j, 0, 0) == 5
    assert want_active(j, 7, 3) == 3
    assert want_active(j, 12, 0) == 0
    queue = job("n", "q", completions=None, parallelism=3)
    assert want_active(queue, 0, 1) == 3
    assert want_active(queue, 1, 2) == 2
    assert [failure_backoff(n, 10) for n in range(5)] == [0, 10, 20, 40, 80]
    assert failure_backoff(20, 10) == 360


def test_cron_next_after() -> None:
    utc = dt.UTC
    every_5 = parse_schedule("*/5 * * * *")
    t = dt.datetime(2024, 1, 1, 10, 2, 30, tzinfo=utc)
    assert next_after(every_5, t) == dt.datetime(2024, 1, 1, 10, 5, tzinfo=utc)
    monthly = parse_schedule("0 0 1 * *")
    assert next_after(monthly, t) == dt.datetime(2024, 2, 1, tzinfo=utc)
    # Day-of-month OR day-of-week when both are restricted (cron's rule).
    either = parse_schedule("0 12 13 * 5")
    assert next_after(either, t) == dt.datetime(2024, 1, 5, 12, tzinfo=utc)
    assert next_after(parse_schedule("0 0 30 2 *"), t) is None
    assert next_after(parse_schedule("@every 90s"), t) == t + dt.timedelta(seconds=90)


def test_cron_most_recent_and_names() -> None:
    utc = dt.UTC
    hourly = parse_schedule("@hourly")
    start = dt.datetime(2024, 1, 1, 0, 30, tzinfo=utc)
    latest, missed = most_recent(hourly, start, dt.datetime(2024, 1, 1, 5, 10, tzinfo=utc))
    assert latest == dt.datetime(2024, 1, 1, 5, tzinfo=utc) and missed == 5
    assert most_recent(hourly, start, start + dt.timedelta(minutes=10)) == (None, 0)
    latest, missed = most_recent(parse_schedule("* * * * *"), start, start + dt.timedelta(days=30))
    assert latest == start + dt.timedelta(days=30) and missed > 100
    cj = batch_pb2.CronJob()
    cj.metadata.name = "c"
    when = dt.datetime(2024, 1, 1, 0, 1, tzinfo=utc)
    assert job_name(cj, when) == f"c-{int(when.timestamp()) // 60}"


def _node(labels: dict[str, str], taints: tuple[tuple[str, str], ...] = ()) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = "n1"
    n.metadata.labels.update(labels)
    for key, effect in taints:
        n.spec.taints.add(key=key, effect=effect)
    return n


def test_node_matching() -> None:
    spec = core_pb2.PodSpec()
    spec.node_selector["disk"] = "ssd"
    assert fits(spec, _node({"disk": "ssd"}))
    assert not fits(spec, _node({"disk": "hdd"}))
    assert not fits(spec, _node({"disk": "ssd"}, (("gpu", "NoSchedule"),)))
    assert fits(spec, _node({"disk": "ssd"}, (("gpu", "PreferNoSchedule"),)))
    spec.tolerations.add(key="gpu", operator="Exists")
    assert fits(spec, _node({"disk": "ssd"}, (("gpu", "NoSchedule"),)))
    required = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    term = required.node_selector_terms.add()
    term.match_expressions.add(key="zone", operator="In", values=["a", "b"])
    assert fits(spec, _node({"disk": "ssd", "zone": "b"}))
    assert not fits(spec, _node({"disk": "ssd", "zone": "c"}))
    term.match_fields.add(key="metadata.name", operator="In", values=["n2"])
    assert not fits(spec, _node({"disk": "ssd", "zone": "b"}))


def test_controllers_flag() -> None:
    assert registry.select("*")[:2] == ["replicaset", "replicationcontroller"]
    assert "deployment" not in registry.select("*,-deployment")
    assert registry.select("job,cronjob") == ["job", "cronjob"]
    with pytest.raises(ValueError, match="unknown controller"):
        registry.select("nope")


async def test_slow_start_batches_and_stops_on_error() -> None:
    calls: list[int] = []

    async def ok() -> int:
        calls.append(1)
        return 1

    assert len(await slow_start(10, ok)) == 10
    failures = {"left": 3}

    async def flaky() -> int:
        calls.append(1)
        failures["left"] -= 1
        if failures["left"] < 0:
            raise RuntimeError("quota")
        return 1

    calls.clear()
    with pytest.raises(SlowStartError) as err:
        await slow_start(100, flaky)
    # Batches 1, 2 succeed; the batch of 4 fails and nothing more is attempted.
    assert len(calls) == 7 and err.value.created == 3

"""Pod facts every workload controller asks: active, ready, available (ready for
minReadySeconds), the order in which pods are given up on scale-down, and conditions."""

from __future__ import annotations

import time
from collections.abc import Iterable, MutableSequence

from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from google.protobuf.timestamp_pb2 import Timestamp

RUNNING = "Running"
PENDING = "Pending"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
UNKNOWN = "Unknown"


def now_ts() -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


def seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def is_terminating(pod: core_pb2.Pod) -> bool:
    return pod.metadata.HasField("deletion_timestamp")


def is_active(pod: core_pb2.Pod) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return pod.status.phase not in (SUCCEEDED, FAILED) and not is_terminating(pod)


def ready_condition(pod: core_pb2.Pod) -> meta_pb2.Condition | None:
    for c in pod.status.conditions:
        if c.type == "Ready":
            return c
    return None


def is_ready(pod: core_pb2.Pod) -> bool:
    c = ready_condition(pod)
    return c is not None and c.status == "True"


def is_available(pod: core_pb2.Pod, min_ready_seconds: int, now: float | None = None) -> bool:
    """Ready, and ready for at least min_ready_seconds (Kubernetes' IsPodAvailable)."""
    c = ready_condition(pod)
    if c is None or c.status != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = seconds(c.last_transition_time)
    return since > 0 and since + min_ready_seconds <= (time.time() if now is None else now)


def available_in(pod: core_pb2.Pod, min_ready_seconds: int, now: float | None = None) -> float:
    """Seconds until a ready pod becomes available (0 if it is, or is not ready): when to
    look again so availability is noticed without a pod event."""
    c = ready_condition(pod)
    if c is None or c.status != "True" or min_ready_seconds <= 0:
        return 0.0
    left = (
        seconds(c.last_transition_time) + min_ready_seconds - (time.time() if now is None else now)
    )
    return max(0.0, left)


_PHASE_RANK = {PENDING: 0, UNKNOWN: 1, RUNNING: 2}


def deletion_rank(pod: core_pb2.Pod) -> tuple[int, int, int, float, int, float]:
    """Sort key putting the pod to give up first first (Kubernetes' ActivePods order):
    unscheduled before scheduled, pending before unknown before running, not ready before
    ready, more recently ready first, more restarts first, newer first."""
    ready = ready_condition(pod)
    ready_since = seconds(ready.last_transition_time) if ready and ready.status == "True" else 0
    restarts = sum(cs.restart_count for cs in pod.status.container_statuses)
    return (
        1 if pod.spec.node_name else 0,
        _PHASE_RANK.get(pod.status.phase, 0),
        1 if is_ready(pod) else 0,
        -ready_since,
        -restarts,
        -seconds(pod.metadata.creation_timestamp),
    )


def pods_to_delete(pods: Iterable[core_pb2.Pod], count: int) -> list[core_pb2.Pod]:
    return sorted(pods, key=deletion_rank)[: max(0, count)]


def get_condition(
    conditions: Iterable[meta_pb2.Condition], type_: str
) -> meta_pb2.Condition | None:
    for c in conditions:
        if c.type == type_:
            return c
    return None


def set_condition(
    conditions: MutableSequence[meta_pb2.Condition],
    type_: str,
    status: str,
    reason: str,
    message: str,
    *,
    update_time: bool = False,
) -> None:
    """Set a condition, keeping last_transition_time when the status did not change (and
    the whole condition when nothing changed, so an unchanged status writes nothing)."""
    stamp = now_ts()
    for c in conditions:
        if c.type != type_:
            continue
        if c.status == status and c.reason == reason and c.message == message:
            return
        if c.status != status:
            c.last_transition_time.CopyFrom(stamp)
        c.status, c.reason, c.message = status, reason, message
        if update_time:
            c.last_update_time.CopyFrom(stamp)
        return
    new = meta_pb2.Condition(
        type=type_, status=status, reason=reason, message=message, last_transition_time=stamp
    )
    if update_time:
        new.last_update_time.CopyFrom(stamp)
    conditions.append(new)


def remove_condition(conditions: MutableSequence[meta_pb2.Condition], type_: str) -> None:
    for i, c in enumerate(conditions):
        if c.type == type_:
            del conditions[i]
            return

"""Pod status from what the runtime shows, as Kubernetes computes it: container states,
phase, and the PodScheduled/Initialized/ContainersReady/Ready conditions. Pure: the pod worker
gathers the facts, this module turns them into a PodStatus, and the worker writes it only when
it differs from the last one written."""

from __future__ import annotations

from dataclasses import dataclass

from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from kubelet.runtime import ContainerInfo

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"


@dataclass
class ContainerView:
    """One spec container as the worker sees it."""

    name: str
    image: str
    # The newest instance and the one before it (for lastState).
    current: ContainerInfo | None = None
    previous: ContainerInfo | None = None
    # Why the container is not running when it should be (ContainerCreating, CrashLoopBackOff,
    # ErrImagePull, CreateContainerConfigError, PodInitializing, ...).
    waiting_reason: str = ""
    waiting_message: str = ""
    ready: bool = False
    started: bool = False

    @property
    def restart_count(self) -> int:
        return self.current.restart_count if self.current is not None else 0

    @property
    def succeeded(self) -> bool:
        c = self.current
        return c is not None and c.exited and c.exit_code == 0 and not self.waiting_reason


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def terminated_reason(info: ContainerInfo) -> str:
    if info.oom_killed:
        return "OOMKilled"
    return "Completed" if info.exit_code == 0 else "Error"


def _terminated(info: ContainerInfo, scheme: str) -> core_pb2.ContainerStateTerminated:
    t = core_pb2.ContainerStateTerminated(
        exit_code=info.exit_code,
        reason=terminated_reason(info),
        message=info.error,
        container_id=f"{scheme}://{info.id}",
    )
    if info.started_at:
        t.started_at.CopyFrom(_ts(info.started_at))
    if info.finished_at:
        t.finished_at.CopyFrom(_ts(info.finished_at))
    return t


def container_status(view: ContainerView, scheme: str) -> core_pb2.ContainerStatus:
    s = core_pb2.ContainerStatus(
        name=view.name, image=view.image, restart_count=view.restart_count, ready=view.ready
    )
    s.started = view.started
    cur, prev = view.current, view.previous
    if cur is not None:
        s.container_id = f"{scheme}://{cur.id}"
        s.image_id = cur.image_id
    if cur is not None and cur.running and not view.waiting_reason:
        s.state.running.started_at.CopyFrom(_ts(cur.started_at))
        if prev is not None and prev.exited:
            s.last_state.terminated.CopyFrom(_terminated(prev, scheme))
    elif cur is not None and cur.exited and not view.waiting_reason:
        s.state.terminated.CopyFrom(_terminated(cur, scheme))
        if prev is not None and prev.exited:
            s.last_state.terminated.CopyFrom(_terminated(prev, scheme))
    else:
        s.state.waiting.reason = view.waiting_reason or "ContainerCreating"
        s.state.waiting.message = view.waiting_message
        if cur is not None and cur.exited:
            s.last_state.terminated.CopyFrom(_terminated(cur, scheme))
    return s


def pod_phase(
    restart_policy: str, init: list[ContainerView], apps: list[ContainerView], old_phase: str
) -> str:
    if old_phase in (SUCCEEDED, FAILED):
        return old_phase
    policy = restart_policy or "Always"
    for view in init:
        if view.succeeded:
            continue
        cur = view.current
        if cur is not None and cur.exited and cur.exit_code != 0 and policy == "Never":
            return FAILED
        return PENDING
    running = waiting = stopped = succeeded = failed = 0
    for view in apps:
        cur = view.current
        if cur is not None and cur.running and not view.waiting_reason:
            running += 1
        elif cur is not None and cur.exited:
            stopped += 1
            if cur.exit_code == 0:
                succeeded += 1
            else:
                failed += 1
        else:
            waiting += 1
    if waiting:
        return PENDING
    if running:
        return RUNNING
    if stopped:
        if policy == "Always":
            return RUNNING
        if policy == "OnFailure":
            return SUCCEEDED if stopped == succeeded else RUNNING
        return FAILED if failed else SUCCEEDED
    return PENDING


def _condition(
    old: core_pb2.PodStatus, ctype: str, ok: bool, reason: str, message: str, now: Timestamp
) -> meta_pb2.Condition:
    status = "True" if ok else "False"
    c = meta_pb2.Condition(type=ctype, status=status)
    if not ok:
        c.reason, c.message = reason, message
    for prev in old.conditions:
        if prev.type == ctype and prev.status == status and prev.HasField("last_transition_time"):
            c.last_transition_time.CopyFrom(prev.last_transition_time)
            break
    else:
        c.last_transition_time.CopyFrom(now)
    return c


@dataclass
class PodFacts:
    init: list[ContainerView]
    apps: list[ContainerView]
    pod_ip: str
    host_ip: str
    start_time: Timestamp | None
    terminating: bool
    scheme: str = "docker"
    reason: str = ""
    message: str = ""


def compute_status(pod: core_pb2.Pod, facts: PodFacts, now: Timestamp) -> core_pb2.PodStatus:
    old = pod.status
    status = core_pb2.PodStatus()
    status.phase = pod_phase(pod.spec.restart_policy, facts.init, facts.apps, old.phase)
    status.reason, status.message = facts.reason, facts.message
    status.qos_class = old.qos_class
    status.nominated_node_name = old.nominated_node_name
    if facts.host_ip:
        status.host_ip = facts.host_ip
        status.host_ips.add(ip=facts.host_ip)
    if facts.pod_ip:
        status.pod_ip = facts.pod_ip
        status.pod_ips.add(ip=facts.pod_ip)
    if facts.start_time is not None:
        status.start_time.CopyFrom(facts.start_time)
    status.init_container_statuses.extend(container_status(v, facts.scheme) for v in facts.init)
    status.container_statuses.extend(container_status(v, facts.scheme) for v in facts.apps)

    initialized = all(v.succeeded for v in facts.init)
    not_ready = [v.name for v in facts.apps if not v.ready]
    done = status.phase in (SUCCEEDED, FAILED)
    if done:
        ready_reason = "PodCompleted"
    elif facts.terminating:
        ready_reason = "PodTerminating"
    else:
        ready_reason = "ContainersNotReady"
    containers_ready = not not_ready and not done
    ready_message = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    uninit = [v.name for v in facts.init if not v.succeeded]
    scheduled = next((c for c in old.conditions if c.type == "PodScheduled"), None)
    if scheduled is not None:
        status.conditions.append(scheduled)
    else:
        status.conditions.append(_condition(old, "PodScheduled", True, "", "", now))
    status.conditions.append(
        _condition(
            old,
            "Initialized",
            initialized or done,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(uninit)}]",
            now,
        )
    )
    status.conditions.append(
        _condition(
            old,
            "ContainersReady",
            containers_ready,
            "PodCompleted" if done else "ContainersNotReady",
            ready_message,
            now,
        )
    )
    status.conditions.append(
        _condition(
            old,
            "Ready",
            containers_ready and not facts.terminating,
            ready_reason,
            ready_message,
            now,
        )
    )
    # Conditions other components own (DisruptionTarget, readiness gates) are kept.
    ours = {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    status.conditions.extend(c for c in old.conditions if c.type not in ours)
    return status

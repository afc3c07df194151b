from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from kubelet.podstatus import ContainerView, PodFacts, compute_status, pod_phase
from kubelet.runtime import ContainerInfo

pytestmark = pytest.mark.unit


def info(state: str, code: int = 0, restarts: int = 0, oom: bool = False) -> ContainerInfo:
    return ContainerInfo(
        id=f"id-{state}-{code}-{restarts}",
        name="x",
        labels={"io.capstan.container.restart-count": str(restarts)},
        image="img",
        state=state,
        exit_code=code,
        oom_killed=oom,
        started_at=100.0,
        finished_at=200.0 if state == "exited" else 0.0,
    )


def view(
    name: str, cur: ContainerInfo | None, *, ready: bool = False, reason: str = ""
) -> ContainerView:
    return ContainerView(name, "img", cur, None, reason, "", ready=ready)


@pytest.mark.parametrize(
    ("policy", "states", "want"),
    [
        ("Always", [("running", 0)], "Running"),
        ("Always", [("exited", 0)], "Running"),
        ("Never", [("exited", 0)], "Succeeded"),
        ("Never", [("exited", 1)], "Failed"),
        ("Never", [("exited", 0), ("running", 0)], "Running"),
        ("Never", [("exited", 0), ("exited", 2)], "Failed"),
        ("OnFailure", [("exited", 0)], "Succeeded"),
        ("OnFailure", [("exited", 1)], "Running"),
        ("Always", [("running", 0), (None, 0)], "Pending"),
    ],
)
def test_phase(policy: str, states: list[tuple[str | None, int]], want: str) -> None:
    apps = [view(f"c{i}", info(s, c) if s else None) for i, (s, c) in enumerate(states)]
    assert pod_phase(policy, [], apps, "") == want


def test_init_containers_gate_the_phase() -> None:
    app = [view("app", None)]
    assert pod_phase("Always", [view("i", info("running"))], app, "") == "Pending"
    assert pod_phase("Never", [view("i", info("exited", 1))], app, "") == "Failed"
    assert pod_phase("OnFailure", [view("i", info("exited", 1))], app, "") == "Pending"
    assert pod_phase(
        "Always", [view("i", info("exited", 0))], [view("a", info("running"))], ""
    ) == ("Running")


def test_terminal_phase_sticks() -> None:
    assert pod_phase("Always", [], [view("a", info("running"))], "Succeeded") == "Succeeded"


def _compute(
    pod: core_pb2.Pod, apps: list[ContainerView], terminating: bool = False
) -> core_pb2.PodStatus:
    now = Timestamp(seconds=5000)
    facts = PodFacts([], apps, "10.0.0.9", "192.168.1.1", Timestamp(seconds=10), terminating)
    return compute_status(pod, facts, now)


def test_container_states_and_conditions() -> None:
    pod = core_pb2.Pod()
    pod.spec.restart_policy = "Always"
    running = view("web", info("running", restarts=2), ready=True)
    running.previous = info("exited", 137, 1, oom=True)
    status = _compute(pod, [running])
    cs = status.container_statuses[0]
    assert cs.restart_count == 2 and cs.ready and cs.state.HasField("running")
    assert cs.last_state.terminated.reason == "OOMKilled"
    assert cs.last_state.terminated.exit_code == 137
    assert cs.container_id == "docker://id-running-0-2"
    conds = {c.type: c.status for c in status.conditions}
    assert conds == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    assert status.pod_ip == "10.0.0.9" and status.pod_ips[0].ip == "10.0.0.9"
    assert status.host_ip == "192.168.1.1"


def test_terminating_pod_is_not_ready_at_once() -> None:
    pod = core_pb2.Pod()
    status = _compute(pod, [view("web", info("running"), ready=True)], terminating=True)
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert ready.status == "False" and ready.reason == "PodTerminating"


def test_crash_loop_shows_waiting_with_last_state() -> None:
    pod = core_pb2.Pod()
    v = view("web", info("exited", 1, restarts=3), reason="CrashLoopBackOff")
    cs = _compute(pod, [v]).container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff"
    assert cs.last_state.terminated.reason == "Error"
    assert cs.restart_count == 3


def test_transition_time_kept_while_status_unchanged() -> None:
    pod = core_pb2.Pod()
    first = _compute(pod, [view("web", info("running"), ready=True)])
    pod.status.CopyFrom(first)
    again = compute_status(
        pod,
        PodFacts(
            [],
            [view("web", info("running"), ready=True)],
            "10.0.0.9",
            "192.168.1.1",
            Timestamp(seconds=10),
            False,
        ),
        Timestamp(seconds=9999),
    )
    assert again == first

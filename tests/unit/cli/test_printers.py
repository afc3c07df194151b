"""Tables, ages, pod STATUS and the jsonpath subset."""

from __future__ import annotations

import datetime as dt

import pytest
from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.cli.printers import (
    TableOptions,
    human_duration,
    jsonpath,
    node_status,
    pod_restarts,
    pod_status,
    render_objects,
    render_table,
    service_ports,
)
from capstan.machinery.kinds import by_kind

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (180, "3m"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (4 * 86400, "4d"),
        (4 * 86400 + 3 * 3600, "4d3h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400, "3y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def _pod(*states: core_pb2.ContainerStatus, phase: str = "Running") -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name = "p"
    for s in states:
        pod.spec.containers.add(name=s.name, image="i")
        pod.status.container_statuses.append(s)
    pod.status.phase = phase
    return pod


def _status(name: str, **state: object) -> core_pb2.ContainerStatus:
    s = core_pb2.ContainerStatus(name=name)
    for key, value in state.items():
        if key == "ready":
            s.ready = bool(value)
        elif key == "waiting":
            s.state.waiting.reason = str(value)
        elif key == "terminated":
            s.state.terminated.reason = str(value)
        elif key == "exit":
            s.state.terminated.exit_code = int(str(value))
        elif key == "running":
            s.state.running.SetInParent()
    return s


def test_pod_status_column() -> None:
    assert pod_status(core_pb2.Pod()) == "Pending"
    assert pod_status(_pod(_status("a", waiting="ContainerCreating"), phase="Pending")) == (
        "ContainerCreating"
    )
    assert pod_status(_pod(_status("a", running=True, ready=True))) == "Running"
    assert pod_status(_pod(_status("a", waiting="CrashLoopBackOff"))) == "CrashLoopBackOff"
    assert pod_status(_pod(_status("a", terminated="Completed"), phase="Succeeded")) == "Completed"
    assert pod_status(_pod(_status("a", terminated="Error"), phase="Failed")) == "Error"
    assert pod_status(_pod(_status("a", exit=3), phase="Failed")) == "ExitCode:3"
    terminating = _pod(_status("a", running=True, ready=True))
    terminating.metadata.deletion_timestamp.GetCurrentTime()
    assert pod_status(terminating) == "Terminating"


def test_pod_restarts_show_when() -> None:
    s = _status("a", running=True)
    s.restart_count = 4
    finished = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    s.last_state.terminated.finished_at.FromDatetime(finished)
    assert pod_restarts(_pod(s)) == "4 (3m ago)"
    assert pod_restarts(_pod(_status("b"))) == "0"


def test_node_status() -> None:
    node = core_pb2.Node()
    assert node_status(node) == "Unknown"
    node.status.conditions.add(type="Ready", status="True")
    assert node_status(node) == "Ready"
    node.spec.unschedulable = True
    assert node_status(node) == "Ready,SchedulingDisabled"
    node.status.conditions[0].status = "False"
    assert node_status(node) == "NotReady,SchedulingDisabled"


def test_service_ports() -> None:
    svc = core_pb2.Service()
    svc.spec.ports.add(port=80, protocol="TCP")
    svc.spec.ports.add(port=53, protocol="UDP", node_port=30053)
    assert service_ports(svc) == "80/TCP,53:30053/UDP"


def test_render_table_aligns_columns() -> None:
    text = render_table(["NAME", "AGE"], [["a-long-name", "5s"], ["b", "10m"]])
    assert text == "NAME          AGE\na-long-name   5s\nb             10m\n"
    assert render_table(["NAME"], [["x"]], no_headers=True) == "x\n"


def test_deployment_table_with_options() -> None:
    dep = apps_pb2.Deployment()
    dep.metadata.name, dep.metadata.namespace = "web", "shop"
    dep.metadata.labels.update({"app": "web", "tier": "fe"})
    dep.metadata.creation_timestamp.GetCurrentTime()
    dep.spec.replicas = 3
    dep.spec.selector.match_labels["app"] = "web"
    dep.spec.template.spec.containers.add(name="c", image="nginx")
    dep.status.ready_replicas = 2
    dep.status.updated_replicas = 3
    dep.status.available_replicas = 2
    opts = TableOptions(
        wide=True, all_namespaces=True, show_labels=True, label_columns=["tier"], show_kind=True
    )
    header, row = render_objects(by_kind("Deployment"), [dep], opts).splitlines()
    assert header.split() == [
        "NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
        "SELECTOR", "TIER", "LABELS",
    ]  # fmt: skip
    assert row.split() == [
        "shop", "deployment.apps/web", "2/3", "3", "2", "0s", "c", "nginx", "app=web", "fe",
        "app=web,tier=fe",
    ]  # fmt: skip


def test_generic_table_for_kinds_without_columns() -> None:
    text = render_objects(by_kind("LimitRange"), [core_pb2.LimitRange()], TableOptions())
    assert text.splitlines()[0].split() == ["NAME", "AGE"]


def test_jsonpath() -> None:
    doc = {
        "items": [
            {"metadata": {"name": "a", "labels": {"app": "x"}}, "status": {"podIP": "10.0.0.1"}},
            {"metadata": {"name": "b"}, "status": {"podIP": "10.0.0.2"}},
        ]
    }
    assert jsonpath("{.items[0].metadata.name}", doc) == "a"
    assert jsonpath("{.items[*].status.podIP}", doc) == "10.0.0.1 10.0.0.2"
    assert jsonpath("{.items[-1].metadata.name}", doc) == "b"
    assert jsonpath("'{range .items[*]}{.metadata.name}{\"\\n\"}{end}'", doc) == "a\nb\n"
    assert jsonpath("{.items[0].metadata.labels}", doc) == '{"app": "x"}'
    assert jsonpath("name={.items[1].metadata.name}", doc) == "name=b"
    with pytest.raises(ValueError, match="without"):
        jsonpath("{range .items[*]}x", doc)

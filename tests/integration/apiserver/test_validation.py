"""Validation and defaulting as a client sees them: INVALID_ARGUMENT with a google.rpc
BadRequest naming every bad field, and defaults visible on the created object."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from capstan.api.core.v1 import core_pb2

from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    configmap,
    deployment,
    fails,
    has_violation,
    job,
    pod,
    violation_fields,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _bad_name(name: str) -> Callable[[str], core_pb2.Pod]:
    return lambda ns: pod(ns, name)


def _bad_label_key(ns: str) -> core_pb2.Pod:
    return pod(ns, "p", labels={"bad key!": "v"})


def _bad_label_value(ns: str) -> core_pb2.Pod:
    return pod(ns, "p", labels={"app": "-not valid-"})


def _no_image(ns: str) -> core_pb2.Pod:
    return pod(ns, "p", image="")


def _bad_restart_policy(ns: str) -> core_pb2.Pod:
    p = pod(ns, "p")
    p.spec.restart_policy = "Sometimes"
    return p


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (_bad_name("Upper"), "metadata.name", "lowercase"),
        (_bad_name("a" * 254), "metadata.name", "253"),
        (_bad_name("a_b"), "metadata.name", "lowercase"),
        (_bad_label_key, "metadata.labels", "name part"),
        (_bad_label_value, "metadata.labels", "alphanumeric"),
        (_no_image, "spec.containers[0].image", "Required value"),
        (_bad_restart_policy, "spec.restartPolicy", 'Unsupported value: "Sometimes"'),
    ],
    ids=["uppercase", "too-long", "underscore", "label-key", "label-value", "image", "restart"],
)
async def test_invalid_pod(
    api: Clients, ns: str, build: Callable[[str], core_pb2.Pod], field: str, words: str
) -> None:
    obj = build(ns)
    err = await fails(api.pods.Create(obj, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT)
    assert err.reason == "Invalid"
    assert has_violation(err, field), violation_fields(err)
    descriptions = " ".join(v.description for v in err.violations if v.field.startswith(field))
    assert words in descriptions, descriptions
    # The message names the object and repeats each violation.
    assert err.message.startswith(f'Pod "{obj.metadata.name}" is invalid: ')
    for v in err.violations:
        assert f"{v.field}: {v.description}" in err.message
    assert err.metadata["kind"] == "Pod"


async def test_every_bad_field_is_reported(api: Clients, ns: str) -> None:
    p = pod(ns, "p", image="", labels={"bad key!": "v"})
    p.spec.restart_policy = "Sometimes"
    err = await fails(api.pods.Create(p, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT)
    for field in ("metadata.labels", "spec.containers[0].image", "spec.restartPolicy"):
        assert has_violation(err, field), violation_fields(err)


async def test_invalid_update_is_refused(api: Clients, ns: str) -> None:
    created = await api.pods.Create(pod(ns, "p"), timeout=RPC_TIMEOUT)
    created.spec.containers[0].image = ""
    err = await fails(
        api.pods.Update(created, timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert has_violation(err, "spec.containers[0].image"), violation_fields(err)


async def test_pod_defaults(api: Clients, ns: str) -> None:
    p = pod(ns, "p", image="busybox:1.36")
    p.spec.containers.add(name="latest", image="busybox")
    p.spec.containers[0].ports.add(container_port=8080)
    created = await api.pods.Create(p, timeout=RPC_TIMEOUT)
    spec = created.spec
    assert spec.restart_policy == "Always"
    assert spec.termination_grace_period_seconds == 30
    assert spec.dns_policy == "ClusterFirst"
    assert spec.scheduler_name == "default-scheduler"
    assert spec.containers[0].image_pull_policy == "IfNotPresent"
    assert spec.containers[1].image_pull_policy == "Always"
    assert spec.containers[0].ports[0].protocol == "TCP"
    assert spec.containers[0].termination_message_path == "/dev/termination-log"
    assert created.status.phase == "Pending"
    assert created.status.qos_class == "BestEffort"


async def test_deployment_defaults(api: Clients, ns: str) -> None:
    d = deployment(ns, "web")
    d.spec.ClearField("replicas")
    created = await api.deployments.Create(d, timeout=RPC_TIMEOUT)
    spec = created.spec
    assert spec.replicas == 1
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rolling_update.max_unavailable.string_value == "25%"
    assert spec.strategy.rolling_update.max_surge.string_value == "25%"
    assert spec.revision_history_limit == 10
    assert spec.progress_deadline_seconds == 600
    assert spec.template.spec.restart_policy == "Always"


async def test_job_defaults(api: Clients, ns: str) -> None:
    created = await api.jobs.Create(job(ns, "once"), timeout=RPC_TIMEOUT)
    spec = created.spec
    assert spec.completions == 1
    assert spec.parallelism == 1
    assert spec.backoff_limit == 6
    assert spec.template.spec.restart_policy == "Never"


async def test_object_size_limits(api: Clients, ns: str) -> None:
    # Below ConfigMap's own 1 MiB data limit: stored and read back whole.
    big = "x" * (900 * 1024)
    created = await api.configmaps.Create(configmap(ns, "big", {"v": big}), timeout=RPC_TIMEOUT)
    assert len(created.data["v"]) == len(big)

    # Over 1 MiB of data: ConfigMap validation refuses it, naming data.
    err = await fails(
        api.configmaps.Create(
            configmap(ns, "bigger", {"v": "x" * (1200 * 1024)}), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert violation_fields(err) == ["data"]
    assert "Too long" in err.violations[0].description

    # Over 1.5 MiB: refused before parsing, for any kind.
    err = await fails(
        api.configmaps.Create(
            configmap(ns, "huge", {"v": "x" * (1600 * 1024)}), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "request entity too large" in err.message
    assert err.metadata["limit"] == str(1536 * 1024)

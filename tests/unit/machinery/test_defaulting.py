from __future__ import annotations

from typing import Any

import pytest
from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from capstan.machinery import kinds
from capstan.machinery.defaulting import default_job_selector, default_object, image_tag
from capstan.machinery.object_validation import validate_object
from google.protobuf import json_format
from google.protobuf.message import Message

pytestmark = pytest.mark.unit


def build(kind: str, manifest: dict[str, Any]) -> Message:
    """A Kubernetes-style manifest as the kind's message (ReplicationController has no row)."""
    cls = core_pb2.ReplicationController if kind == "ReplicationController" else None
    message = cls() if cls is not None else kinds.by_kind(kind).message()
    return json_format.ParseDict(manifest, message)


def defaulted(kind: str, manifest: dict[str, Any]) -> dict[str, Any]:
    obj = build(kind, manifest)
    default_object(kind, obj)
    return json_format.MessageToDict(obj)


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing in {actual!r}"
            assert_subset(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{path}[{i}]")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def pod_spec(**extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": "app", "image": "nginx"}], **extra}


def template(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": "web"}}, "spec": pod_spec(**spec)}


META = {"name": "x", "namespace": "default"}
POD_TEMPLATE_DEFAULTS = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": "30",
    "containers": [
        {
            "imagePullPolicy": "Always",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    ],
}

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "Pod",
        {"metadata": META, "spec": pod_spec()},
        {"spec": {**POD_TEMPLATE_DEFAULTS, "enableServiceLinks": True}},
    ),
    (
        "Pod",
        {
            "metadata": META,
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80}],
                        "readinessProbe": {"httpGet": {"port": 80}},
                        "livenessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                        "env": [
                            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                        ],
                    }
                ],
                "volumes": [
                    {"name": "a", "configMap": {"name": "c"}},
                    {"name": "b", "secret": {"secretName": "s", "defaultMode": 256}},
                    {"name": "c"},
                    {"name": "d", "emptyDir": {}},
                ],
            },
        },
        {
            "spec": {
                "containers": [
                    {
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"protocol": "TCP"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/", "scheme": "HTTP"},
                            "timeoutSeconds": 1,
                            "periodSeconds": 10,
                            "successThreshold": 1,
                            "failureThreshold": 3,
                        },
                        "livenessProbe": {"periodSeconds": 5, "failureThreshold": 3},
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                        "env": [{"valueFrom": {"fieldRef": {"apiVersion": "v1"}}}],
                    }
                ],
                "volumes": [
                    {"configMap": {"defaultMode": 420}},
                    {"secret": {"defaultMode": 256}},
                    {"emptyDir": {}},
                    {"emptyDir": {}},
                ],
            }
        },
    ),
    (
        "Pod",
        {"metadata": META, "spec": pod_spec(hostNetwork=True, restartPolicy="Never")},
        {"spec": {"restartPolicy": "Never", "hostNetwork": True}},
    ),
    (
        "Service",
        {"metadata": META, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {
            "spec": {
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ports": [{"protocol": "TCP", "targetPort": 80}],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            }
        },
    ),
    (
        "Service",
        {
            "metadata": META,
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.96.0.20",
                "sessionAffinity": "ClientIP",
                "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}],
            },
        },
        {
            "spec": {
                "externalTrafficPolicy": "Cluster",
                "clusterIPs": ["10.96.0.20"],
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                "ports": [{"protocol": "UDP", "targetPort": "http"}],
            }
        },
    ),
    (
        "Deployment",
        {
            "metadata": META,
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()},
        },
        {
            "spec": {
                "replicas": 1,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {"spec": POD_TEMPLATE_DEFAULTS},
            }
        },
    ),
    (
        "ReplicaSet",
        {"metadata": META, "spec": {"template": template()}},
        {"spec": {"replicas": 1, "template": {"spec": POD_TEMPLATE_DEFAULTS}}},
    ),
    (
        "DaemonSet",
        {"metadata": META, "spec": {"template": template()}},
        {
            "spec": {
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
                },
                "revisionHistoryLimit": 10,
            }
        },
    ),
    (
        "StatefulSet",
        {
            "metadata": META,
            "spec": {
                "template": template(),
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
            },
        },
        {
            "spec": {
                "replicas": 1,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": "Retain",
                    "whenScaled": "Retain",
                },
                "volumeClaimTemplates": [{"spec": {"volumeMode": "Filesystem"}}],
            }
        },
    ),
    (
        "Job",
        {"metadata": META, "spec": {"template": template(restartPolicy="Never")}},
        {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "completions": 1,
                "parallelism": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": False,
            },
        },
    ),
    (
        "CronJob",
        {
            "metadata": META,
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": template(restartPolicy="OnFailure")}},
            },
        },
        {
            "spec": {
                "concurrencyPolicy": "Allow",
                "suspend": False,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"template": {"spec": {"dnsPolicy": "ClusterFirst"}}}},
            }
        },
    ),
    (
        "Secret",
        {"metadata": META, "data": {"a": "YQ=="}, "stringData": {"b": "bee", "a": "override"}},
        {"type": "Opaque", "data": {"a": "b3ZlcnJpZGU=", "b": "YmVl"}},
    ),
    ("Namespace", {"metadata": {"name": "team"}}, {"spec": {"finalizers": ["kubernetes"]}}),
    (
        "PersistentVolume",
        {"metadata": {"name": "pv"}, "spec": {"capacity": {"storage": "1Gi"}}},
        {
            "spec": {"persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"},
        },
    ),
    (
        "PersistentVolumeClaim",
        {"metadata": META, "spec": {}},
        {"spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}},
    ),
    (
        "HorizontalPodAutoscaler",
        {"metadata": META, "spec": {"maxReplicas": 3}},
        {"spec": {"minReplicas": 1}},
    ),
    (
        "StorageClass",
        {"metadata": {"name": "fast"}, "provisioner": "example.com/x"},
        {"reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"},
    ),
    (
        "LimitRange",
        {
            "metadata": META,
            "spec": {
                "limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]
            },
        },
        {
            "spec": {
                "limits": [
                    {"default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}}
                ]
            }
        },
    ),
    (
        "ReplicationController",
        {"metadata": META, "spec": {"template": template()}},
        {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"app": "web"}},
        },
    ),
    (
        "Node",
        {
            "metadata": {"name": "n1"},
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"capacity": {"cpu": "2"}},
        },
        {"spec": {"podCIDRs": ["10.244.1.0/24"]}, "status": {"allocatable": {"cpu": "2"}}},
    ),
]


@pytest.mark.parametrize(("kind", "manifest", "expected"), CASES, ids=[c[0] for c in CASES])
def test_defaults(kind: str, manifest: dict[str, Any], expected: dict[str, Any]) -> None:
    assert_subset(expected, defaulted(kind, manifest))


@pytest.mark.parametrize(("kind", "manifest", "_expected"), CASES, ids=[c[0] for c in CASES])
def test_defaulting_is_idempotent(kind: str, manifest: dict[str, Any], _expected: object) -> None:
    once = build(kind, manifest)
    default_object(kind, once)
    twice = type(once)()
    twice.CopyFrom(once)
    default_object(kind, twice)
    assert twice == once


@pytest.mark.parametrize(
    ("image", "tag", "policy"),
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("nginx:1.25", "1.25", "IfNotPresent"),
        ("localhost:5000/team/app", "latest", "Always"),
        ("localhost:5000/team/app:v2", "v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "", "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "latest", "Always"),
    ],
)
def test_image_pull_policy(image: str, tag: str, policy: str) -> None:
    assert image_tag(image) == tag
    out = defaulted(
        "Pod", {"metadata": META, "spec": {"containers": [{"name": "a", "image": image}]}}
    )
    assert out["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_values_are_kept() -> None:
    out = defaulted(
        "Pod",
        {
            "metadata": META,
            "spec": pod_spec(
                terminationGracePeriodSeconds=0, enableServiceLinks=False, dnsPolicy="Default"
            ),
        },
    )
    assert out["spec"]["terminationGracePeriodSeconds"] == "0"
    assert out["spec"]["enableServiceLinks"] is False
    assert out["spec"]["dnsPolicy"] == "Default"


def test_requests_default_to_limits_only_for_pods() -> None:
    resources = {"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}}
    pod = defaulted(
        "Pod",
        {
            "metadata": META,
            "spec": {"containers": [{"name": "a", "image": "x", "resources": resources}]},
        },
    )
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Mi"}
    rs = defaulted(
        "ReplicaSet",
        {
            "metadata": META,
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "a", "image": "x", "resources": resources}]}
                }
            },
        },
    )
    assert rs["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "memory": "1Mi"
    }
    assert "enableServiceLinks" not in rs["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("given", "completions", "parallelism"),
    [
        ({}, 1, 1),
        ({"parallelism": 3}, None, 3),
        ({"completions": 5}, 5, 1),
        ({"completions": 5, "parallelism": 2}, 5, 2),
    ],
)
def test_job_completions_and_parallelism(
    given: dict[str, int], completions: int | None, parallelism: int
) -> None:
    out = defaulted(
        "Job", {"metadata": META, "spec": {**given, "template": template(restartPolicy="Never")}}
    )
    assert out["spec"].get("completions") == completions
    assert out["spec"]["parallelism"] == parallelism


def test_job_selector_is_generated_from_uid() -> None:
    job = build("Job", {"metadata": META, "spec": {"template": template(restartPolicy="Never")}})
    assert isinstance(job, batch_pb2.Job)
    default_object("Job", job)
    assert not job.spec.HasField("selector")
    job.metadata.uid = "1234"
    default_job_selector(job)
    labels = dict(job.spec.template.metadata.labels)
    assert labels == {
        "app": "web",
        "controller-uid": "1234",
        "batch.kubernetes.io/controller-uid": "1234",
        "job-name": "x",
        "batch.kubernetes.io/job-name": "x",
    }
    assert dict(job.spec.selector.match_labels) == {"batch.kubernetes.io/controller-uid": "1234"}
    assert validate_object("Job", job, None) == []


def test_manual_job_selector_is_left_alone() -> None:
    job = build(
        "Job",
        {
            "metadata": {**META, "uid": "1234"},
            "spec": {
                "manualSelector": True,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template(restartPolicy="Never"),
            },
        },
    )
    default_object("Job", job)
    assert isinstance(job, batch_pb2.Job)
    assert dict(job.spec.template.metadata.labels) == {"app": "web"}
    assert dict(job.spec.selector.match_labels) == {"app": "web"}


def test_namespace_finalizer_is_not_readded_while_deleting() -> None:
    ns = build(
        "Namespace",
        {"metadata": {"name": "team", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {}},
    )
    default_object("Namespace", ns)
    assert isinstance(ns, core_pb2.Namespace)
    assert list(ns.spec.finalizers) == []


def test_kinds_without_defaults_and_wrong_types() -> None:
    cm = build("ConfigMap", {"metadata": META, "data": {"a": "b"}})
    before = cm.SerializeToString()
    default_object("ConfigMap", cm)
    assert cm.SerializeToString() == before
    with pytest.raises(TypeError):
        default_object("Pod", cm)

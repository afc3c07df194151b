"""Manifest parsing: apiVersion/kind resolution (legacy groups included), unknown fields
named by their full path, quantities given as numbers, and printing back to Kubernetes'
shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.machinery.manifests import (
    ManifestError,
    dump_yaml,
    from_dict,
    load_documents,
    resolve_kind,
    to_dict,
)

pytestmark = pytest.mark.unit

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
        },
    },
}


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    node: Any = out
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[last] = value
    return out


@pytest.mark.parametrize(
    ("api_version", "kind", "expected_group"),
    [
        ("v1", "Pod", ""),
        ("apps/v1", "Deployment", "apps"),
        ("extensions/v1beta1", "Deployment", "apps"),
        ("extensions/v1beta1", "ReplicaSet", "apps"),
        ("extensions/v1beta1", "DaemonSet", "apps"),
        ("apps/v1beta1", "StatefulSet", "apps"),
        ("apps/v1beta2", "Deployment", "apps"),
        ("batch/v1", "Job", "batch"),
        ("batch/v1beta1", "CronJob", "batch"),
        ("autoscaling/v1", "HorizontalPodAutoscaler", "autoscaling"),
        ("coordination.k8s.io/v1", "Lease", "coordination.k8s.io"),
        ("storage.k8s.io/v1beta1", "StorageClass", "storage.k8s.io"),
    ],
)
def test_api_versions_resolve(api_version: str, kind: str, expected_group: str) -> None:
    row = resolve_kind(api_version, kind)
    assert row.kind == kind
    assert row.group == expected_group


@pytest.mark.parametrize(
    ("api_version", "kind", "message"),
    [
        ("v1", "Widget", 'unknown kind "Widget"'),
        ("networking.k8s.io/v1", "Ingress", 'unknown API group "networking.k8s.io"'),
        ("apps/v2", "Deployment", 'apiVersion "apps/v2" is not supported'),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "is not supported"),
        ("v1", "Deployment", 'use "apps/v1"'),
        ("extensions/v1beta1", "Job", 'use "batch/v1"'),
        ("", "Pod", 'missing "apiVersion"'),
        ("v1", "", 'missing "kind"'),
    ],
)
def test_unknown_kinds_and_versions_are_clear_errors(
    api_version: str, kind: str, message: str
) -> None:
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_kind(api_version, kind)


def test_legacy_manifest_parses_into_the_apps_message() -> None:
    kind, msg = from_dict({**DEPLOYMENT, "apiVersion": "extensions/v1beta1"})
    assert kind.api_version == "apps/v1"
    assert isinstance(msg, apps_pb2.Deployment)
    assert msg.spec.replicas == 2
    assert msg.spec.template.spec.containers[0].image == "nginx:1.25"


@pytest.mark.parametrize(
    ("path", "reported"),
    [
        ("spec.foo", "spec.foo"),
        ("spec.template.spec.containers.0.bogus", "spec.template.spec.containers[0].bogus"),
        ("metadata.labelz", "metadata.labelz"),
        ("spec.template.metadata.extra", "spec.template.metadata.extra"),
    ],
)
def test_unknown_field_is_named_by_full_path(path: str, reported: str) -> None:
    doc = _with(DEPLOYMENT, path, 1)
    with pytest.raises(ManifestError) as err:
        from_dict(doc, "web.yaml")
    assert str(err.value) == (
        f'web.yaml: Deployment "web": unknown field "{reported}" (capstan does not support it)'
    )


def test_every_unknown_field_is_reported() -> None:
    doc = _with(_with(DEPLOYMENT, "spec.foo", 1), "status", {"bar": 2})
    with pytest.raises(ManifestError) as err:
        from_dict(doc)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert 'unknown field "spec.foo"' in lines[0]
    assert 'unknown field "status.bar"' in lines[1]


def test_map_values_of_messages_are_checked() -> None:
    doc = _with(
        DEPLOYMENT, "spec.template.spec.containers.0.ports", [{"containerPort": 80, "hostIp": "x"}]
    )
    with pytest.raises(ManifestError, match=r"containers\[0\]\.ports\[0\]\.hostIp"):
        from_dict(doc)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.replicas", "two", 'field "spec.replicas": expected an integer, got string "two"'),
        ("spec.template.spec.containers.0.image", 5, "expected a string, got number"),
        ("spec.paused", "yes", "expected a boolean"),
        ("spec.template.spec.containers", {"name": "x"}, "expected a list, got object"),
        ("metadata.labels", ["a"], "expected an object, got list"),
    ],
)
def test_wrong_types_name_the_field(path: str, value: Any, expected: str) -> None:
    with pytest.raises(ManifestError, match=expected.replace(".", r"\.").replace('"', '"')):
        from_dict(_with(DEPLOYMENT, path, value))


def test_exclusive_volume_sources_are_rejected_by_path() -> None:
    doc = _with(
        DEPLOYMENT,
        "spec.template.spec.volumes",
        [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}],
    )
    with pytest.raises(ManifestError, match=r"volumes\[0\]\.hostPath.*cannot be set together"):
        from_dict(doc)


def test_quantities_given_as_numbers_become_strings() -> None:
    doc = _with(
        DEPLOYMENT,
        "spec.template.spec.containers.0.resources",
        {"requests": {"cpu": 1, "memory": 1000}, "limits": {"cpu": 0.5}},
    )
    _, msg = from_dict(doc)
    assert isinstance(msg, apps_pb2.Deployment)
    res = msg.spec.template.spec.containers[0].resources
    assert dict(res.requests) == {"cpu": "1", "memory": "1000"}
    assert dict(res.limits) == {"cpu": "0.5"}


def test_labels_given_as_numbers_are_an_error_not_a_guess() -> None:
    with pytest.raises(
        ManifestError, match=r'"metadata.labels\[\\?"tier\\?"\]": expected a string'
    ):
        from_dict(_with(DEPLOYMENT, "metadata.labels", {"tier": 1}))


def test_bad_base64_in_secret_data_is_named() -> None:
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "%%%"}}
    with pytest.raises(ManifestError, match=r'data\["k"\]": expected a base64 string'):
        from_dict(doc)


def test_multi_document_yaml_and_lists() -> None:
    text = """
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
- apiVersion: v1
  kind: Secret
  metadata: {name: c}
"""
    docs = load_documents(text)
    assert [d["metadata"]["name"] for d in docs] == ["a", "b", "c"]


def test_invalid_yaml_names_the_source() -> None:
    with pytest.raises(ManifestError, match=r"x\.yaml: invalid YAML"):
        load_documents("a: [1, 2\nb: c", "x.yaml")
    with pytest.raises(ManifestError, match="document 1 is not an object"):
        load_documents("- 1\n- 2\n", "")


def test_to_dict_is_kubernetes_shaped() -> None:
    pod = core_pb2.Pod()
    pod.metadata.name = "p"
    pod.metadata.generation = 3
    pod.spec.termination_grace_period_seconds = 30
    port = pod.spec.containers.add(name="c", image="i").ports.add(container_port=80)
    del port
    probe = pod.spec.containers[0].liveness_probe
    probe.http_get.port.number_value = 8080
    d = to_dict(pod, resolve_kind("v1", "Pod"))
    assert list(d)[:2] == ["apiVersion", "kind"]
    assert d["metadata"]["generation"] == 3
    assert d["spec"]["terminationGracePeriodSeconds"] == 30
    assert d["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] == 8080
    text = dump_yaml(d)
    assert "port: 8080\n" in text
    assert yaml.safe_load(text) == d


def test_round_trip_through_yaml() -> None:
    kind, msg = from_dict(DEPLOYMENT)
    again_kind, again = from_dict(yaml.safe_load(dump_yaml(to_dict(msg, kind))))
    assert again_kind is kind
    assert again == msg

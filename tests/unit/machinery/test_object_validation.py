from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.machinery import kinds
from capstan.machinery.defaulting import default_object
from capstan.machinery.object_validation import (
    supported_kinds,
    validate_object,
    validate_status_update,
)
from capstan.machinery.validate_batch import CronError, parse_schedule
from capstan.machinery.violations import FieldViolation
from google.protobuf import json_format
from google.protobuf.message import Message

pytestmark = pytest.mark.unit

Manifest = dict[str, Any]


def build(kind: str, manifest: Manifest, *, defaults: bool = True) -> Message:
    message = (
        core_pb2.ReplicationController()
        if kind == "ReplicationController"
        else kinds.by_kind(kind).message()
    )
    obj = json_format.ParseDict(manifest, message)
    if defaults:
        default_object(kind, obj)
    return obj


def errors(kind: str, manifest: Manifest, old: Manifest | None = None) -> list[FieldViolation]:
    return validate_object(kind, build(kind, manifest), None if old is None else build(kind, old))


NS = {"name": "web", "namespace": "default"}
UID = "6f1c-uid"


def pod_spec(**extra: Any) -> Manifest:
    return {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {
                    "requests": {"cpu": "100m"},
                    "limits": {"cpu": "500m", "memory": "64Mi"},
                },
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/web"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                "readinessProbe": {"tcpSocket": {"port": 80}},
            }
        ],
        "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}],
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
                    ]
                }
            }
        },
        **extra,
    }


def template(**spec: Any) -> Manifest:
    return {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(**spec)}


SELECTOR = {"matchLabels": {"app": "web"}}

VALID: dict[str, Manifest] = {
    "Pod": {"metadata": {**NS, "labels": {"app": "web"}}, "spec": pod_spec()},
    "Service": {
        "metadata": NS,
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "https", "port": 443},
            ],
        },
    },
    "Endpoints": {
        "metadata": NS,
        "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}],
    },
    "ConfigMap": {"metadata": NS, "data": {"app.conf": "x=1"}, "binaryData": {"blob": "AAE="}},
    "Secret": {
        "metadata": NS,
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
    },
    "ServiceAccount": {"metadata": NS},
    "Namespace": {"metadata": {"name": "team-a"}},
    "Node": {
        "metadata": {"name": "node-1.example"},
        "spec": {
            "podCIDR": "10.244.1.0/24",
            "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}],
        },
        "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}},
    },
    "Event": {
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Pulled",
        "type": "Normal",
    },
    "PersistentVolume": {
        "metadata": {"name": "pv-1"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/data"},
        },
    },
    "PersistentVolumeClaim": {
        "metadata": NS,
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    },
    "ResourceQuota": {
        "metadata": NS,
        "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/jobs.batch": "5"}},
    },
    "LimitRange": {
        "metadata": NS,
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "min": {"cpu": "100m"},
                    "max": {"cpu": "2"},
                    "default": {"cpu": "500m"},
                }
            ]
        },
    },
    "ReplicaSet": {
        "metadata": NS,
        "spec": {"replicas": 3, "selector": SELECTOR, "template": template()},
    },
    "Deployment": {
        "metadata": NS,
        "spec": {"replicas": 3, "selector": SELECTOR, "template": template()},
    },
    "DaemonSet": {"metadata": NS, "spec": {"selector": SELECTOR, "template": template()}},
    "StatefulSet": {
        "metadata": NS,
        "spec": {
            "serviceName": "web",
            "selector": SELECTOR,
            "template": template(),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    },
    "ControllerRevision": {"metadata": NS, "data": {"spec": {}}, "revision": 1},
    "ReplicationController": {
        "metadata": NS,
        "spec": {"selector": {"app": "web"}, "template": template()},
    },
    "Job": {
        "metadata": {**NS, "uid": UID},
        "spec": {
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
            "template": {
                "metadata": {
                    "labels": {
                        "batch.kubernetes.io/controller-uid": UID,
                        "controller-uid": UID,
                        "job-name": "web",
                    }
                },
                "spec": pod_spec(restartPolicy="OnFailure"),
            },
        },
    },
    "CronJob": {
        "metadata": NS,
        "spec": {
            "schedule": "*/15 9-17 * * mon-fri",
            "jobTemplate": {"spec": {"template": template(restartPolicy="Never")}},
        },
    },
    "HorizontalPodAutoscaler": {
        "metadata": NS,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 70,
        },
    },
    "Lease": {"metadata": NS, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}},
    "StorageClass": {"metadata": {"name": "fast"}, "provisioner": "kubernetes.io/no-provisioner"},
}


def test_every_served_kind_has_rules() -> None:
    served = {k.kind for k in kinds.all_kinds()}
    assert served <= supported_kinds()
    assert set(VALID) == supported_kinds()


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_manifest_passes(kind: str) -> None:
    assert errors(kind, VALID[kind]) == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_unchanged_update_passes(kind: str) -> None:
    assert errors(kind, VALID[kind], old=VALID[kind]) == []


def patched(kind: str, patch: Callable[[Manifest], object]) -> Manifest:
    manifest = copy.deepcopy(VALID[kind])
    patch(manifest)
    return manifest


def pod0(m: Manifest) -> Manifest:
    c: Manifest = m["spec"]["containers"][0]
    return c


def tpl(m: Manifest) -> Manifest:
    s: Manifest = m["spec"]["template"]["spec"]
    return s


# (kind, patch, field path, words the description must contain)
INVALID: list[tuple[str, Callable[[Manifest], object], str, str]] = [
    # metadata
    (
        "Pod",
        lambda m: m["metadata"].pop("name"),
        "metadata.name",
        "Required value: name or generateName is required",
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(name="Web_1"),
        "metadata.name",
        'Invalid value: "Web_1": a lowercase RFC 1123 subdomain',
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(name="", generateName="Web-"),
        "metadata.generateName",
        "RFC 1123 subdomain",
    ),
    ("Service", lambda m: m["metadata"].update(name="1web"), "metadata.name", "a DNS-1035 label"),
    (
        "Namespace",
        lambda m: m["metadata"].update(name="a.b"),
        "metadata.name",
        "must not contain dots",
    ),
    (
        "Namespace",
        lambda m: m["metadata"].update(namespace="default"),
        "metadata.namespace",
        "Forbidden: not allowed on this type",
    ),
    ("Pod", lambda m: m["metadata"].pop("namespace"), "metadata.namespace", "Required value"),
    (
        "Pod",
        lambda m: m["metadata"].update(namespace="Team"),
        "metadata.namespace",
        "RFC 1123 label",
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(labels={"app": "x" * 64}),
        "metadata.labels",
        "must be no more than 63 characters",
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(annotations={"a": "x" * 262145}),
        "metadata.annotations",
        "Too long: must have at most 262144 bytes",
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(
            ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}]
        ),
        "metadata.ownerReferences.uid",
        "must not be empty",
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "a",
                    "uid": "1",
                    "controller": True,
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "b",
                    "uid": "2",
                    "controller": True,
                },
            ]
        ),
        "metadata.ownerReferences",
        "Only one reference can have Controller set to true",
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(finalizers=["bad finalizer"]),
        "metadata.finalizers",
        "Invalid value",
    ),
    # pod spec
    ("Pod", lambda m: m["spec"].update(containers=[]), "spec.containers", "Required value"),
    (
        "Pod",
        lambda m: m["spec"].update(initContainers=[{"name": "web", "image": "busybox"}]),
        "spec.containers[0].name",
        'Duplicate value: "web"',
    ),
    ("Pod", lambda m: pod0(m).update(name="Web"), "spec.containers[0].name", "RFC 1123 label"),
    ("Pod", lambda m: pod0(m).pop("image"), "spec.containers[0].image", "Required value"),
    (
        "Pod",
        lambda m: pod0(m)["ports"].append({"containerPort": 70000}),
        "spec.containers[0].ports[1].containerPort",
        "must be between 1 and 65535, inclusive",
    ),
    (
        "Pod",
        lambda m: pod0(m)["ports"].append({"name": "http", "containerPort": 81}),
        "spec.containers[0].ports[1].name",
        'Duplicate value: "http"',
    ),
    (
        "Pod",
        lambda m: pod0(m)["ports"].append({"name": "Web_Port", "containerPort": 81}),
        "spec.containers[0].ports[1].name",
        "must contain only alpha-numeric characters",
    ),
    (
        "Pod",
        lambda m: pod0(m)["ports"][0].update(protocol="ICMP"),
        "spec.containers[0].ports[0].protocol",
        'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    ),
    (
        "Pod",
        lambda m: pod0(m)["ports"][0].update(hostPort=0, containerPort=0),
        "spec.containers[0].ports[0].containerPort",
        "Required value",
    ),
    (
        "Pod",
        lambda m: pod0(m)["env"].append({"name": "1BAD"}),
        "spec.containers[0].env[1].name",
        "a valid environment variable name",
    ),
    (
        "Pod",
        lambda m: pod0(m)["env"].append({"name": "X", "valueFrom": {}}),
        "spec.containers[0].env[1].valueFrom",
        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    ),
    (
        "Pod",
        lambda m: pod0(m)["env"].append(
            {
                "name": "X",
                "valueFrom": {
                    "configMapKeyRef": {"name": "c", "key": "k"},
                    "secretKeyRef": {"name": "s", "key": "k"},
                },
            }
        ),
        "spec.containers[0].env[1].valueFrom",
        "may not have more than one field specified at a time",
    ),
    (
        "Pod",
        lambda m: pod0(m)["env"].append(
            {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}
        ),
        "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath",
        'Unsupported value: "spec.foo"',
    ),
    (
        "Pod",
        lambda m: m["spec"]["volumes"].append({"name": "cfg", "emptyDir": {}}),
        "spec.volumes[1].name",
        'Duplicate value: "cfg"',
    ),
    (
        "Pod",
        lambda m: m["spec"]["volumes"].append({"name": "Bad_Name", "emptyDir": {}}),
        "spec.volumes[1].name",
        "RFC 1123 label",
    ),
    (
        "Pod",
        lambda m: m["spec"]["volumes"].append({"name": "s", "secret": {}}),
        "spec.volumes[1].secret.secretName",
        "Required value",
    ),
    (
        "Pod",
        lambda m: m["spec"]["volumes"][0]["configMap"].update(defaultMode=512),
        "spec.volumes[0].configMap.defaultMode",
        "must be a number between 0 and 0777 (octal)",
    ),
    (
        "Pod",
        lambda m: pod0(m)["volumeMounts"].append({"name": "nope", "mountPath": "/x"}),
        "spec.containers[0].volumeMounts[1].name",
        'Not found: "nope"',
    ),
    (
        "Pod",
        lambda m: pod0(m)["volumeMounts"].append({"name": "cfg", "mountPath": "/etc/web"}),
        "spec.containers[0].volumeMounts[1].mountPath",
        "must be unique",
    ),
    (
        "Pod",
        lambda m: pod0(m)["volumeMounts"][0].update(mountPath="etc"),
        "spec.containers[0].volumeMounts[0].mountPath",
        "must be an absolute path",
    ),
    (
        "Pod",
        lambda m: pod0(m)["resources"]["requests"].update(cpu="1"),
        "spec.containers[0].resources.requests",
        'Invalid value: "1": must be less than or equal to cpu limit of 500m',
    ),
    (
        "Pod",
        lambda m: pod0(m)["resources"]["limits"].update(memory="lots"),
        "spec.containers[0].resources.limits[memory]",
        "quantities must match the regular expression",
    ),
    (
        "Pod",
        lambda m: pod0(m)["resources"]["limits"].update(gpu="1"),
        "spec.containers[0].resources.limits[gpu]",
        "must be a standard resource for containers",
    ),
    (
        "Pod",
        lambda m: pod0(m)["resources"]["limits"].update(cpu="-1"),
        "spec.containers[0].resources.limits[cpu]",
        "must be greater than or equal to 0",
    ),
    (
        "Pod",
        lambda m: pod0(m).update(livenessProbe={"periodSeconds": 5}),
        "spec.containers[0].livenessProbe",
        "must specify a handler type",
    ),
    (
        "Pod",
        lambda m: pod0(m)["livenessProbe"].update(successThreshold=2),
        "spec.containers[0].livenessProbe.successThreshold",
        "must be 1",
    ),
    (
        "Pod",
        lambda m: pod0(m)["readinessProbe"].update(failureThreshold=-1),
        "spec.containers[0].readinessProbe.failureThreshold",
        "must be greater than or equal to 1",
    ),
    (
        "Pod",
        lambda m: pod0(m)["readinessProbe"]["tcpSocket"].update(port="Bad--name"),
        "spec.containers[0].readinessProbe.tcpSocket.port",
        "must not contain consecutive hyphens",
    ),
    (
        "Pod",
        lambda m: pod0(m)["livenessProbe"]["httpGet"].update(scheme="FTP"),
        "spec.containers[0].livenessProbe.httpGet.scheme",
        'Unsupported value: "FTP": supported values: "HTTP", "HTTPS"',
    ),
    (
        "Pod",
        lambda m: m["spec"].update(restartPolicy="Sometimes"),
        "spec.restartPolicy",
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    ),
    (
        "Pod",
        lambda m: m["spec"].update(dnsPolicy="Google"),
        "spec.dnsPolicy",
        'supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
    ),
    (
        "Pod",
        lambda m: pod0(m).update(imagePullPolicy="Sometimes"),
        "spec.containers[0].imagePullPolicy",
        'supported values: "Always", "IfNotPresent", "Never"',
    ),
    (
        "Pod",
        lambda m: m["spec"].update(terminationGracePeriodSeconds=-5),
        "spec.terminationGracePeriodSeconds",
        "must be greater than or equal to 0",
    ),
    (
        "Pod",
        lambda m: m["spec"].update(activeDeadlineSeconds=0),
        "spec.activeDeadlineSeconds",
        "must be between 1 and 2147483647, inclusive",
    ),
    (
        "Pod",
        lambda m: m["spec"].update(nodeSelector={"disk type": "ssd"}),
        "spec.nodeSelector",
        "name part must consist of alphanumeric characters",
    ),
    (
        "Pod",
        lambda m: m["spec"]["tolerations"].append({"key": "k", "operator": "Exists", "value": "v"}),
        "spec.tolerations[1].operator",
        "value must be empty when `operator` is 'Exists'",
    ),
    (
        "Pod",
        lambda m: m["spec"]["tolerations"].append({"key": "k", "operator": "Maybe"}),
        "spec.tolerations[1].operator",
        'Unsupported value: "Maybe": supported values: "Equal", "Exists"',
    ),
    (
        "Pod",
        lambda m: m["spec"]["tolerations"].append({"operator": "Equal", "value": "v"}),
        "spec.tolerations[1].operator",
        "operator must be Exists when `key` is empty",
    ),
    (
        "Pod",
        lambda m: m["spec"]["tolerations"].append(
            {"key": "k", "operator": "Exists", "effect": "NoWay"}
        ),
        "spec.tolerations[1].effect",
        'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
    ),
    (
        "Pod",
        lambda m: m["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"].append(
            {"key": "cores", "operator": "Gt", "values": ["1", "2"]}
        ),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values",
        "must be specified single value when `operator` is 'Lt' or 'Gt'",
    ),
    (
        "Pod",
        lambda m: m["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"].append(
            {"key": "disk", "operator": "Exists", "values": ["x"]}
        ),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values",
        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    ),
    (
        "Pod",
        lambda m: m["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"].append({"key": "disk", "operator": "Near"}),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].operator",
        "not a valid selector operator",
    ),
    # service
    ("Service", lambda m: m["spec"].update(ports=[]), "spec.ports", "Required value"),
    (
        "Service",
        lambda m: m["spec"]["ports"][1].pop("name"),
        "spec.ports[1].name",
        "Required value",
    ),
    (
        "Service",
        lambda m: m["spec"]["ports"][1].update(name="http"),
        "spec.ports[1].name",
        'Duplicate value: "http"',
    ),
    (
        "Service",
        lambda m: m["spec"]["ports"][1].update(port=0),
        "spec.ports[1].port",
        "must be between 1 and 65535",
    ),
    (
        "Service",
        lambda m: m["spec"]["ports"][1].update(targetPort=70000),
        "spec.ports[1].targetPort",
        "must be between 1 and 65535",
    ),
    (
        "Service",
        lambda m: m["spec"]["ports"][1].update(protocol="HTTP"),
        "spec.ports[1].protocol",
        "Unsupported value",
    ),
    (
        "Service",
        lambda m: m["spec"]["ports"][1].update(nodePort=30080),
        "spec.ports[1].nodePort",
        "may not be used when `type` is 'ClusterIP'",
    ),
    (
        "Service",
        lambda m: m["spec"].update(type="Magic"),
        "spec.type",
        'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ),
    (
        "Service",
        lambda m: m["spec"].update(type="ExternalName"),
        "spec.externalName",
        "Required value",
    ),
    (
        "Service",
        lambda m: m["spec"].update(
            type="ExternalName", externalName="db.example.com", clusterIP="10.0.0.1"
        ),
        "spec.clusterIP",
        "may not be set for ExternalName services",
    ),
    (
        "Service",
        lambda m: m["spec"].update(clusterIP="10.0.0.300"),
        "spec.clusterIP",
        "must be empty, 'None', or a valid IP address",
    ),
    (
        "Service",
        lambda m: m["spec"].update(sessionAffinity="Sticky"),
        "spec.sessionAffinity",
        'supported values: "ClientIP", "None"',
    ),
    (
        "Service",
        lambda m: m["spec"].update(
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}},
        ),
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "must be greater than 0 and less than 86400",
    ),
    # endpoints, configmap, secret
    (
        "Endpoints",
        lambda m: m["subsets"][0]["addresses"][0].update(ip="10.1"),
        "subsets[0].addresses[0].ip",
        "must be a valid IP address",
    ),
    (
        "Endpoints",
        lambda m: m["subsets"][0].update(addresses=[]),
        "subsets[0]",
        "must specify `addresses` or `notReadyAddresses`",
    ),
    (
        "Endpoints",
        lambda m: m["subsets"][0]["ports"][0].update(port=0),
        "subsets[0].ports[0].port",
        "must be between 1 and 65535",
    ),
    (
        "ConfigMap",
        lambda m: m["data"].update({"bad key": "v"}),
        "data[bad key]",
        "a valid config key must consist of alphanumeric characters",
    ),
    (
        "ConfigMap",
        lambda m: m["data"].update(blob="x"),
        "data[blob]",
        "duplicate of key present in binaryData",
    ),
    ("ConfigMap", lambda m: m["data"].update(big="x" * (1024 * 1024 + 1)), "data", "Too long"),
    ("Secret", lambda m: m["data"].pop("tls.key"), "data[tls.key]", "Required value"),
    (
        "Secret",
        lambda m: m.update(type="kubernetes.io/dockerconfigjson"),
        "data[.dockerconfigjson]",
        "Required value",
    ),
    # namespace, node, event
    (
        "Namespace",
        lambda m: m.update(spec={"finalizers": ["bogus"]}),
        "spec.finalizers[0]",
        "name is neither a standard finalizer name nor is it fully qualified",
    ),
    (
        "Node",
        lambda m: m["spec"].update(podCIDR="10.244.1.0"),
        "spec.podCIDR",
        "must be a valid CIDR value",
    ),
    (
        "Node",
        lambda m: m["spec"]["taints"][0].update(effect="NoRun"),
        "spec.taints[0].effect",
        'Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", '
        '"NoExecute"',
    ),
    (
        "Node",
        lambda m: m["spec"]["taints"][0].update(key="bad key"),
        "spec.taints[0].key",
        "name part must consist of alphanumeric characters",
    ),
    (
        "Node",
        lambda m: m["spec"]["taints"].append(
            {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
        ),
        "spec.taints[1]",
        "taints must be unique by key and effect pair",
    ),
    ("Event", lambda m: m.pop("involvedObject"), "involvedObject", "Required value"),
    ("Event", lambda m: m.update(type="Bad"), "type", 'supported values: "Normal", "Warning"'),
    (
        "Event",
        lambda m: m["involvedObject"].update(namespace="other"),
        "involvedObject.namespace",
        "does not match event.namespace",
    ),
    # storage
    (
        "PersistentVolume",
        lambda m: m["spec"].pop("accessModes"),
        "spec.accessModes",
        "Required value",
    ),
    (
        "PersistentVolume",
        lambda m: m["spec"].update(accessModes=["ReadWriteSometimes"]),
        "spec.accessModes",
        'supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
    ),
    (
        "PersistentVolume",
        lambda m: m["spec"].update(capacity={}),
        "spec.capacity",
        "Required value",
    ),
    (
        "PersistentVolume",
        lambda m: m["spec"].update(capacity={"storage": "0"}),
        "spec.capacity[storage]",
        "must be greater than zero",
    ),
    (
        "PersistentVolume",
        lambda m: m["spec"].update(persistentVolumeReclaimPolicy="Keep"),
        "spec.persistentVolumeReclaimPolicy",
        "Unsupported value",
    ),
    (
        "PersistentVolumeClaim",
        lambda m: m["spec"].update(accessModes=[]),
        "spec.accessModes",
        "at least 1 access mode is required",
    ),
    (
        "PersistentVolumeClaim",
        lambda m: m["spec"]["resources"].update(requests={}),
        "spec.resources[storage]",
        "Required value",
    ),
    (
        "ResourceQuota",
        lambda m: m["spec"]["hard"].update(widgets="1"),
        "spec.hard[widgets]",
        "must be a standard resource for quota",
    ),
    (
        "ResourceQuota",
        lambda m: m["spec"]["hard"].update(pods="many"),
        "spec.hard[pods]",
        "quantities must match",
    ),
    (
        "LimitRange",
        lambda m: m["spec"]["limits"][0].update(type="Volume"),
        "spec.limits[0].type",
        "must be a standard limit type or fully qualified",
    ),
    (
        "LimitRange",
        lambda m: m["spec"]["limits"][0].update(min={"cpu": "3"}),
        "spec.limits[0].min[cpu]",
        "min value 3 is greater than max value 2",
    ),
    (
        "LimitRange",
        lambda m: m["spec"]["limits"][0].update(default={"cpu": "4"}),
        "spec.limits[0].default[cpu]",
        "default value 4 is greater than max value 2",
    ),
    # workloads
    ("Deployment", lambda m: m["spec"].pop("selector"), "spec.selector", "Required value"),
    (
        "Deployment",
        lambda m: m["spec"].update(selector={}),
        "spec.selector",
        "empty selector is invalid for deployment",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(selector={"matchLabels": {"app": "db"}}),
        "spec.template.metadata.labels",
        "`selector` does not match template `labels`",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(replicas=-1),
        "spec.replicas",
        "must be greater than or equal to 0",
    ),
    (
        "Deployment",
        lambda m: tpl(m).update(restartPolicy="Never"),
        "spec.template.spec.restartPolicy",
        'Unsupported value: "Never": supported values: "Always"',
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(strategy={"type": "Blue"}),
        "spec.strategy.type",
        'supported values: "Recreate", "RollingUpdate"',
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(
            strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
        ),
        "spec.strategy.rollingUpdate.maxUnavailable",
        "may not be 0 when `maxSurge` is 0",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(strategy={"rollingUpdate": {"maxUnavailable": "150%"}}),
        "spec.strategy.rollingUpdate.maxUnavailable",
        "must not be greater than 100%",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(strategy={"rollingUpdate": {"maxSurge": "x%"}}),
        "spec.strategy.rollingUpdate.maxSurge",
        "a valid percent string",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(strategy={"type": "Recreate", "rollingUpdate": {}}),
        "spec.strategy.rollingUpdate",
        "may not be specified when strategy `type` is 'Recreate'",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(minReadySeconds=700),
        "spec.progressDeadlineSeconds",
        "must be greater than minReadySeconds",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(revisionHistoryLimit=-1),
        "spec.revisionHistoryLimit",
        "must be greater than or equal to 0",
    ),
    (
        "ReplicaSet",
        lambda m: m["spec"].update(minReadySeconds=-1),
        "spec.minReadySeconds",
        "must be greater than or equal to 0",
    ),
    (
        "ReplicaSet",
        lambda m: tpl(m).update(activeDeadlineSeconds=10),
        "spec.template.spec.activeDeadlineSeconds",
        "activeDeadlineSeconds in deployment is not Supported",
    ),
    (
        "DaemonSet",
        lambda m: m["spec"].update(
            updateStrategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0},
            }
        ),
        "spec.updateStrategy.rollingUpdate.maxUnavailable",
        "cannot be 0 when maxSurge is 0",
    ),
    (
        "DaemonSet",
        lambda m: m["spec"].update(
            updateStrategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1},
            }
        ),
        "spec.updateStrategy.rollingUpdate.maxSurge",
        "may not be set when maxUnavailable is non-zero",
    ),
    (
        "DaemonSet",
        lambda m: m["spec"].update(updateStrategy={"type": "Sometimes"}),
        "spec.updateStrategy.type",
        'supported values: "RollingUpdate", "OnDelete"',
    ),
    (
        "StatefulSet",
        lambda m: m["spec"].update(podManagementPolicy="Random"),
        "spec.podManagementPolicy",
        "must be 'OrderedReady' or 'Parallel'",
    ),
    (
        "StatefulSet",
        lambda m: m["spec"].update(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}
        ),
        "spec.updateStrategy.rollingUpdate.partition",
        "must be greater than or equal to 0",
    ),
    (
        "StatefulSet",
        lambda m: m["spec"]["volumeClaimTemplates"][0]["spec"].update(accessModes=[]),
        "spec.volumeClaimTemplates[0].spec.accessModes",
        "at least 1 access mode is required",
    ),
    (
        "StatefulSet",
        lambda m: m["spec"].update(selector={"matchLabels": {"app": "db"}}),
        "spec.template.metadata.labels",
        "`selector` does not match template `labels`",
    ),
    (
        "ReplicationController",
        lambda m: m["spec"].update(selector={}, template={"metadata": {}, "spec": pod_spec()}),
        "spec.selector",
        "Required value",
    ),
    (
        "ReplicationController",
        lambda m: m["spec"].update(selector={"app": "db"}),
        "spec.template.metadata.labels",
        "`selector` does not match template `labels`",
    ),
    ("ControllerRevision", lambda m: m.pop("data"), "data", "Required value: data is mandatory"),
    # batch
    (
        "Job",
        lambda m: tpl(m).update(restartPolicy="Always"),
        "spec.template.spec.restartPolicy",
        'Required value: valid values: "OnFailure", "Never"',
    ),
    (
        "Job",
        lambda m: m["spec"].update(parallelism=-1),
        "spec.parallelism",
        "must be greater than or equal to 0",
    ),
    (
        "Job",
        lambda m: m["spec"].update(backoffLimit=-1),
        "spec.backoffLimit",
        "must be greater than or equal to 0",
    ),
    (
        "Job",
        lambda m: m["spec"].update(activeDeadlineSeconds=0),
        "spec.activeDeadlineSeconds",
        "must be greater than zero",
    ),
    (
        "Job",
        lambda m: m["spec"].update(completionMode="Sometimes"),
        "spec.completionMode",
        'supported values: "NonIndexed", "Indexed"',
    ),
    (
        "Job",
        lambda m: m["spec"]["template"]["metadata"]["labels"].update({"job-name": "other"}),
        "spec.template.metadata.labels[job-name]",
        "must be 'web'",
    ),
    (
        "Job",
        lambda m: m["spec"].update(selector={"matchLabels": {"app": "web"}}),
        "spec.template.metadata.labels",
        "`selector` does not match template `labels`",
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(schedule="* * *"),
        "spec.schedule",
        "expected exactly 5 fields, found 3: [* * *]",
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(schedule="61 * * * *"),
        "spec.schedule",
        "end of range (61) above maximum (59): 61",
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(schedule="@fortnightly"),
        "spec.schedule",
        "unrecognized descriptor: @fortnightly",
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(schedule="TZ=UTC 0 * * * *"),
        "spec.schedule",
        "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
    ),
    ("CronJob", lambda m: m["spec"].pop("schedule"), "spec.schedule", "Required value"),
    (
        "CronJob",
        lambda m: m["spec"].update(concurrencyPolicy="Sometimes"),
        "spec.concurrencyPolicy",
        'supported values: "Allow", "Forbid", "Replace"',
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(successfulJobsHistoryLimit=-1),
        "spec.successfulJobsHistoryLimit",
        "must be greater than or equal to 0",
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(startingDeadlineSeconds=-1),
        "spec.startingDeadlineSeconds",
        "must be greater than or equal to 0",
    ),
    (
        "CronJob",
        lambda m: m["spec"].update(timeZone="Mars/Olympus"),
        "spec.timeZone",
        "unknown time zone Mars/Olympus",
    ),
    (
        "CronJob",
        lambda m: m["metadata"].update(name="c" * 53),
        "metadata.name",
        "must be no more than 52 characters",
    ),
    (
        "CronJob",
        lambda m: m["spec"]["jobTemplate"]["spec"]["template"]["spec"].update(
            restartPolicy="Always"
        ),
        "spec.jobTemplate.spec.template.spec.restartPolicy",
        "Required value",
    ),
    (
        "CronJob",
        lambda m: m["spec"]["jobTemplate"]["spec"].update(selector=SELECTOR),
        "spec.jobTemplate.spec.selector",
        "`selector` will be auto-generated",
    ),
    # other groups
    (
        "HorizontalPodAutoscaler",
        lambda m: m["spec"]["scaleTargetRef"].pop("kind"),
        "spec.scaleTargetRef.kind",
        "Required value",
    ),
    (
        "HorizontalPodAutoscaler",
        lambda m: m["spec"]["scaleTargetRef"].update(name="a/b"),
        "spec.scaleTargetRef.name",
        "may not contain '/'",
    ),
    (
        "HorizontalPodAutoscaler",
        lambda m: m["spec"].update(minReplicas=0),
        "spec.minReplicas",
        "must be greater than or equal to 1",
    ),
    (
        "HorizontalPodAutoscaler",
        lambda m: m["spec"].update(minReplicas=6),
        "spec.maxReplicas",
        "must be greater than or equal to `minReplicas`",
    ),
    (
        "HorizontalPodAutoscaler",
        lambda m: m["spec"].update(targetCPUUtilizationPercentage=0),
        "spec.targetCPUUtilizationPercentage",
        "must be greater than 0",
    ),
    (
        "Lease",
        lambda m: m["spec"].update(leaseDurationSeconds=0),
        "spec.leaseDurationSeconds",
        "must be greater than 0",
    ),
    (
        "Lease",
        lambda m: m["spec"].update(leaseTransitions=-1),
        "spec.leaseTransitions",
        "must be greater than or equal to 0",
    ),
    ("StorageClass", lambda m: m.pop("provisioner"), "provisioner", "Required value"),
    (
        "StorageClass",
        lambda m: m.update(reclaimPolicy="Recycle"),
        "reclaimPolicy",
        'Unsupported value: "Recycle": supported values: "Delete", "Retain"',
    ),
    (
        "StorageClass",
        lambda m: m.update(volumeBindingMode="Later"),
        "volumeBindingMode",
        'supported values: "Immediate", "WaitForFirstConsumer"',
    ),
]


@pytest.mark.parametrize(
    ("kind", "patch", "field", "words"),
    INVALID,
    ids=[f"{c[0]}:{c[2]}:{i}" for i, c in enumerate(INVALID)],
)
def test_invalid(kind: str, patch: Callable[[Manifest], object], field: str, words: str) -> None:
    found = errors(kind, patched(kind, patch))
    matching = [e for e in found if e.field == field]
    assert matching, f"no violation at {field}; got {found}"
    assert any(words in e.description for e in matching), matching


def update_errors(
    kind: str, patch: Callable[[Manifest], object], old: Manifest | None = None
) -> list[FieldViolation]:
    base = VALID[kind] if old is None else old
    new = copy.deepcopy(base)
    patch(new)
    return errors(kind, new, old=base)


def one_at(found: list[FieldViolation], field: str, words: str) -> None:
    assert any(e.field == field and words in e.description for e in found), found


STORED = {"uid": "abc", "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "5"}

UPDATES: list[tuple[str, Callable[[Manifest], object], str, str]] = [
    (
        "Pod",
        lambda m: m["metadata"].update(name="other"),
        "metadata.name",
        'Invalid value: "other": field is immutable',
    ),
    (
        "Pod",
        lambda m: m["metadata"].update(namespace="kube-system"),
        "metadata.namespace",
        "field is immutable",
    ),
    ("Pod", lambda m: m["metadata"].update(uid="zzz"), "metadata.uid", "field is immutable"),
    (
        "Pod",
        lambda m: m["metadata"].update(creationTimestamp="2025-01-01T00:00:00Z"),
        "metadata.creationTimestamp",
        "field is immutable",
    ),
    (
        "Pod",
        lambda m: pod0(m)["ports"][0].update(containerPort=8080),
        "spec",
        "pod updates may not change fields other than `spec.containers[*].image`",
    ),
    (
        "Pod",
        lambda m: m["spec"]["containers"].append({"name": "b", "image": "x"}),
        "spec.containers",
        "pod updates may not add or remove containers",
    ),
    (
        "Pod",
        lambda m: m["spec"]["tolerations"][0].update(value="db"),
        "spec.tolerations",
        "existing toleration can not be modified",
    ),
    (
        "Deployment",
        lambda m: m["spec"].update(selector={"matchLabels": {"app": "web", "tier": "x"}}),
        "spec.selector",
        "field is immutable",
    ),
    (
        "ReplicaSet",
        lambda m: m["spec"].update(
            selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}
        ),
        "spec.selector",
        "field is immutable",
    ),
    (
        "DaemonSet",
        lambda m: m["spec"]["selector"]["matchLabels"].update(tier="a"),
        "spec.selector",
        "field is immutable",
    ),
    (
        "StatefulSet",
        lambda m: m["spec"].update(serviceName="other"),
        "spec",
        "updates to statefulset spec for fields other than 'replicas'",
    ),
    ("Job", lambda m: m["spec"].update(completions=4), "spec.completions", "field is immutable"),
    (
        "Job",
        lambda m: pod0({"spec": tpl(m)}).update(image="nginx:2"),
        "spec.template",
        "field is immutable",
    ),
    (
        "Service",
        lambda m: m["spec"].update(clusterIP="10.96.0.99"),
        "spec.clusterIP",
        "field is immutable",
    ),
    ("Secret", lambda m: m.update(type="Opaque"), "type", "field is immutable"),
    (
        "StorageClass",
        lambda m: m.update(provisioner="example.com/other"),
        "provisioner",
        "updates to provisioner are forbidden.",
    ),
    (
        "StorageClass",
        lambda m: m.update(parameters={"type": "gp2"}),
        "parameters",
        "updates to parameters are forbidden.",
    ),
    (
        "PersistentVolumeClaim",
        lambda m: m["spec"].update(accessModes=["ReadWriteMany"]),
        "spec",
        "spec is immutable after creation",
    ),
    (
        "PersistentVolume",
        lambda m: m["spec"].update(hostPath={"path": "/other"}),
        "spec.persistentvolumesource",
        "immutable after creation",
    ),
]


def with_stored_meta(kind: str) -> Manifest:
    manifest = copy.deepcopy(VALID[kind])
    manifest["metadata"] = {**manifest["metadata"], **STORED}
    if kind == "Job":
        manifest["metadata"]["uid"] = UID
    if kind == "Service":
        manifest["spec"]["clusterIP"] = "10.96.0.10"
    return manifest


@pytest.mark.parametrize(
    ("kind", "patch", "field", "words"),
    UPDATES,
    ids=[f"{c[0]}:{c[2]}:{i}" for i, c in enumerate(UPDATES)],
)
def test_update_immutability(
    kind: str, patch: Callable[[Manifest], object], field: str, words: str
) -> None:
    one_at(update_errors(kind, patch, with_stored_meta(kind)), field, words)


ALLOWED_UPDATES: list[tuple[str, Callable[[Manifest], object]]] = [
    ("Pod", lambda m: pod0(m).update(image="nginx:1.26")),
    ("Pod", lambda m: m["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})),
    ("Pod", lambda m: m["spec"].update(activeDeadlineSeconds=30)),
    ("Pod", lambda m: m["metadata"].update(labels={"app": "web", "extra": "1"})),
    ("Deployment", lambda m: m["spec"].update(replicas=5)),
    ("Deployment", lambda m: pod0({"spec": tpl(m)}).update(image="nginx:2")),
    ("StatefulSet", lambda m: m["spec"].update(replicas=7, minReadySeconds=3)),
    ("ConfigMap", lambda m: m["data"].update(more="1")),
    ("Service", lambda m: m["spec"].update(type="NodePort")),
]


@pytest.mark.parametrize(("kind", "patch"), ALLOWED_UPDATES, ids=[c[0] for c in ALLOWED_UPDATES])
def test_allowed_updates(kind: str, patch: Callable[[Manifest], object]) -> None:
    assert update_errors(kind, patch, with_stored_meta(kind)) == []


def test_pod_binding_may_set_node_name_once() -> None:
    assert update_errors("Pod", lambda m: m["spec"].update(nodeName="node-1")) == []
    bound = copy.deepcopy(VALID["Pod"])
    bound["spec"]["nodeName"] = "node-1"
    one_at(
        update_errors("Pod", lambda m: m["spec"].update(nodeName="node-2"), bound),
        "spec",
        "pod updates may not change",
    )


def test_active_deadline_may_only_decrease() -> None:
    old = copy.deepcopy(VALID["Pod"])
    old["spec"]["activeDeadlineSeconds"] = 60
    one_at(
        update_errors("Pod", lambda m: m["spec"].update(activeDeadlineSeconds=120), old),
        "spec.activeDeadlineSeconds",
        "must be less than or equal to previous value",
    )
    assert update_errors("Pod", lambda m: m["spec"].update(activeDeadlineSeconds=30), old) == []


def test_immutable_config_map_and_secret() -> None:
    old = copy.deepcopy(VALID["ConfigMap"])
    old["immutable"] = True
    found = update_errors("ConfigMap", lambda m: m["data"].update(more="1"), old)
    assert found == [
        FieldViolation("data", "Forbidden: field is immutable when `immutable` is set")
    ]
    found = update_errors("ConfigMap", lambda m: m.update(immutable=False), old)
    one_at(found, "immutable", "field is immutable when `immutable` is set")
    old_secret = copy.deepcopy(VALID["Secret"])
    old_secret["immutable"] = True
    one_at(
        update_errors("Secret", lambda m: m["data"].update({"tls.key": "bmV3"}), old_secret),
        "data",
        "field is immutable when `immutable` is set",
    )


def test_node_pod_cidr_is_set_once() -> None:
    unset = copy.deepcopy(VALID["Node"])
    unset["spec"].pop("podCIDR")
    assert update_errors("Node", lambda m: None, unset) == []
    one_at(
        update_errors(
            "Node", lambda m: m["spec"].update(podCIDR="10.244.9.0/24", podCIDRs=["10.244.9.0/24"])
        ),
        "spec.podCIDR",
        'node updates may not change podCIDR except from "" to valid',
    )


def test_bound_claim_may_only_grow() -> None:
    bound = copy.deepcopy(VALID["PersistentVolumeClaim"])
    bound["status"] = {"phase": "Bound"}

    def grow(m: Manifest) -> None:
        m["spec"]["resources"]["requests"]["storage"] = "2Gi"

    assert update_errors("PersistentVolumeClaim", grow, bound) == []

    def shrink(m: Manifest) -> None:
        m["spec"]["resources"]["requests"]["storage"] = "512Mi"

    one_at(
        update_errors("PersistentVolumeClaim", shrink, bound),
        "spec.resources.requests.storage",
        "field can not be less than previous value",
    )
    one_at(update_errors("PersistentVolumeClaim", grow), "spec", "spec is immutable after creation")


def test_finalizers_cannot_be_added_while_deleting() -> None:
    old = copy.deepcopy(VALID["ConfigMap"])
    old["metadata"] = {**old["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}
    one_at(
        update_errors(
            "ConfigMap", lambda m: m["metadata"].update(finalizers=["example.com/x"]), old
        ),
        "metadata.finalizers",
        "no new finalizers can be added if the object is being deleted",
    )


def test_cron_job_name_limit_only_on_create() -> None:
    long_name = copy.deepcopy(VALID["CronJob"])
    long_name["metadata"]["name"] = "c" * 60
    assert errors("CronJob", long_name, old=long_name) == []


def test_job_generated_selector_must_match_uid() -> None:
    job = copy.deepcopy(VALID["Job"])
    job["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}}
    job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] = "other"
    one_at(errors("Job", job), "spec.selector", "`selector` not auto-generated")


def test_job_work_queue_mode_is_valid() -> None:
    job = copy.deepcopy(VALID["Job"])
    job["spec"]["parallelism"] = 3
    obj = build("Job", job)
    assert not getattr(obj, "spec").HasField("completions")  # noqa: B009
    assert validate_object("Job", obj, None) == []


def test_valid_objects_without_defaulting_report_required_enums() -> None:
    pod = build("Pod", VALID["Pod"], defaults=False)
    found = {e.field for e in validate_object("Pod", pod, None)}
    assert {"spec.restartPolicy", "spec.dnsPolicy", "spec.containers[0].imagePullPolicy"} <= found


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "0 0 1 1 *",
        "*/5 1-5 * jan-dec sun",
        "0,30 * ? * MON-FRI",
        "@hourly",
        "@every 1h30m",
        "5/15 * * * *",
    ],
)
def test_cron_valid(schedule: str) -> None:
    parse_schedule(schedule)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "empty spec string"),
        ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ],
)
def test_cron_errors(schedule: str, message: str) -> None:
    with pytest.raises(CronError) as err:
        parse_schedule(schedule)
    assert str(err.value) == message


def test_cron_fields() -> None:
    sched = parse_schedule("*/20 9-17/4 * * mon,wed")
    assert sched.minutes == {0, 20, 40}
    assert sched.hours == {9, 13, 17}
    assert sched.days_of_week == {1, 3}
    assert sched.dom_star and not sched.dow_star
    assert parse_schedule("@every 90s").every_seconds == 90


STATUS: list[tuple[str, Manifest, str, str]] = [
    (
        "Pod",
        {"phase": "Sleeping"},
        "status.phase",
        'supported values: "Pending", "Running", "Succeeded", "Failed", "Unknown"',
    ),
    (
        "Pod",
        {"conditions": [{"type": "Ready", "status": "Yes"}]},
        "status.conditions[0].status",
        'supported values: "True", "False", "Unknown"',
    ),
    ("Pod", {"podIP": "10.1.1"}, "status.podIP", "must be a valid IP address"),
    ("Node", {"conditions": [{"status": "True"}]}, "status.conditions[0].type", "Required value"),
    ("Node", {"capacity": {"cpu": "two"}}, "status.capacity[cpu]", "quantities must match"),
    ("Namespace", {"phase": "Gone"}, "status.phase", 'supported values: "Active", "Terminating"'),
    (
        "PersistentVolumeClaim",
        {"phase": "Lost?"},
        "status.phase",
        'supported values: "Pending", "Bound", "Lost"',
    ),
    (
        "ReplicaSet",
        {"replicas": 1, "readyReplicas": 2},
        "status.readyReplicas",
        "cannot be greater than status.replicas",
    ),
    ("Deployment", {"replicas": -1}, "status.replicas", "must be greater than or equal to 0"),
    ("Job", {"failed": -1}, "status.failed", "must be greater than or equal to 0"),
]


@pytest.mark.parametrize(
    ("kind", "status", "field", "words"), STATUS, ids=[f"{c[0]}:{c[2]}" for c in STATUS]
)
def test_status_update(kind: str, status: Manifest, field: str, words: str) -> None:
    old = build(kind, VALID[kind])
    new_manifest = copy.deepcopy(VALID[kind])
    new_manifest["status"] = status
    found = validate_status_update(kind, build(kind, new_manifest), old)
    one_at(found, field, words)


def test_status_update_checks_metadata_and_passes_valid_status() -> None:
    old = build("Pod", VALID["Pod"])
    good = copy.deepcopy(VALID["Pod"])
    good["status"] = {
        "phase": "Running",
        "podIP": "10.244.1.7",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    assert validate_status_update("Pod", build("Pod", good), old) == []
    renamed = copy.deepcopy(good)
    renamed["metadata"]["name"] = "other"
    one_at(
        validate_status_update("Pod", build("Pod", renamed), old),
        "metadata.name",
        "field is immutable",
    )
    done = copy.deepcopy(good)
    done["status"]["phase"] = "Succeeded"
    back = copy.deepcopy(good)
    one_at(
        validate_status_update("Pod", build("Pod", back), build("Pod", done)),
        "status.phase",
        "cannot transition from terminal phase",
    )


def test_unknown_kind_and_wrong_message() -> None:
    with pytest.raises(KeyError):
        validate_object("Widget", core_pb2.Pod(), None)
    with pytest.raises(TypeError):
        validate_object("Service", core_pb2.Pod(), None)

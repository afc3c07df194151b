"""The API's protobuf JSON mapping must read and write Kubernetes manifests unchanged.

That is the contract of protos/: field names (with json_name for acronyms), int-or-string
fields, optional scalars and base64 bytes all have to line up with Kubernetes' JSON. The
proto3 JSON mapping itself differs from Kubernetes in exactly two ways, which the manifest
layer must undo when it prints: 64-bit integers are written as strings, and numbers inside a
google.protobuf.Value come back as floats. `as_kubernetes` undoes those two, guided by the
message descriptors (capstan.machinery.manifests.as_kubernetes, shared with the CLI);
everything else must round-trip byte for byte.
"""

from __future__ import annotations

import copy
import json
import re
from types import ModuleType
from typing import Any

import pytest
from capstan.api.apps.v1 import apps_pb2
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.coordination.v1 import coordination_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.api.node.v1 import node_pb2
from capstan.api.storage.v1 import storage_pb2
from capstan.machinery.manifests import as_kubernetes
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

pytestmark = pytest.mark.unit


def _parse(manifest: dict[str, Any], message: Message) -> Message:
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    json_format.ParseDict(body, message)
    return message


def _canonical(obj: Any) -> str:
    """Type-strict comparison form: 8080 and 8080.0 differ, as they do in YAML."""
    return json.dumps(obj, sort_keys=True)


POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "kuard",
        "namespace": "default",
        "labels": {"app": "kuard"},
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "generation": 1,
    },
    "spec": {
        "containers": [
            {
                "name": "kuard",
                "image": "kuard-amd64:1",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [
                    {"name": "GREETING", "value": "hello $(MY_POD_IP)"},
                    {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {
                        "name": "MONGO_USER",
                        "valueFrom": {
                            "secretKeyRef": {"name": "mongo-secret", "key": "mongo-user"}
                        },
                    },
                ],
                "resources": {
                    "requests": {"cpu": "500m", "memory": "128Mi"},
                    "limits": {"cpu": "1000m", "memory": "256Mi"},
                },
                "volumeMounts": [{"name": "kuard-data", "mountPath": "/data"}],
                "livenessProbe": {
                    "httpGet": {"path": "/healthy", "port": 8080},
                    "initialDelaySeconds": 5,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": "http"},
                    "initialDelaySeconds": 0,
                    "periodSeconds": 2,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
            }
        ],
        "volumes": [
            {"name": "kuard-data", "hostPath": {"path": "/var/lib/kuard"}},
            {"name": "config", "configMap": {"name": "kuard-config", "defaultMode": 420}},
            {"name": "cache", "emptyDir": {}},
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"ssd": "true"},
        "hostPID": True,
    },
    "status": {
        "phase": "Running",
        "hostIP": "10.0.0.2",
        "podIP": "10.244.1.5",
        "podIPs": [{"ip": "10.244.1.5"}],
        "startTime": "2024-05-01T10:00:01Z",
        "qosClass": "Burstable",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:05Z"}
        ],
        "containerStatuses": [
            {
                "name": "kuard",
                "ready": True,
                "started": True,
                "restartCount": 1,
                "image": "kuard-amd64:1",
                "imageID": "docker-pullable://kuard-amd64@sha256:0123",
                "containerID": "docker://4f2a",
                "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}},
                "lastState": {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "OOMKilled",
                        "startedAt": "2024-05-01T10:00:01Z",
                        "finishedAt": "2024-05-01T10:00:02Z",
                        "containerID": "docker://1b3c",
                    }
                },
            }
        ],
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "alpaca-prod", "namespace": "default"},
    "spec": {
        "type": "NodePort",
        "selector": {"app": "alpaca", "env": "prod"},
        "clusterIP": "10.96.0.12",
        "clusterIPs": ["10.96.0.12"],
        "externalIPs": ["192.0.2.10"],
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090, "targetPort": "metrics", "nodePort": 30100},
        ],
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "publishNotReadyAddresses": True,
    },
    "status": {"loadBalancer": {}},
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
    "spec": {
        "replicas": 10,
        "selector": {
            "matchLabels": {"run": "nginx"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "minReadySeconds": 60,
        "revisionHistoryLimit": 14,
        "progressDeadlineSeconds": 600,
        "paused": False,
        "template": {
            "metadata": {
                "labels": {"run": "nginx"},
                "annotations": {"kubernetes.io/change-cause": "Update nginx to 1.9.10"},
            },
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx:1.9.10",
                        "ports": [{"containerPort": 80}],
                        "lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}},
                    }
                ],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "cores", "operator": "Gt", "values": ["2"]}
                                    ]
                                }
                            ]
                        }
                    },
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "podAffinityTerm": {
                                    "labelSelector": {"matchLabels": {"run": "nginx"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                },
                            }
                        ]
                    },
                },
                "tolerations": [
                    {
                        "key": "dedicated",
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    }
                ],
            },
        },
    },
    "status": {
        "observedGeneration": 3,
        "replicas": 12,
        "updatedReplicas": 2,
        "readyReplicas": 10,
        "availableReplicas": 10,
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "lastUpdateTime": "2024-05-01T10:00:00Z",
                "lastTransitionTime": "2024-05-01T09:00:00Z",
            }
        ],
    },
}

JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "parallel", "namespace": "default", "labels": {"chapter": "jobs"}},
    "spec": {
        "parallelism": 5,
        "completions": 10,
        "backoffLimit": 4,
        "activeDeadlineSeconds": 100,
        "ttlSecondsAfterFinished": 3600,
        "template": {
            "metadata": {"labels": {"chapter": "jobs"}},
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [
                    {
                        "name": "kuard",
                        "image": "kuard-amd64:1",
                        "args": [
                            "--keygen-enable",
                            "--keygen-exit-on-complete",
                            "--keygen-num-to-gen=10",
                        ],
                    }
                ],
            },
        },
    },
    "status": {"startTime": "2024-05-01T10:00:00Z", "active": 5, "succeeded": 3, "ready": 5},
}

SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "mongo-secret", "namespace": "default"},
    "type": "Opaque",
    "data": {"mongo-user": "bW9uZ291c2Vy", "mongo-password": "bW9uZ29wYXNzd29yZA=="},
}

NODE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
    "spec": {
        "podCIDR": "10.244.1.0/24",
        "podCIDRs": ["10.244.1.0/24"],
        "providerID": "capstan://node-1",
        "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
    },
    "status": {
        "capacity": {"cpu": "4", "memory": "882636Ki", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "882636Ki", "pods": "110"},
        "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": "m1",
            "systemUUID": "u1",
            "bootID": "b1",
            "kernelVersion": "6.1.0",
            "osImage": "Debian GNU/Linux 12",
            "containerRuntimeVersion": "docker://24.0.7",
            "kubeletVersion": "v0.1.0",
            "kubeProxyVersion": "v0.1.0",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": [{"names": ["kuard-amd64:1"], "sizeBytes": 21000000}],
    },
}

HPA: dict[str, Any] = {
    "apiVersion": "autoscaling/v1",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "kuard", "namespace": "default"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "kuard"},
        "minReplicas": 2,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 80,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
    },
    "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 95},
}

MANIFESTS: list[tuple[dict[str, Any], type[Message]]] = [
    (POD, core_pb2.Pod),
    (SERVICE, core_pb2.Service),
    (DEPLOYMENT, apps_pb2.Deployment),
    (JOB, batch_pb2.Job),
    (SECRET, core_pb2.Secret),
    (NODE, core_pb2.Node),
    (HPA, autoscaling_pb2.HorizontalPodAutoscaler),
]


@pytest.mark.parametrize(
    ("manifest", "message_type"), MANIFESTS, ids=[m["kind"] for m, _ in MANIFESTS]
)
def test_manifest_round_trips(manifest: dict[str, Any], message_type: type[Message]) -> None:
    message = _parse(copy.deepcopy(manifest), message_type())
    # Through the wire format as well: what the apiserver stores is what it prints.
    stored = message_type.FromString(message.SerializeToString())
    descriptor = stored.DESCRIPTOR
    assert isinstance(descriptor, Descriptor)
    printed = as_kubernetes(json_format.MessageToDict(stored), descriptor)
    expected = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    assert _canonical(printed) == _canonical(expected)


def test_int_or_string_fields_keep_their_kind() -> None:
    service = _parse(SERVICE, core_pb2.Service())
    assert isinstance(service, core_pb2.Service)
    by_port = {p.name: p.target_port for p in service.spec.ports}
    assert by_port["http"].WhichOneof("kind") == "number_value"
    assert by_port["http"].number_value == 8080
    assert by_port["metrics"].WhichOneof("kind") == "string_value"
    assert by_port["metrics"].string_value == "metrics"

    deployment = _parse(DEPLOYMENT, apps_pb2.Deployment())
    assert isinstance(deployment, apps_pb2.Deployment)
    rolling = deployment.spec.strategy.rolling_update
    assert rolling.max_surge.string_value == "25%"
    assert rolling.HasField("max_unavailable")
    assert rolling.max_unavailable.WhichOneof("kind") == "number_value"
    assert rolling.max_unavailable.number_value == 0


def test_defaultable_scalars_distinguish_unset_from_zero() -> None:
    pod = _parse(POD, core_pb2.Pod())
    assert isinstance(pod, core_pb2.Pod)
    readiness = pod.spec.containers[0].readiness_probe
    assert readiness.HasField("initial_delay_seconds")
    assert readiness.initial_delay_seconds == 0
    assert not readiness.HasField("timeout_seconds")

    deployment = _parse(DEPLOYMENT, apps_pb2.Deployment())
    assert isinstance(deployment, apps_pb2.Deployment)
    assert deployment.spec.HasField("paused")
    assert not deployment.spec.paused
    empty = apps_pb2.DeploymentSpec()
    assert not empty.HasField("replicas")
    assert not empty.HasField("revision_history_limit")


def test_acronym_fields_use_kubernetes_spelling() -> None:
    pod = _parse(POD, core_pb2.Pod())
    assert isinstance(pod, core_pb2.Pod)
    assert pod.status.pod_ip == "10.244.1.5"
    assert pod.status.host_ip == "10.0.0.2"
    assert pod.spec.host_pid
    assert pod.spec.containers[0].resources.requests["cpu"] == "500m"
    with pytest.raises(json_format.ParseError, match="podIp"):
        json_format.ParseDict({"status": {"podIp": "10.244.1.5"}}, core_pb2.Pod())


def test_secret_data_is_base64_bytes() -> None:
    secret = _parse(SECRET, core_pb2.Secret())
    assert isinstance(secret, core_pb2.Secret)
    assert secret.data["mongo-user"] == b"mongouser"
    assert secret.data["mongo-password"] == b"mongopassword"


def test_volume_sources_are_exclusive() -> None:
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict(
            {"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}, core_pb2.Volume()
        )


# Kubernetes writes acronyms in capitals (podIP, clusterIPs, machineID, downwardAPI); the
# default lowerCamelCase of a snake_case name (podIp) is a field json_name must fix.
_LOWERCASED_ACRONYM = re.compile(
    r"(Ipc|Ips|Ip|Cidrs|Cidr|Uuid|Uid|Id|Url|Tls|Api|Fqdn|Cpu|Pid)(?=[A-Z]|$)"
)
_API_MODULES: list[ModuleType] = [
    meta_pb2,
    core_pb2,
    apps_pb2,
    batch_pb2,
    autoscaling_pb2,
    coordination_pb2,
    storage_pb2,
    node_pb2,
]


def _all_messages(descriptors: list[Descriptor]) -> list[Descriptor]:
    out: list[Descriptor] = []
    for d in descriptors:
        out.append(d)
        out.extend(_all_messages(list(d.nested_types)))
    return out


def test_no_json_name_lowercases_an_acronym() -> None:
    offenders = [
        f"{message.full_name}.{field.name} -> {field.json_name}"
        for module in _API_MODULES
        for message in _all_messages(list(module.DESCRIPTOR.message_types_by_name.values()))
        for field in message.fields
        if _LOWERCASED_ACRONYM.search(field.json_name)
    ]
    assert offenders == []

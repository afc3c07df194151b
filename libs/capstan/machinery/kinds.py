"""The table of API kinds: one row per resource, read by the apiserver, the clients and
the CLI alike. Adding a kind is adding a row (and its proto messages), not code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from capstan.api.apps.v1 import apps_pb2
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.coordination.v1 import coordination_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.storage.v1 import storage_pb2

# A kind's field-selector getters: Kubernetes field path -> value as a string.
FieldGetter = Callable[[Any], str]


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    group: str
    namespaced: bool
    message: type[Message]
    list_message: type[Message]
    event_message: type[Message]
    has_status: bool
    short_names: tuple[str, ...] = ()
    version: str = "v1"
    # Subresources beyond the standard methods, by rpc name (Bind, Scale, Logs, ...).
    subresources: tuple[str, ...] = ()
    # Extra field-selector fields beyond metadata.name and metadata.namespace.
    fields: dict[str, FieldGetter] = field(default_factory=dict)
    # Seconds a stored object lives (Events expire like Kubernetes' --event-ttl).
    ttl_seconds: int = 0
    # Whether Create resets status to empty (then the strategy sets the initial one).
    reset_status_on_create: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def proto_package(self) -> str:
        return self.message.DESCRIPTOR.file.package

    @property
    def service(self) -> str:
        """The gRPC service's full name, e.g. capstan.core.v1.Pods."""
        return f"{self.proto_package}.{self.kind_plural_camel}"

    @property
    def kind_plural_camel(self) -> str:
        return _PLURAL_CAMEL.get(self.kind, self.kind + "s")

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def resource(self) -> str:
        """Kubernetes' resource name: plural, with the group for non-core kinds."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_group(self) -> str:
        return self.group or "core"


_PLURAL_CAMEL = {
    # protoc forbids a service named like the Endpoints message in the same package.
    "Endpoints": "EndpointsService",
    "StorageClass": "StorageClasses",
    "HorizontalPodAutoscaler": "HorizontalPodAutoscalers",
}


def _str(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _pod_fields() -> dict[str, FieldGetter]:
    return {
        "spec.nodeName": lambda o: o.spec.node_name,
        "spec.schedulerName": lambda o: o.spec.scheduler_name,
        "spec.restartPolicy": lambda o: o.spec.restart_policy,
        "spec.serviceAccountName": lambda o: o.spec.service_account_name,
        "spec.hostNetwork": lambda o: _str(o.spec.host_network),
        "status.phase": lambda o: o.status.phase,
        "status.podIP": lambda o: o.status.pod_ip,
        "status.nominatedNodeName": lambda o: "",
    }


def _event_fields() -> dict[str, FieldGetter]:
    return {
        "involvedObject.kind": lambda o: o.involved_object.kind,
        "involvedObject.namespace": lambda o: o.involved_object.namespace,
        "involvedObject.name": lambda o: o.involved_object.name,
        "involvedObject.uid": lambda o: o.involved_object.uid,
        "involvedObject.apiVersion": lambda o: o.involved_object.api_version,
        "involvedObject.resourceVersion": lambda o: o.involved_object.resource_version,
        "involvedObject.fieldPath": lambda o: o.involved_object.field_path,
        "reason": lambda o: o.reason,
        "reportingComponent": lambda o: o.reporting_component,
        "source": lambda o: o.source.component,
        "type": lambda o: o.type,
    }


KINDS: tuple[Kind, ...] = (
    Kind(
        "Namespace",
        "namespaces",
        "",
        False,
        core_pb2.Namespace,
        core_pb2.NamespaceList,
        core_pb2.NamespaceWatchEvent,
        True,
        ("ns",),
        fields={"status.phase": lambda o: o.status.phase},
    ),
    Kind(
        "Node",
        "nodes",
        "",
        False,
        core_pb2.Node,
        core_pb2.NodeList,
        core_pb2.NodeWatchEvent,
        True,
        ("no",),
        fields={"spec.unschedulable": lambda o: _str(o.spec.unschedulable)},
        reset_status_on_create=False,
    ),
    Kind(
        "Pod",
        "pods",
        "",
        True,
        core_pb2.Pod,
        core_pb2.PodList,
        core_pb2.PodWatchEvent,
        True,
        ("po",),
        subresources=("Bind", "Evict", "Logs", "Exec", "PortForward"),
        fields=_pod_fields(),
    ),
    Kind(
        "Service",
        "services",
        "",
        True,
        core_pb2.Service,
        core_pb2.ServiceList,
        core_pb2.ServiceWatchEvent,
        True,
        ("svc",),
        fields={"spec.clusterIP": lambda o: o.spec.cluster_ip, "spec.type": lambda o: o.spec.type},
    ),
    Kind(
        "Endpoints",
        "endpoints",
        "",
        True,
        core_pb2.Endpoints,
        core_pb2.EndpointsList,
        core_pb2.EndpointsWatchEvent,
        False,
        ("ep",),
    ),
    Kind(
        "ConfigMap",
        "configmaps",
        "",
        True,
        core_pb2.ConfigMap,
        core_pb2.ConfigMapList,
        core_pb2.ConfigMapWatchEvent,
        False,
        ("cm",),
    ),
    Kind(
        "Secret",
        "secrets",
        "",
        True,
        core_pb2.Secret,
        core_pb2.SecretList,
        core_pb2.SecretWatchEvent,
        False,
        fields={"type": lambda o: o.type},
    ),
    Kind(
        "ServiceAccount",
        "serviceaccounts",
        "",
        True,
        core_pb2.ServiceAccount,
        core_pb2.ServiceAccountList,
        core_pb2.ServiceAccountWatchEvent,
        False,
        ("sa",),
    ),
    Kind(
        "Event",
        "events",
        "",
        True,
        core_pb2.Event,
        core_pb2.EventList,
        core_pb2.EventWatchEvent,
        False,
        ("ev",),
        fields=_event_fields(),
        ttl_seconds=3600,
    ),
    Kind(
        "PersistentVolume",
        "persistentvolumes",
        "",
        False,
        core_pb2.PersistentVolume,
        core_pb2.PersistentVolumeList,
        core_pb2.PersistentVolumeWatchEvent,
        True,
        ("pv",),
        fields={"status.phase": lambda o: o.status.phase},
    ),
    Kind(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "",
        True,
        core_pb2.PersistentVolumeClaim,
        core_pb2.PersistentVolumeClaimList,
        core_pb2.PersistentVolumeClaimWatchEvent,
        True,
        ("pvc",),
        fields={"status.phase": lambda o: o.status.phase},
    ),
    Kind(
        "ResourceQuota",
        "resourcequotas",
        "",
        True,
        core_pb2.ResourceQuota,
        core_pb2.ResourceQuotaList,
        core_pb2.ResourceQuotaWatchEvent,
        True,
        ("quota",),
    ),
    Kind(
        "LimitRange",
        "limitranges",
        "",
        True,
        core_pb2.LimitRange,
        core_pb2.LimitRangeList,
        core_pb2.LimitRangeWatchEvent,
        False,
        ("limits",),
    ),
    Kind(
        "ReplicationController",
        "replicationcontrollers",
        "",
        True,
        core_pb2.ReplicationController,
        core_pb2.ReplicationControllerList,
        core_pb2.ReplicationControllerWatchEvent,
        True,
        ("rc",),
        subresources=("Scale",),
    ),
    Kind(
        "ReplicaSet",
        "replicasets",
        "apps",
        True,
        apps_pb2.ReplicaSet,
        apps_pb2.ReplicaSetList,
        apps_pb2.ReplicaSetWatchEvent,
        True,
        ("rs",),
        subresources=("Scale",),
    ),
    Kind(
        "Deployment",
        "deployments",
        "apps",
        True,
        apps_pb2.Deployment,
        apps_pb2.DeploymentList,
        apps_pb2.DeploymentWatchEvent,
        True,
        ("deploy",),
        subresources=("Scale",),
    ),
    Kind(
        "DaemonSet",
        "daemonsets",
        "apps",
        True,
        apps_pb2.DaemonSet,
        apps_pb2.DaemonSetList,
        apps_pb2.DaemonSetWatchEvent,
        True,
        ("ds",),
    ),
    Kind(
        "StatefulSet",
        "statefulsets",
        "apps",
        True,
        apps_pb2.StatefulSet,
        apps_pb2.StatefulSetList,
        apps_pb2.StatefulSetWatchEvent,
        True,
        ("sts",),
        subresources=("Scale",),
    ),
    Kind(
        "ControllerRevision",
        "controllerrevisions",
        "apps",
        True,
        apps_pb2.ControllerRevision,
        apps_pb2.ControllerRevisionList,
        apps_pb2.ControllerRevisionWatchEvent,
        False,
    ),
    Kind(
        "Job",
        "jobs",
        "batch",
        True,
        batch_pb2.Job,
        batch_pb2.JobList,
        batch_pb2.JobWatchEvent,
        True,
        fields={"status.successful": lambda o: _str(o.status.succeeded)},
    ),
    Kind(
        "CronJob",
        "cronjobs",
        "batch",
        True,
        batch_pb2.CronJob,
        batch_pb2.CronJobList,
        batch_pb2.CronJobWatchEvent,
        True,
        ("cj",),
    ),
    Kind(
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "autoscaling",
        True,
        autoscaling_pb2.HorizontalPodAutoscaler,
        autoscaling_pb2.HorizontalPodAutoscalerList,
        autoscaling_pb2.HorizontalPodAutoscalerWatchEvent,
        True,
        ("hpa",),
    ),
    Kind(
        "Lease",
        "leases",
        "coordination.k8s.io",
        True,
        coordination_pb2.Lease,
        coordination_pb2.LeaseList,
        coordination_pb2.LeaseWatchEvent,
        False,
    ),
    Kind(
        "StorageClass",
        "storageclasses",
        "storage.k8s.io",
        False,
        storage_pb2.StorageClass,
        storage_pb2.StorageClassList,
        storage_pb2.StorageClassWatchEvent,
        False,
        ("sc",),
    ),
)

# Kubernetes API group names that older manifests use for the same kinds.
LEGACY_GROUPS: dict[str, str] = {"extensions": "apps"}

_BY_KIND = {k.kind: k for k in KINDS}
_BY_NAME: dict[str, Kind] = {}
for _k in KINDS:
    for _name in (_k.kind.lower(), _k.plural, _k.singular, _k.resource, *_k.short_names):
        _BY_NAME.setdefault(_name, _k)


def by_kind(kind: str) -> Kind:
    """The row for a Kind name ("Pod"); KeyError if capstan does not serve it."""
    return _BY_KIND[kind]


def lookup(name: str) -> Kind | None:
    """Resolve what a user typed: plural, singular, short name or group-qualified plural."""
    return _BY_NAME.get(name.lower())


def by_message(message: type[Message] | Message) -> Kind:
    full = message.DESCRIPTOR.full_name
    for k in KINDS:
        if k.message.DESCRIPTOR.full_name == full:
            return k
    raise KeyError(full)


def all_kinds() -> Iterator[Kind]:
    return iter(KINDS)

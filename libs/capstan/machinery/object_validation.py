"""The one entry point the apiserver calls to validate a write: metadata rules for every kind,
then the kind's own rules, looked up in a table keyed by kind name.

Create: `validate_object(kind, obj, None)`. Update: `validate_object(kind, obj, stored)`, which
adds immutability checks. UpdateStatus: `validate_status_update(kind, obj, stored)`. Call them
after `capstan.machinery.defaulting.default_object`, as Kubernetes validates defaulted objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from capstan.api.apps.v1 import apps_pb2
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.coordination.v1 import coordination_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.api.storage.v1 import storage_pb2
from capstan.machinery import kinds
from capstan.machinery import validate_apps as apps
from capstan.machinery import validate_batch as batch
from capstan.machinery import validate_core as core
from capstan.machinery import validate_other as other
from capstan.machinery import validate_pod as pod
from capstan.machinery.validate_meta import (
    Errors,
    NameFunc,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_object_meta,
    validate_object_meta_update,
)
from capstan.machinery.violations import FieldViolation

M = TypeVar("M", bound=Message)
_Check = Callable[[Any, Any], Errors]


@dataclass(frozen=True, slots=True)
class _Rules:
    message: type[Message]
    # (obj, old or None) -> violations of the kind's own fields.
    validate: _Check
    # (new, old) -> violations of a status write; metadata is always checked.
    status: _Check | None = None
    name: NameFunc = name_is_dns_subdomain


def _rules(
    message: type[M],
    validate: Callable[[M, M | None], Errors],
    status: Callable[[M, M], Errors] | None = None,
    name: NameFunc = name_is_dns_subdomain,
) -> _Rules:
    return _Rules(message, validate, status, name)


_RULES: dict[str, _Rules] = {
    "Namespace": _rules(
        core_pb2.Namespace,
        core.validate_namespace,
        core.validate_namespace_status,
        name_is_dns_label,
    ),
    "Node": _rules(core_pb2.Node, core.validate_node, core.validate_node_status),
    "Pod": _rules(core_pb2.Pod, pod.validate_pod, pod.validate_pod_status),
    "Service": _rules(
        core_pb2.Service, core.validate_service, core.validate_service_status, name_is_dns1035_label
    ),
    "Endpoints": _rules(core_pb2.Endpoints, core.validate_endpoints),
    "ConfigMap": _rules(core_pb2.ConfigMap, core.validate_config_map),
    "Secret": _rules(core_pb2.Secret, core.validate_secret),
    "ServiceAccount": _rules(core_pb2.ServiceAccount, core.validate_service_account),
    "Event": _rules(core_pb2.Event, core.validate_event),
    "PersistentVolume": _rules(
        core_pb2.PersistentVolume, core.validate_persistent_volume, core.validate_pv_status
    ),
    "PersistentVolumeClaim": _rules(
        core_pb2.PersistentVolumeClaim,
        core.validate_persistent_volume_claim,
        core.validate_pvc_status,
    ),
    "ResourceQuota": _rules(
        core_pb2.ResourceQuota, core.validate_resource_quota, core.validate_resource_quota_status
    ),
    "LimitRange": _rules(core_pb2.LimitRange, core.validate_limit_range),
    "ReplicationController": _rules(
        core_pb2.ReplicationController,
        apps.validate_replication_controller,
        apps.validate_replication_controller_status,
    ),
    "ReplicaSet": _rules(
        apps_pb2.ReplicaSet, apps.validate_replica_set, apps.validate_replica_set_status
    ),
    "Deployment": _rules(
        apps_pb2.Deployment, apps.validate_deployment, apps.validate_deployment_status
    ),
    "DaemonSet": _rules(
        apps_pb2.DaemonSet, apps.validate_daemon_set, apps.validate_daemon_set_status
    ),
    "StatefulSet": _rules(
        apps_pb2.StatefulSet, apps.validate_stateful_set, apps.validate_stateful_set_status
    ),
    "ControllerRevision": _rules(apps_pb2.ControllerRevision, apps.validate_controller_revision),
    "Job": _rules(batch_pb2.Job, batch.validate_job, batch.validate_job_status),
    "CronJob": _rules(batch_pb2.CronJob, batch.validate_cron_job, batch.validate_cron_job_status),
    "HorizontalPodAutoscaler": _rules(
        autoscaling_pb2.HorizontalPodAutoscaler,
        other.validate_horizontal_pod_autoscaler,
        other.validate_horizontal_pod_autoscaler_status,
    ),
    "Lease": _rules(coordination_pb2.Lease, other.validate_lease),
    "StorageClass": _rules(storage_pb2.StorageClass, other.validate_storage_class),
}

# Kinds served by capstan's protos but absent from the kind table keep their Kubernetes scope.
_EXTRA_SCOPE = {"ReplicationController": True}


def _namespaced(kind: str) -> bool:
    try:
        return kinds.by_kind(kind).namespaced
    except KeyError:
        return _EXTRA_SCOPE[kind]


def _lookup(kind: str, obj: Message, old: Message | None) -> _Rules:
    rules = _RULES.get(kind)
    if rules is None:
        raise KeyError(f"no validation rules for kind {kind!r}")
    for value in (obj, old):
        if value is not None and not isinstance(value, rules.message):
            raise TypeError(
                f"{kind}: expected {rules.message.DESCRIPTOR.full_name}, "
                f"got {value.DESCRIPTOR.full_name}"
            )
    return rules


def _metadata(obj: Message) -> meta_pb2.ObjectMeta:
    meta = getattr(obj, "metadata")  # noqa: B009 - every kind's first field
    assert isinstance(meta, meta_pb2.ObjectMeta)
    return meta


def validate_object(kind: str, obj: Message, old: Message | None) -> list[FieldViolation]:
    """All violations of a create (old None) or an update (old = the stored object)."""
    rules = _lookup(kind, obj, old)
    meta = _metadata(obj)
    if old is None:
        out = validate_object_meta(meta, _namespaced(kind), rules.name)
    else:
        out = validate_object_meta_update(meta, _metadata(old))
    out.extend(rules.validate(obj, old))
    return out


def validate_status_update(kind: str, new: Message, old: Message) -> list[FieldViolation]:
    """Violations of a status write: immutable metadata plus the status' enums and counts."""
    rules = _lookup(kind, new, old)
    out = validate_object_meta_update(_metadata(new), _metadata(old))
    if rules.status is not None:
        out.extend(rules.status(new, old))
    return out


def supported_kinds() -> frozenset[str]:
    return frozenset(_RULES)


__all__ = ["supported_kinds", "validate_object", "validate_status_update"]

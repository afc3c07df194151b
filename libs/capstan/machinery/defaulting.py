"""Kubernetes' defaulting (the SetDefaults_* functions of k8s.io/kubernetes/pkg/apis/*/v1),
applied in place to a capstan object before validation.

One function per kind, registered in `_DEFAULTERS`; the PodSpec/Container/Probe/Volume helpers
are shared by every kind that embeds a pod template. Defaults are only filled where a field is
unset (proto3 `optional` fields tell unset from zero), so defaulting an already-defaulted
object changes nothing and the apiserver may run it on every write, create and update alike.

Create-only steps that need server-assigned values are separate: `default_job_selector` needs
the Job's uid, so the apiserver calls it after assigning the uid (see its docstring).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from typing import Any, Final

from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Value

from capstan.api.apps.v1 import apps_pb2
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.storage.v1 import storage_pb2
from capstan.machinery.validate_batch import (
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
)

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: Final = 30
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
DEFAULT_FILE_MODE: Final = 0o644  # 420, the "defaultMode: 420" users see in manifests
DEFAULT_CLIENT_IP_AFFINITY_SECONDS: Final = 10800
DEFAULT_TOKEN_EXPIRATION_SECONDS: Final = 3600
NAMESPACE_FINALIZER: Final = "kubernetes"


# ---------------------------------------------------------------------------------------------
# Pods and pod templates


@functools.lru_cache(maxsize=1024)  # every pod of a workload carries the same images
def image_tag(image: str) -> str:
    """The tag Kubernetes' ParseImageName sees: "latest" when neither tag nor digest is given."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if not tag and not digest:
        return "latest"
    return tag


def _default_http_get(action: core_pb2.HTTPGetAction) -> None:
    if not action.path:
        action.path = "/"
    if not action.scheme:
        action.scheme = "HTTP"


def _default_probe(probe: core_pb2.Probe) -> None:
    # Kubernetes treats 0 as unset for these (Go has no presence), so do we.
    if not probe.timeout_seconds:
        probe.timeout_seconds = 1
    if not probe.period_seconds:
        probe.period_seconds = 10
    if not probe.success_threshold:
        probe.success_threshold = 1
    if not probe.failure_threshold:
        probe.failure_threshold = 3
    if probe.HasField("http_get"):
        _default_http_get(probe.http_get)
    if probe.HasField("grpc") and not probe.grpc.HasField("service"):
        probe.grpc.service = ""


def _default_container(ctr: core_pb2.Container) -> None:
    if not ctr.image_pull_policy:
        ctr.image_pull_policy = "Always" if image_tag(ctr.image) == "latest" else "IfNotPresent"
    if not ctr.termination_message_path:
        ctr.termination_message_path = TERMINATION_MESSAGE_PATH
    if not ctr.termination_message_policy:
        ctr.termination_message_policy = "File"
    for port in ctr.ports:
        if not port.protocol:
            port.protocol = "TCP"
    for var in ctr.env:
        if var.HasField("value_from") and var.value_from.HasField("field_ref"):
            ref = var.value_from.field_ref
            if not ref.api_version:
                ref.api_version = "v1"
    if ctr.HasField("liveness_probe"):
        _default_probe(ctr.liveness_probe)
    if ctr.HasField("readiness_probe"):
        _default_probe(ctr.readiness_probe)
    if ctr.HasField("startup_probe"):
        _default_probe(ctr.startup_probe)
    if ctr.HasField("lifecycle"):
        for handler in (ctr.lifecycle.post_start, ctr.lifecycle.pre_stop):
            if handler.HasField("http_get"):
                _default_http_get(handler.http_get)


def _default_downward_items(items: Any) -> None:
    for item in items:
        if item.HasField("field_ref") and not item.field_ref.api_version:
            item.field_ref.api_version = "v1"


def _default_volume(vol: core_pb2.Volume) -> None:
    source = vol.WhichOneof("source")
    if source is None:
        vol.empty_dir.SetInParent()  # a volume with no source is an emptyDir
    elif source in ("config_map", "secret", "downward_api", "projected"):
        src = getattr(vol, source)
        if not src.HasField("default_mode"):
            src.default_mode = DEFAULT_FILE_MODE
        if source == "downward_api":
            _default_downward_items(vol.downward_api.items)
        if source == "projected":
            for proj in vol.projected.sources:
                if proj.HasField("service_account_token"):
                    token = proj.service_account_token
                    if not token.HasField("expiration_seconds"):
                        token.expiration_seconds = DEFAULT_TOKEN_EXPIRATION_SECONDS
                if proj.HasField("downward_api"):
                    _default_downward_items(proj.downward_api.items)
    elif source == "host_path" and not vol.host_path.HasField("type"):
        vol.host_path.type = ""


def _default_host_network_ports(containers: Any) -> None:
    for ctr in containers:
        for port in ctr.ports:
            if port.host_port == 0:
                port.host_port = port.container_port


def default_pod_spec(spec: core_pb2.PodSpec) -> None:
    """SetDefaults_PodSpec and everything nested in it; shared by pods and pod templates."""
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.restart_policy:
        spec.restart_policy = "Always"
    if spec.host_network:
        _default_host_network_ports(spec.containers)
        _default_host_network_ports(spec.init_containers)
    spec.security_context.SetInParent()
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    if not spec.scheduler_name:
        spec.scheduler_name = DEFAULT_SCHEDULER_NAME
    if spec.service_account and not spec.service_account_name:
        spec.service_account_name = spec.service_account  # the deprecated alias
    for ctr in spec.init_containers:
        _default_container(ctr)
    for ctr in spec.containers:
        _default_container(ctr)
    for vol in spec.volumes:
        _default_volume(vol)


def default_pod_template(template: core_pb2.PodTemplateSpec) -> None:
    default_pod_spec(template.spec)


def _requests_from_limits(containers: Any) -> None:
    for ctr in containers:
        resources = ctr.resources
        limits = resources.limits
        if not limits:
            continue
        requests = resources.requests
        # Keys, not items(): a proto map's items() is the slow generic Mapping view.
        for name in limits:
            if name not in requests:
                requests[name] = limits[name]


def _default_pod(pod: core_pb2.Pod) -> None:
    spec = pod.spec
    default_pod_spec(spec)
    # Pod-only (not templates), as in Kubernetes' SetDefaults_Pod.
    _requests_from_limits(spec.containers)
    _requests_from_limits(spec.init_containers)
    if not spec.HasField("enable_service_links"):
        spec.enable_service_links = True


# ---------------------------------------------------------------------------------------------
# Other core kinds


def _default_service(svc: core_pb2.Service) -> None:
    spec = svc.spec
    if not spec.session_affinity:
        spec.session_affinity = "None"
    if spec.session_affinity == "None":
        spec.ClearField("session_affinity_config")
    elif spec.session_affinity == "ClientIP":
        client_ip = spec.session_affinity_config.client_ip
        if not client_ip.HasField("timeout_seconds"):
            client_ip.timeout_seconds = DEFAULT_CLIENT_IP_AFFINITY_SECONDS
    if not spec.type:
        spec.type = "ClusterIP"
    for port in spec.ports:
        if not port.protocol:
            port.protocol = "TCP"
        kind = port.target_port.WhichOneof("kind")
        if (
            kind is None
            or kind == "null_value"
            or (kind == "number_value" and port.target_port.number_value == 0)
            or (kind == "string_value" and not port.target_port.string_value)
        ):
            port.target_port.CopyFrom(Value(number_value=float(port.port)))
    if spec.type in ("NodePort", "LoadBalancer") and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    if spec.type != "ExternalName":
        if not spec.HasField("internal_traffic_policy"):
            spec.internal_traffic_policy = "Cluster"
        _default_cluster_ips(spec)
    if spec.type == "LoadBalancer" and not spec.HasField("allocate_load_balancer_node_ports"):
        spec.allocate_load_balancer_node_ports = True


def _default_cluster_ips(spec: core_pb2.ServiceSpec) -> None:
    """clusterIP and clusterIPs mirror each other; a single-stack service gets one family.

    Kubernetes does this in the service registry at allocation time; doing it here lets the
    apiserver allocate first (setting clusterIP) and default afterwards with the same result.
    """
    if spec.cluster_ip and not spec.cluster_ips:
        spec.cluster_ips.append(spec.cluster_ip)
    elif spec.cluster_ips and not spec.cluster_ip:
        spec.cluster_ip = spec.cluster_ips[0]
    if not spec.HasField("ip_family_policy"):
        spec.ip_family_policy = "SingleStack"
    if not spec.ip_families:
        spec.ip_families.append("IPv6" if ":" in spec.cluster_ip else "IPv4")


def _default_endpoints(ep: core_pb2.Endpoints) -> None:
    for subset in ep.subsets:
        for port in subset.ports:
            if not port.protocol:
                port.protocol = "TCP"


def _default_secret(secret: core_pb2.Secret) -> None:
    if not secret.type:
        secret.type = "Opaque"
    # stringData is a write-only convenience: merged into data (winning) and never stored.
    for k, v in secret.string_data.items():
        secret.data[k] = v.encode("utf-8")
    secret.ClearField("string_data")


def _default_namespace(ns: core_pb2.Namespace) -> None:
    # The namespace controller removes "kubernetes" once deletion started; never re-add it then.
    if (
        not ns.metadata.HasField("deletion_timestamp")
        and NAMESPACE_FINALIZER not in ns.spec.finalizers
    ):
        ns.spec.finalizers.append(NAMESPACE_FINALIZER)


def _default_node(node: core_pb2.Node) -> None:
    spec = node.spec
    if spec.pod_cidr and not spec.pod_cidrs:
        spec.pod_cidrs.append(spec.pod_cidr)
    elif spec.pod_cidrs and not spec.pod_cidr:
        spec.pod_cidr = spec.pod_cidrs[0]
    status = node.status
    if status.capacity and not status.allocatable:
        status.allocatable.update(status.capacity)


def _default_pv(pv: core_pb2.PersistentVolume) -> None:
    spec = pv.spec
    if not spec.persistent_volume_reclaim_policy:
        spec.persistent_volume_reclaim_policy = "Retain"
    if not spec.HasField("volume_mode"):
        spec.volume_mode = "Filesystem"
    if not pv.status.phase:
        pv.status.phase = "Pending"


def _default_pvc_spec(spec: core_pb2.PersistentVolumeClaimSpec) -> None:
    if not spec.HasField("volume_mode"):
        spec.volume_mode = "Filesystem"


def _default_pvc(pvc: core_pb2.PersistentVolumeClaim) -> None:
    _default_pvc_spec(pvc.spec)
    if not pvc.status.phase:
        pvc.status.phase = "Pending"


def _fill(target: MutableMapping[str, str], source: MutableMapping[str, str]) -> None:
    for k, v in source.items():
        target.setdefault(k, v)


def _default_limit_range(lr: core_pb2.LimitRange) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit comes from max, its
    default request from the default limit, then from min."""
    for item in lr.spec.limits:
        if item.type != "Container":
            continue
        _fill(item.default, item.max)
        _fill(item.default_request, item.default)
        _fill(item.default_request, item.min)


def _default_replication_controller(rc: core_pb2.ReplicationController) -> None:
    spec = rc.spec
    if spec.HasField("template"):
        labels = spec.template.metadata.labels
        if not spec.selector:
            spec.selector.update(labels)
        if not rc.metadata.labels:
            rc.metadata.labels.update(labels)
        default_pod_template(spec.template)
    if not spec.HasField("replicas"):
        spec.replicas = 1


# ---------------------------------------------------------------------------------------------
# apps/v1


def _percent(text: str) -> Value:
    return Value(string_value=text)


def _number(n: int) -> Value:
    return Value(number_value=float(n))


def _unset(v: Value) -> bool:
    kind = v.WhichOneof("kind")
    return kind is None or kind == "null_value"


def _default_replica_set(rs: apps_pb2.ReplicaSet) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    default_pod_template(rs.spec.template)


def _default_deployment(dep: apps_pb2.Deployment) -> None:
    spec = dep.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    strategy = spec.strategy
    if not strategy.type:
        strategy.type = "RollingUpdate"
    if strategy.type == "RollingUpdate":
        ru = strategy.rolling_update
        if _unset(ru.max_unavailable):
            ru.max_unavailable.CopyFrom(_percent("25%"))
        if _unset(ru.max_surge):
            ru.max_surge.CopyFrom(_percent("25%"))
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    if not spec.HasField("progress_deadline_seconds"):
        spec.progress_deadline_seconds = 600
    default_pod_template(spec.template)


def _default_daemon_set(ds: apps_pb2.DaemonSet) -> None:
    spec = ds.spec
    strategy = spec.update_strategy
    if not strategy.type:
        strategy.type = "RollingUpdate"
    if strategy.type == "RollingUpdate":
        ru = strategy.rolling_update
        if _unset(ru.max_unavailable):
            ru.max_unavailable.CopyFrom(_number(1))
        if _unset(ru.max_surge):
            ru.max_surge.CopyFrom(_number(0))
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    default_pod_template(spec.template)


def _default_stateful_set(sts: apps_pb2.StatefulSet) -> None:
    spec = sts.spec
    if not spec.pod_management_policy:
        spec.pod_management_policy = "OrderedReady"
    strategy = spec.update_strategy
    if not strategy.type:
        strategy.type = "RollingUpdate"
        strategy.rolling_update.SetInParent()
    if (
        strategy.type == "RollingUpdate"
        and strategy.HasField("rolling_update")
        and not strategy.rolling_update.HasField("partition")
    ):
        strategy.rolling_update.partition = 0
    policy = spec.persistent_volume_claim_retention_policy
    if not policy.when_deleted:
        policy.when_deleted = "Retain"
    if not policy.when_scaled:
        policy.when_scaled = "Retain"
    if not spec.HasField("replicas"):
        spec.replicas = 1
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    for claim in spec.volume_claim_templates:
        _default_pvc_spec(claim.spec)
    default_pod_template(spec.template)


# ---------------------------------------------------------------------------------------------
# batch/v1


def _default_job_spec_template(spec: batch_pb2.JobSpec) -> None:
    default_pod_template(spec.template)


def _default_job(job: batch_pb2.Job) -> None:
    spec = job.spec
    # Both unset: a single pod. Only parallelism set: a work queue (completions stay unset).
    if not spec.HasField("completions") and not spec.HasField("parallelism"):
        spec.completions = 1
        spec.parallelism = 1
    if not spec.HasField("parallelism"):
        spec.parallelism = 1
    if not spec.HasField("backoff_limit"):
        spec.backoff_limit = 6
    labels = spec.template.metadata.labels
    if labels and not job.metadata.labels:
        job.metadata.labels.update(labels)
    if not spec.HasField("completion_mode"):
        spec.completion_mode = "NonIndexed"
    if not spec.HasField("suspend"):
        spec.suspend = False
    if job.metadata.uid:
        default_job_selector(job)
    _default_job_spec_template(spec)


def default_job_selector(job: batch_pb2.Job) -> None:
    """Kubernetes' generateSelector, run on create once the uid is known.

    Unless spec.manualSelector is true, labels the pod template with the Job's uid and name
    (both the batch.kubernetes.io/ and the legacy spellings) and selects on
    batch.kubernetes.io/controller-uid. Labels the user already set are kept (validation then
    reports a conflict). The apiserver calls this after assigning metadata.uid and the final
    name, before validation; `default_object` also calls it when the uid is already set, and it
    is idempotent.
    """
    spec = job.spec
    if spec.HasField("manual_selector") and spec.manual_selector:
        return
    uid, name = job.metadata.uid, job.metadata.name
    labels = spec.template.metadata.labels
    for label in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        if label not in labels:
            labels[label] = name
    for label in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        if label not in labels:
            labels[label] = uid
    match_labels = spec.selector.match_labels
    if CONTROLLER_UID_LABEL not in match_labels:
        match_labels[CONTROLLER_UID_LABEL] = uid


def _default_cron_job(cj: batch_pb2.CronJob) -> None:
    spec = cj.spec
    if not spec.concurrency_policy:
        spec.concurrency_policy = "Allow"
    if not spec.HasField("suspend"):
        spec.suspend = False
    if not spec.HasField("successful_jobs_history_limit"):
        spec.successful_jobs_history_limit = 3
    if not spec.HasField("failed_jobs_history_limit"):
        spec.failed_jobs_history_limit = 1
    _default_job_spec_template(spec.job_template.spec)


# ---------------------------------------------------------------------------------------------
# Other groups


def _default_hpa(hpa: autoscaling_pb2.HorizontalPodAutoscaler) -> None:
    # targetCPUUtilizationPercentage stays unset: the controller then targets 80%.
    if not hpa.spec.HasField("min_replicas"):
        hpa.spec.min_replicas = 1


def _default_storage_class(sc: storage_pb2.StorageClass) -> None:
    if not sc.HasField("reclaim_policy"):
        sc.reclaim_policy = "Delete"
    if not sc.HasField("volume_binding_mode"):
        sc.volume_binding_mode = "Immediate"


_DEFAULTERS: dict[str, tuple[type[Message], Callable[[Any], None]]] = {
    "Pod": (core_pb2.Pod, _default_pod),
    "Service": (core_pb2.Service, _default_service),
    "Endpoints": (core_pb2.Endpoints, _default_endpoints),
    "Secret": (core_pb2.Secret, _default_secret),
    "Namespace": (core_pb2.Namespace, _default_namespace),
    "Node": (core_pb2.Node, _default_node),
    "PersistentVolume": (core_pb2.PersistentVolume, _default_pv),
    "PersistentVolumeClaim": (core_pb2.PersistentVolumeClaim, _default_pvc),
    "LimitRange": (core_pb2.LimitRange, _default_limit_range),
    "ReplicationController": (core_pb2.ReplicationController, _default_replication_controller),
    "ReplicaSet": (apps_pb2.ReplicaSet, _default_replica_set),
    "Deployment": (apps_pb2.Deployment, _default_deployment),
    "DaemonSet": (apps_pb2.DaemonSet, _default_daemon_set),
    "StatefulSet": (apps_pb2.StatefulSet, _default_stateful_set),
    "Job": (batch_pb2.Job, _default_job),
    "CronJob": (batch_pb2.CronJob, _default_cron_job),
    "HorizontalPodAutoscaler": (autoscaling_pb2.HorizontalPodAutoscaler, _default_hpa),
    "StorageClass": (storage_pb2.StorageClass, _default_storage_class),
}


def default_object(kind: str, obj: Message) -> None:
    """Fill Kubernetes' defaults into `obj` in place. Kinds with no defaults are left alone."""
    entry = _DEFAULTERS.get(kind)
    if entry is None:
        return
    message, defaulter = entry
    if not isinstance(obj, message):
        raise TypeError(
            f"{kind}: expected {message.DESCRIPTOR.full_name}, got {obj.DESCRIPTOR.full_name}"
        )
    defaulter(obj)

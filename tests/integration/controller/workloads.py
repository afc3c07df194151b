"""Object builders for the workload tests."""

from __future__ import annotations

from capstan.api.apps.v1 import apps_pb2
from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from google.protobuf.struct_pb2 import Value


def template(app: str, image: str = "busybox:1") -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.metadata.labels["app"] = app
    t.spec.containers.add(name="main", image=image)
    return t


def replicaset(ns: str, name: str, replicas: int, app: str = "") -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.namespace, rs.metadata.name = ns, name
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = app or name
    rs.spec.template.CopyFrom(template(app or name))
    return rs


def intstr(v: int | str) -> Value:
    return Value(string_value=v) if isinstance(v, str) else Value(number_value=float(v))


def deployment(
    ns: str,
    name: str,
    replicas: int,
    *,
    image: str = "busybox:1",
    surge: int | str = "25%",
    unavailable: int | str = "25%",
    strategy: str = "RollingUpdate",
) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.namespace, d.metadata.name = ns, name
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    d.spec.template.CopyFrom(template(name, image))
    d.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        d.spec.strategy.rolling_update.max_surge.CopyFrom(intstr(surge))
        d.spec.strategy.rolling_update.max_unavailable.CopyFrom(intstr(unavailable))
    return d


def job(
    ns: str, name: str, *, completions: int | None, parallelism: int, restart: str = "Never"
) -> batch_pb2.Job:
    j = batch_pb2.Job()
    j.metadata.namespace, j.metadata.name = ns, name
    if completions is not None:
        j.spec.completions = completions
    j.spec.parallelism = parallelism
    j.spec.template.spec.containers.add(name="main", image="busybox:1")
    j.spec.template.spec.restart_policy = restart
    return j


def statefulset(
    ns: str, name: str, replicas: int, policy: str = "OrderedReady"
) -> apps_pb2.StatefulSet:
    s = apps_pb2.StatefulSet()
    s.metadata.namespace, s.metadata.name = ns, name
    s.spec.replicas = replicas
    s.spec.service_name = name
    s.spec.pod_management_policy = policy
    s.spec.selector.match_labels["app"] = name
    s.spec.template.CopyFrom(template(name))
    return s


def daemonset(ns: str, name: str, node_selector: dict[str, str]) -> apps_pb2.DaemonSet:
    ds = apps_pb2.DaemonSet()
    ds.metadata.namespace, ds.metadata.name = ns, name
    ds.spec.selector.match_labels["app"] = name
    ds.spec.template.CopyFrom(template(name))
    ds.spec.template.spec.node_selector.update(node_selector)
    return ds

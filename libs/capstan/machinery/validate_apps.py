"""Validation of the workload controllers: ReplicaSet, Deployment, DaemonSet, StatefulSet,
ControllerRevision (apps/v1) and the legacy ReplicationController.

Follows k8s.io/kubernetes/pkg/apis/apps/validation as served at apps/v1: a selector is
required, must be non-empty, must select the template's labels and never changes.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.struct_pb2 import Value

from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.machinery.intstr import (
    IntOrStringError,
    int_or_percent_within_100,
    resolve_int_or_percent,
    validate_int_or_percent,
    validate_not_more_than_100_percent,
)
from capstan.machinery.labels import SelectorError, selector_from_map, selector_from_proto
from capstan.machinery.validate_core import validate_pvc_spec
from capstan.machinery.validate_meta import (
    IS_NOT_POSITIVE,
    Errors,
    each_invalid,
    enum,
    has,
    immutable,
    invalid_raw,
    non_negative,
    render,
)
from capstan.machinery.validate_pod import (
    selector_matches_labels_error,
    validate_conditions,
    validate_pod_template_spec,
)
from capstan.machinery.validation import (
    child,
    forbidden,
    index,
    invalid,
    is_dns1123_subdomain,
    labels_ok,
    not_supported,
    required,
    validate_label_selector,
    validate_labels,
)
from capstan.machinery.violations import FieldViolation

DEPLOYMENT_STRATEGIES: Final = ("Recreate", "RollingUpdate")
DAEMONSET_STRATEGIES: Final = ("RollingUpdate", "OnDelete")
POD_MANAGEMENT_POLICIES: Final = ("OrderedReady", "Parallel")
PVC_RETENTION_POLICIES: Final = ("Retain", "Delete")
STATEFULSET_UPDATE_FORBIDDEN: Final = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden"
)


def _int_or_percent_value(v: Value) -> int:
    """Kubernetes' getIntOrPercentValue: the number, or the percentage's number."""
    try:
        return resolve_int_or_percent(v, 100, round_up=False) if v.WhichOneof("kind") else 0
    except IntOrStringError:
        return 0


def _selector_and_template(
    selector: meta_pb2.LabelSelector | None,
    template: core_pb2.PodTemplateSpec,
    what: str,
    path: str,
    *,
    restart_always: bool = True,
) -> Errors:
    """Selector required, non-empty, valid and matching the template; template a PodSpec."""
    out: Errors = []
    sel_path = child(path, "selector")
    if selector is None:
        out.append(required(sel_path))
    elif _equality_selector_ok(selector):
        # The usual selector: valid matchLabels only, so matching is a subset test.
        labels, template_labels = selector.match_labels, template.metadata.labels
        for key in labels:
            if template_labels.get(key) != labels[key]:
                out.append(
                    selector_matches_labels_error(
                        child(path, "template.metadata.labels"), template_labels
                    )
                )
                break
    else:
        out.extend(validate_label_selector(selector, sel_path))
        if not selector.match_labels and not selector.match_expressions:
            out.append(invalid_raw(sel_path, "{}", f"empty selector is invalid for {what}"))
        else:
            try:
                parsed = selector_from_proto(selector)
            except SelectorError:
                out.append(invalid_raw(sel_path, render(selector), "invalid label selector"))
            else:
                if not parsed.matches(template.metadata.labels):
                    out.append(
                        selector_matches_labels_error(
                            child(path, "template.metadata.labels"), template.metadata.labels
                        )
                    )
    out.extend(_template(template, what, child(path, "template"), restart_always=restart_always))
    return out


def _equality_selector_ok(selector: meta_pb2.LabelSelector) -> bool:
    """Non-empty valid matchLabels and no matchExpressions: nothing for validation to report
    about the selector itself, and it parses to the equality requirements it spells."""
    labels = selector.match_labels
    return bool(labels) and not selector.match_expressions and labels_ok(labels)


def _template(
    template: core_pb2.PodTemplateSpec, what: str, path: str, *, restart_always: bool
) -> Errors:
    out = validate_pod_template_spec(template, path)
    spec_path = child(path, "spec")
    if restart_always and template.spec.restart_policy != "Always":
        out.append(
            not_supported(
                child(spec_path, "restartPolicy"), template.spec.restart_policy, ("Always",)
            )
        )
    if restart_always and template.spec.HasField("active_deadline_seconds"):
        out.append(
            forbidden(
                child(spec_path, "activeDeadlineSeconds"),
                f"activeDeadlineSeconds in {what} is not Supported",
            )
        )
    return out


def _selector_immutable(
    new: meta_pb2.LabelSelector, old: meta_pb2.LabelSelector, path: str
) -> Errors:
    return [] if new == old else [immutable(child(path, "selector"), new)]


def _optional_selector(spec: object) -> meta_pb2.LabelSelector | None:
    has = getattr(spec, "HasField")  # noqa: B009 - every apps spec has a `selector` message
    return getattr(spec, "selector") if has("selector") else None  # noqa: B009


# ---------------------------------------------------------------------------------------------
# ReplicaSet and ReplicationController


def validate_replica_set(rs: apps_pb2.ReplicaSet, old: apps_pb2.ReplicaSet | None) -> Errors:
    spec, path = rs.spec, "spec"
    out = non_negative(spec.replicas, child(path, "replicas"))
    out.extend(non_negative(spec.min_ready_seconds, child(path, "minReadySeconds")))
    out.extend(_selector_and_template(_optional_selector(spec), spec.template, "deployment", path))
    if old is not None:
        out.extend(_selector_immutable(spec.selector, old.spec.selector, path))
    return out


def validate_replication_controller(
    rc: core_pb2.ReplicationController, old: core_pb2.ReplicationController | None
) -> Errors:
    spec, path = rc.spec, "spec"
    out = non_negative(spec.min_ready_seconds, child(path, "minReadySeconds"))
    sel_path = child(path, "selector")
    if not spec.selector:
        out.append(required(sel_path))
    else:
        out.extend(validate_labels(spec.selector, sel_path))
    out.extend(non_negative(spec.replicas, child(path, "replicas")))
    tpl_path = child(path, "template")
    if not spec.HasField("template"):
        out.append(required(tpl_path))
        return out
    if spec.selector:
        try:
            matches = selector_from_map(spec.selector).matches(spec.template.metadata.labels)
        except SelectorError:
            matches = True  # already reported as a bad label above
        if not matches:
            out.append(
                selector_matches_labels_error(
                    child(tpl_path, "metadata.labels"), spec.template.metadata.labels
                )
            )
    out.extend(_template(spec.template, "ReplicationController", tpl_path, restart_always=True))
    return out


def _replica_status(status: object, path: str, fields: tuple[tuple[str, str], ...]) -> Errors:
    out: Errors = []
    replicas: int = getattr(status, "replicas")  # noqa: B009
    for field, camel in fields:
        value: int = getattr(status, field)
        out.extend(non_negative(value, child(path, camel)))
        if camel != "replicas" and camel.endswith("Replicas") and value > replicas:
            out.append(invalid(child(path, camel), value, "cannot be greater than status.replicas"))
    out.extend(validate_conditions(getattr(status, "conditions"), child(path, "conditions")))  # noqa: B009
    return out


_RS_STATUS_FIELDS: Final = (
    ("replicas", "replicas"),
    ("fully_labeled_replicas", "fullyLabeledReplicas"),
    ("ready_replicas", "readyReplicas"),
    ("available_replicas", "availableReplicas"),
    ("observed_generation", "observedGeneration"),
)


def validate_replica_set_status(rs: apps_pb2.ReplicaSet, old: apps_pb2.ReplicaSet) -> Errors:
    out = _replica_status(rs.status, "status", _RS_STATUS_FIELDS)
    if rs.status.available_replicas > rs.status.ready_replicas:
        out.append(
            invalid(
                "status.availableReplicas",
                rs.status.available_replicas,
                "cannot be greater than readyReplicas",
            )
        )
    return out


def validate_replication_controller_status(
    rc: core_pb2.ReplicationController, old: core_pb2.ReplicationController
) -> Errors:
    return _replica_status(rc.status, "status", _RS_STATUS_FIELDS)


# ---------------------------------------------------------------------------------------------
# Deployment


def _deployment_strategy(strategy: apps_pb2.DeploymentStrategy, path: str) -> Errors:
    if strategy.type == "RollingUpdate" and strategy.HasField("rolling_update"):
        # The defaulted strategy (25%/25%): valid bounds, not both zero.
        ru = strategy.rolling_update
        unavailable = int_or_percent_within_100(ru.max_unavailable)
        surge = int_or_percent_within_100(ru.max_surge)
        if unavailable is not None and surge is not None and (unavailable or surge):
            return []
    ru_path = child(path, "rollingUpdate")
    if strategy.type == "Recreate":
        if strategy.HasField("rolling_update"):
            return [forbidden(ru_path, "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if strategy.type == "RollingUpdate":
        if not strategy.HasField("rolling_update"):
            return [required(ru_path, "this should be defaulted and never be nil")]
        ru = strategy.rolling_update
        mu_path, ms_path = child(ru_path, "maxUnavailable"), child(ru_path, "maxSurge")
        out = validate_int_or_percent(ru.max_unavailable, mu_path)
        out.extend(validate_int_or_percent(ru.max_surge, ms_path))
        if (
            _int_or_percent_value(ru.max_unavailable) == 0
            and _int_or_percent_value(ru.max_surge) == 0
        ):
            out.append(
                _bad_intstr(mu_path, ru.max_unavailable, "may not be 0 when `maxSurge` is 0")
            )
        out.extend(validate_not_more_than_100_percent(ru.max_unavailable, mu_path))
        return out
    return enum(strategy.type, DEPLOYMENT_STRATEGIES, child(path, "type"))


def _bad_intstr(path: str, v: Value, detail: str) -> FieldViolation:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return invalid(path, v.string_value, detail)
    if kind == "number_value":
        return invalid(path, v.number_value, detail)
    return invalid_raw(path, "null", detail)


def validate_deployment(dep: apps_pb2.Deployment, old: apps_pb2.Deployment | None) -> Errors:
    # Values first, paths only for what gets reported: this runs on every Deployment write.
    spec, path = dep.spec, "spec"
    out = non_negative(spec.replicas, child(path, "replicas")) if spec.replicas < 0 else []
    out.extend(_selector_and_template(_optional_selector(spec), spec.template, "deployment", path))
    out.extend(_deployment_strategy(spec.strategy, child(path, "strategy")))
    min_ready_seconds = spec.min_ready_seconds
    if min_ready_seconds < 0:
        out.extend(non_negative(min_ready_seconds, child(path, "minReadySeconds")))
    if spec.revision_history_limit < 0 and spec.HasField("revision_history_limit"):
        out.extend(non_negative(spec.revision_history_limit, child(path, "revisionHistoryLimit")))
    if spec.progress_deadline_seconds <= max(min_ready_seconds, 0) and spec.HasField(
        "progress_deadline_seconds"
    ):
        pds_path = child(path, "progressDeadlineSeconds")
        out.extend(non_negative(spec.progress_deadline_seconds, pds_path))
        if spec.progress_deadline_seconds <= spec.min_ready_seconds:
            out.append(
                invalid(
                    pds_path, spec.progress_deadline_seconds, "must be greater than minReadySeconds"
                )
            )
    if old is not None:
        out.extend(_selector_immutable(spec.selector, old.spec.selector, path))
    return out


def validate_deployment_status(dep: apps_pb2.Deployment, old: apps_pb2.Deployment) -> Errors:
    status = dep.status
    out = _replica_status(
        status,
        "status",
        (
            ("observed_generation", "observedGeneration"),
            ("replicas", "replicas"),
            ("updated_replicas", "updatedReplicas"),
            ("ready_replicas", "readyReplicas"),
            ("available_replicas", "availableReplicas"),
            ("unavailable_replicas", "unavailableReplicas"),
        ),
    )
    if status.HasField("collision_count"):
        out.extend(non_negative(status.collision_count, "status.collisionCount"))
        if (
            old.status.HasField("collision_count")
            and status.collision_count < old.status.collision_count
        ):
            out.append(
                invalid("status.collisionCount", status.collision_count, "cannot be decremented")
            )
    if status.available_replicas > status.ready_replicas:
        out.append(
            invalid(
                "status.availableReplicas",
                status.available_replicas,
                "cannot be greater than readyReplicas",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# DaemonSet


def _daemon_set_strategy(strategy: apps_pb2.DaemonSetUpdateStrategy, path: str) -> Errors:
    if strategy.type == "OnDelete":
        return []
    if strategy.type != "RollingUpdate":
        return enum(strategy.type, DAEMONSET_STRATEGIES, child(path, "type"))
    ru_path = child(path, "rollingUpdate")
    if not strategy.HasField("rolling_update"):
        return [required(ru_path)]
    ru = strategy.rolling_update
    mu_path, ms_path = child(ru_path, "maxUnavailable"), child(ru_path, "maxSurge")
    out = validate_int_or_percent(ru.max_unavailable, mu_path)
    out.extend(validate_int_or_percent(ru.max_surge, ms_path))
    out.extend(validate_not_more_than_100_percent(ru.max_unavailable, mu_path))
    out.extend(validate_not_more_than_100_percent(ru.max_surge, ms_path))
    has_unavailable = _int_or_percent_value(ru.max_unavailable) != 0
    has_surge = _int_or_percent_value(ru.max_surge) != 0
    if has_unavailable and has_surge:
        out.append(
            _bad_intstr(ms_path, ru.max_surge, "may not be set when maxUnavailable is non-zero")
        )
    elif not has_unavailable and not has_surge:
        out.append(_bad_intstr(mu_path, ru.max_unavailable, "cannot be 0 when maxSurge is 0"))
    return out


def validate_daemon_set(ds: apps_pb2.DaemonSet, old: apps_pb2.DaemonSet | None) -> Errors:
    spec, path = ds.spec, "spec"
    out = _selector_and_template(_optional_selector(spec), spec.template, "daemonset", path)
    out.extend(non_negative(spec.min_ready_seconds, child(path, "minReadySeconds")))
    out.extend(_daemon_set_strategy(spec.update_strategy, child(path, "updateStrategy")))
    if spec.HasField("revision_history_limit"):
        out.extend(non_negative(spec.revision_history_limit, child(path, "revisionHistoryLimit")))
    if old is not None:
        out.extend(_selector_immutable(spec.selector, old.spec.selector, path))
    return out


def validate_daemon_set_status(ds: apps_pb2.DaemonSet, old: apps_pb2.DaemonSet) -> Errors:
    status, path = ds.status, "status"
    out: Errors = []
    for field, camel in (
        ("current_number_scheduled", "currentNumberScheduled"),
        ("number_misscheduled", "numberMisscheduled"),
        ("desired_number_scheduled", "desiredNumberScheduled"),
        ("number_ready", "numberReady"),
        ("observed_generation", "observedGeneration"),
        ("updated_number_scheduled", "updatedNumberScheduled"),
        ("number_available", "numberAvailable"),
        ("number_unavailable", "numberUnavailable"),
    ):
        out.extend(non_negative(getattr(status, field), child(path, camel)))
    if status.HasField("collision_count"):
        out.extend(non_negative(status.collision_count, child(path, "collisionCount")))
    out.extend(validate_conditions(status.conditions, child(path, "conditions")))
    return out


# ---------------------------------------------------------------------------------------------
# StatefulSet


def _stateful_set_strategy(strategy: apps_pb2.StatefulSetUpdateStrategy, path: str) -> Errors:
    out: Errors = []
    ru_path = child(path, "rollingUpdate")
    if not strategy.type:
        out.append(required(path))
    elif strategy.type == "OnDelete":
        if strategy.HasField("rolling_update"):
            out.append(
                invalid_raw(
                    ru_path,
                    render(strategy.rolling_update),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
    elif strategy.type == "RollingUpdate":
        if strategy.HasField("rolling_update"):
            ru = strategy.rolling_update
            if ru.HasField("partition"):
                out.extend(non_negative(ru.partition, child(ru_path, "partition")))
            if ru.HasField("max_unavailable"):
                mu_path = child(ru_path, "maxUnavailable")
                out.extend(validate_int_or_percent(ru.max_unavailable, mu_path))
                if _int_or_percent_value(ru.max_unavailable) == 0:
                    out.append(_bad_intstr(mu_path, ru.max_unavailable, IS_NOT_POSITIVE))
                out.extend(validate_not_more_than_100_percent(ru.max_unavailable, mu_path))
    else:
        out.append(invalid_raw(path, render(strategy), "must be 'RollingUpdate' or 'OnDelete'"))
    return out


def _with_claim_volumes(spec: apps_pb2.StatefulSetSpec) -> core_pb2.PodTemplateSpec:
    """The template as the controller will stamp it: every volumeClaimTemplate becomes a
    persistentVolumeClaim volume of the pod, so a container may mount it by the claim's name
    (the union Kubernetes' own StatefulSet validation leaves as a TODO)."""
    names = {v.name for v in spec.template.spec.volumes}
    claims = [c.metadata.name for c in spec.volume_claim_templates]
    missing = [name for name in claims if name and name not in names]
    if not missing:
        return spec.template
    template = core_pb2.PodTemplateSpec()
    template.CopyFrom(spec.template)
    for name in dict.fromkeys(missing):
        volume = template.spec.volumes.add(name=name)
        volume.persistent_volume_claim.claim_name = name
    return template


def _stateful_set_spec(spec: apps_pb2.StatefulSetSpec, path: str) -> Errors:
    out: Errors = []
    pmp_path = child(path, "podManagementPolicy")
    if not spec.pod_management_policy:
        out.append(required(pmp_path))
    elif spec.pod_management_policy not in POD_MANAGEMENT_POLICIES:
        out.append(
            invalid(pmp_path, spec.pod_management_policy, "must be 'OrderedReady' or 'Parallel'")
        )
    out.extend(_stateful_set_strategy(spec.update_strategy, child(path, "updateStrategy")))
    if spec.HasField("persistent_volume_claim_retention_policy"):
        policy = spec.persistent_volume_claim_retention_policy
        policy_path = child(path, "persistentVolumeClaimRetentionPolicy")
        for field, camel in (("when_deleted", "whenDeleted"), ("when_scaled", "whenScaled")):
            out.extend(
                enum(getattr(policy, field), PVC_RETENTION_POLICIES, child(policy_path, camel))
            )
    out.extend(non_negative(spec.replicas, child(path, "replicas")))
    out.extend(non_negative(spec.min_ready_seconds, child(path, "minReadySeconds")))
    if spec.HasField("ordinals"):
        out.extend(non_negative(spec.ordinals.start, child(path, "ordinals.start")))
    if spec.HasField("revision_history_limit"):
        out.extend(non_negative(spec.revision_history_limit, child(path, "revisionHistoryLimit")))
    template = _with_claim_volumes(spec)
    out.extend(_selector_and_template(_optional_selector(spec), template, "statefulset", path))
    if spec.service_name:
        out.extend(
            each_invalid(
                is_dns1123_subdomain(spec.service_name),
                child(path, "serviceName"),
                spec.service_name,
            )
        )
    vct_path = child(path, "volumeClaimTemplates")
    names: set[str] = set()
    for i, claim in enumerate(spec.volume_claim_templates):
        p = index(vct_path, i)
        name_path = child(p, "metadata.name")
        if not claim.metadata.name:
            out.append(required(name_path))
        else:
            out.extend(
                each_invalid(
                    is_dns1123_subdomain(claim.metadata.name), name_path, claim.metadata.name
                )
            )
        if claim.metadata.name in names:
            out.append(invalid(name_path, claim.metadata.name, "must be unique"))
        names.add(claim.metadata.name)
        out.extend(validate_labels(claim.metadata.labels, child(p, "metadata.labels")))
        out.extend(validate_pvc_spec(claim.spec, child(p, "spec")))
    return out


def validate_stateful_set(sts: apps_pb2.StatefulSet, old: apps_pb2.StatefulSet | None) -> Errors:
    out = _stateful_set_spec(sts.spec, "spec")
    if old is not None:
        clone = apps_pb2.StatefulSetSpec()
        clone.CopyFrom(sts.spec)
        old_spec = old.spec
        for field in (
            "replicas",
            "template",
            "update_strategy",
            "min_ready_seconds",
            "ordinals",
            "revision_history_limit",
            "persistent_volume_claim_retention_policy",
        ):
            clone.ClearField(field)
            if field == "min_ready_seconds" or has(old_spec, field):
                value = getattr(old_spec, field)
                if isinstance(value, int):
                    setattr(clone, field, value)
                else:
                    getattr(clone, field).CopyFrom(value)
        if clone != old_spec:
            out.append(forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN))
    return out


def validate_stateful_set_status(sts: apps_pb2.StatefulSet, old: apps_pb2.StatefulSet) -> Errors:
    status = sts.status
    out = _replica_status(
        status,
        "status",
        (
            ("observed_generation", "observedGeneration"),
            ("replicas", "replicas"),
            ("ready_replicas", "readyReplicas"),
            ("current_replicas", "currentReplicas"),
            ("updated_replicas", "updatedReplicas"),
            ("available_replicas", "availableReplicas"),
        ),
    )
    if status.HasField("collision_count"):
        out.extend(non_negative(status.collision_count, "status.collisionCount"))
    return out


# ---------------------------------------------------------------------------------------------
# ControllerRevision


def validate_controller_revision(
    rev: apps_pb2.ControllerRevision, old: apps_pb2.ControllerRevision | None
) -> Errors:
    out = non_negative(rev.revision, "revision")
    if not rev.HasField("data"):
        out.append(required("data", "data is mandatory"))
    if old is not None and rev.data != old.data:
        out.append(immutable("data", rev.data))
    return out

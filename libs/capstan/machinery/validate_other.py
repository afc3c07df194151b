"""Validation of HorizontalPodAutoscaler (autoscaling/v1), Lease (coordination.k8s.io/v1)
and StorageClass (storage.k8s.io/v1), after their Kubernetes counterparts."""

from __future__ import annotations

from typing import Final

from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.api.coordination.v1 import coordination_pb2
from capstan.api.storage.v1 import storage_pb2
from capstan.machinery.validate_meta import (
    Errors,
    at_least,
    each_invalid,
    enum,
    immutable,
    maps_equal,
    non_negative,
)
from capstan.machinery.validate_pod import validate_conditions
from capstan.machinery.validation import (
    child,
    forbidden,
    index,
    invalid,
    is_label_value,
    is_qualified_name,
    required,
    too_long,
    validate_qualified_name,
)

SCALING_POLICY_TYPES: Final = ("Pods", "Percent")
SELECT_POLICIES: Final = ("Max", "Min", "Disabled")
MAX_PERIOD_SECONDS: Final = 1800
MAX_STABILIZATION_WINDOW_SECONDS: Final = 3600
SC_RECLAIM_POLICIES: Final = ("Delete", "Retain")
VOLUME_BINDING_MODES: Final = ("Immediate", "WaitForFirstConsumer")
MAX_PROVISIONER_PARAMETERS: Final = 512
MAX_PROVISIONER_PARAMETER_SIZE: Final = 256 * 1024


# ---------------------------------------------------------------------------------------------
# HorizontalPodAutoscaler


def _path_segment_name(value: str) -> list[str]:
    """Kubernetes' IsValidPathSegmentName: the name becomes part of a resource path."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _scaling_rules(rules: autoscaling_pb2.HPAScalingRules, path: str) -> Errors:
    out: Errors = []
    if rules.HasField("stabilization_window_seconds"):
        window = rules.stabilization_window_seconds
        sw_path = child(path, "stabilizationWindowSeconds")
        out.extend(non_negative(window, sw_path))
        if window > MAX_STABILIZATION_WINDOW_SECONDS:
            out.append(
                invalid(
                    sw_path,
                    window,
                    f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
                )
            )
    if rules.HasField("select_policy"):
        out.extend(enum(rules.select_policy, SELECT_POLICIES, child(path, "selectPolicy")))
    policies_path = child(path, "policies")
    if not rules.policies and not (
        rules.HasField("select_policy") and rules.select_policy == "Disabled"
    ):
        out.append(required(policies_path, "must specify at least one Policy"))
    for i, policy in enumerate(rules.policies):
        p = index(policies_path, i)
        out.extend(enum(policy.type, SCALING_POLICY_TYPES, child(p, "type")))
        if policy.value <= 0:
            out.append(invalid(child(p, "value"), policy.value, "must be greater than zero"))
        if policy.period_seconds <= 0:
            out.append(
                invalid(
                    child(p, "periodSeconds"), policy.period_seconds, "must be greater than zero"
                )
            )
        elif policy.period_seconds > MAX_PERIOD_SECONDS:
            out.append(
                invalid(
                    child(p, "periodSeconds"),
                    policy.period_seconds,
                    f"must be less than or equal to {MAX_PERIOD_SECONDS}",
                )
            )
    return out


def validate_horizontal_pod_autoscaler(
    hpa: autoscaling_pb2.HorizontalPodAutoscaler,
    old: autoscaling_pb2.HorizontalPodAutoscaler | None,
) -> Errors:
    spec, path = hpa.spec, "spec"
    out: Errors = []
    if spec.HasField("min_replicas"):
        out.extend(at_least(spec.min_replicas, 1, child(path, "minReplicas")))
    max_path = child(path, "maxReplicas")
    if spec.max_replicas < 1:
        out.append(invalid(max_path, spec.max_replicas, "must be greater than 0"))
    if spec.HasField("min_replicas") and spec.max_replicas < spec.min_replicas:
        out.append(
            invalid(max_path, spec.max_replicas, "must be greater than or equal to `minReplicas`")
        )
    ref, ref_path = spec.scale_target_ref, child(path, "scaleTargetRef")
    for field, value in (("kind", ref.kind), ("name", ref.name)):
        if not value:
            out.append(required(child(ref_path, field)))
        else:
            out.extend(each_invalid(_path_segment_name(value), child(ref_path, field), value))
    if spec.HasField("target_cpu_utilization_percentage"):
        target = spec.target_cpu_utilization_percentage
        if target < 1:
            out.append(
                invalid(
                    child(path, "targetCPUUtilizationPercentage"), target, "must be greater than 0"
                )
            )
    if spec.HasField("behavior"):
        behavior, bpath = spec.behavior, child(path, "behavior")
        if behavior.HasField("scale_up"):
            out.extend(_scaling_rules(behavior.scale_up, child(bpath, "scaleUp")))
        if behavior.HasField("scale_down"):
            out.extend(_scaling_rules(behavior.scale_down, child(bpath, "scaleDown")))
    return out


def validate_horizontal_pod_autoscaler_status(
    hpa: autoscaling_pb2.HorizontalPodAutoscaler, old: autoscaling_pb2.HorizontalPodAutoscaler
) -> Errors:
    status, path = hpa.status, "status"
    out = non_negative(status.current_replicas, child(path, "currentReplicas"))
    out.extend(non_negative(status.desired_replicas, child(path, "desiredReplicas")))
    out.extend(validate_conditions(status.conditions, child(path, "conditions")))
    return out


# ---------------------------------------------------------------------------------------------
# Lease


def validate_lease(lease: coordination_pb2.Lease, old: coordination_pb2.Lease | None) -> Errors:
    spec, path = lease.spec, "spec"
    out: Errors = []
    if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds <= 0:
        out.append(
            invalid(
                child(path, "leaseDurationSeconds"),
                spec.lease_duration_seconds,
                "must be greater than 0",
            )
        )
    if spec.HasField("lease_transitions"):
        out.extend(non_negative(spec.lease_transitions, child(path, "leaseTransitions")))
    return out


# ---------------------------------------------------------------------------------------------
# StorageClass


def validate_storage_class(
    sc: storage_pb2.StorageClass, old: storage_pb2.StorageClass | None
) -> Errors:
    out: Errors = []
    if not sc.provisioner:
        out.append(required("provisioner"))
    else:
        out.extend(
            each_invalid(is_qualified_name(sc.provisioner.lower()), "provisioner", sc.provisioner)
        )
    params = sc.parameters
    if len(params) > MAX_PROVISIONER_PARAMETERS:
        out.append(too_long("parameters", MAX_PROVISIONER_PARAMETERS, "items"))
    else:
        total = 0
        for k in sorted(params):
            if not k:
                out.append(invalid("parameters", k, "field can not be empty."))
            total += len(k) + len(params[k])
        if total > MAX_PROVISIONER_PARAMETER_SIZE:
            out.append(too_long("parameters", MAX_PROVISIONER_PARAMETER_SIZE))
    if sc.HasField("reclaim_policy"):
        out.extend(enum(sc.reclaim_policy, SC_RECLAIM_POLICIES, "reclaimPolicy", allow_empty=True))
    if not sc.HasField("volume_binding_mode"):
        out.append(required("volumeBindingMode"))
    else:
        out.extend(enum(sc.volume_binding_mode, VOLUME_BINDING_MODES, "volumeBindingMode"))
    for i, term in enumerate(sc.allowed_topologies):
        p = index("allowedTopologies", i)
        exprs_path = child(p, "matchLabelExpressions")
        if not term.match_label_expressions:
            out.append(required(exprs_path, "must have at least one label selector requirement"))
        for j, expr in enumerate(term.match_label_expressions):
            ep = index(exprs_path, j)
            out.extend(validate_qualified_name(expr.key, child(ep, "key")))
            if not expr.values:
                out.append(required(child(ep, "values"), "must specify as least one value"))
            for n, value in enumerate(expr.values):
                out.extend(
                    each_invalid(is_label_value(value), index(child(ep, "values"), n), value)
                )
    if old is not None:
        if not maps_equal(sc.parameters, old.parameters):
            out.append(forbidden("parameters", "updates to parameters are forbidden."))
        if sc.provisioner != old.provisioner:
            out.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if sc.reclaim_policy != old.reclaim_policy:
            out.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if sc.volume_binding_mode != old.volume_binding_mode:
            out.append(immutable("volumeBindingMode", sc.volume_binding_mode))
    return out

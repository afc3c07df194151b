"""ResourceQuota accounting and LimitRange checks: what an object costs against a quota.

One implementation for both halves of Kubernetes' quota system: the apiserver's admission
charges a create against the quota's status.used (compare-and-swap on the quota), and the
controller recalculates status.used from what exists (replenishing what deletions freed).
They must agree on every number, so both call the functions here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

from capstan.machinery import kinds
from capstan.machinery.quantity import Quantity, QuantityFormat, parse_quantity

# Resource names that count objects of a kind (the pre-"count/" names Kubernetes keeps).
OBJECT_COUNTS: dict[str, str] = {
    "pods": "Pod",
    "services": "Service",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "replicationcontrollers": "ReplicationController",
    "resourcequotas": "ResourceQuota",
}
# Pod compute resources: "cpu" and "memory" are the old spellings of requests.*.
COMPUTE_RESOURCES = (
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    "ephemeral-storage",
    "requests.ephemeral-storage",
    "limits.ephemeral-storage",
)
SERVICE_RESOURCES = ("services.nodeports", "services.loadbalancers")
POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort")
Usage = dict[str, Fraction]


def count_resource(kind: kinds.Kind) -> str:
    """The object-count resource name of a kind: count/pods, count/deployments.apps."""
    return f"count/{kind.resource}"


def kind_of_resource(resource: str) -> str | None:
    """The Kind whose objects a quota resource name measures (None: unknown name)."""
    if resource in OBJECT_COUNTS:
        return OBJECT_COUNTS[resource]
    if resource in COMPUTE_RESOURCES:
        return "Pod"
    if resource in SERVICE_RESOURCES:
        return "Service"
    if resource == "requests.storage":
        return "PersistentVolumeClaim"
    if resource.startswith("count/"):
        row = kinds.lookup(resource.removeprefix("count/"))
        return row.kind if row is not None else None
    return None


def _q(text: str) -> Fraction:
    return parse_quantity(text).value


def _add(total: Usage, resource: str, amount: Fraction) -> None:
    total[resource] = total.get(resource, Fraction(0)) + amount


def pod_resources(pod: Any) -> tuple[Usage, Usage]:
    """(requests, limits) of a pod by resource name, as the scheduler and quota see them:
    the sum over containers, raised to the largest init container where that is larger."""
    requests: Usage = {}
    limits: Usage = {}
    for ctr in pod.spec.containers:
        for name, value in ctr.resources.requests.items():
            _add(requests, name, _q(value))
        for name, value in ctr.resources.limits.items():
            _add(limits, name, _q(value))
    for ctr in pod.spec.init_containers:
        for target, source in ((requests, ctr.resources.requests), (limits, ctr.resources.limits)):
            for name, value in source.items():
                target[name] = max(target.get(name, Fraction(0)), _q(value))
    return requests, limits


def counts_toward_quota(kind: str, obj: Any) -> bool:
    """Finished or deleting pods free their quota (Kubernetes' QuotaV1Pod)."""
    if kind != "Pod":
        return True
    return obj.status.phase not in ("Succeeded", "Failed") and not obj.metadata.HasField(
        "deletion_timestamp"
    )


def usage(kind: kinds.Kind, obj: Any) -> Usage:
    """Everything one object costs, under every resource name that could measure it."""
    out: Usage = {count_resource(kind): Fraction(1)}
    for resource, kind_name in OBJECT_COUNTS.items():
        if kind_name == kind.kind:
            out[resource] = Fraction(1)
    if kind.kind == "Pod":
        requests, limits = pod_resources(obj)
        for name in ("cpu", "memory", "ephemeral-storage"):
            if name in requests:
                out[name] = out[f"requests.{name}"] = requests[name]
            if name in limits:
                out[f"limits.{name}"] = limits[name]
    elif kind.kind == "Service":
        stype = obj.spec.type
        if stype in ("NodePort", "LoadBalancer"):
            out["services.nodeports"] = Fraction(len(obj.spec.ports))
        if stype == "LoadBalancer":
            out["services.loadbalancers"] = Fraction(1)
    elif kind.kind == "PersistentVolumeClaim":
        storage = obj.spec.resources.requests.get("storage")
        if storage:
            out["requests.storage"] = _q(storage)
    return out


def pod_scopes(pod: Any) -> set[str]:
    """The quota scopes a pod falls in."""
    scopes = {"Terminating" if pod.spec.HasField("active_deadline_seconds") else "NotTerminating"}
    requests, limits = pod_resources(pod)
    best_effort = not any(k in ("cpu", "memory") for k in (*requests, *limits))
    scopes.add("BestEffort" if best_effort else "NotBestEffort")
    return scopes


def quota_scopes(quota: Any) -> tuple[set[str], set[str]]:
    """(scopes a matching object must have, scopes it must not have)."""
    required = set(quota.spec.scopes)
    excluded: set[str] = set()
    for expr in quota.spec.scope_selector.match_expressions:
        if expr.operator == "Exists":
            required.add(expr.scope_name)
        elif expr.operator == "DoesNotExist":
            excluded.add(expr.scope_name)
    return required, excluded


def quota_matches(quota: Any, kind: str, obj: Any) -> bool:
    """Whether obj is tracked by quota. A scoped quota tracks only pods in its scopes."""
    required, excluded = quota_scopes(quota)
    if not required and not excluded:
        return True
    if kind != "Pod":
        return False
    scopes = pod_scopes(obj)
    return required <= scopes and not (excluded & scopes)


def tracked(quota: Any, kind: str, obj: Any, cost: Usage) -> Usage:
    """The part of cost that quota limits."""
    if not quota_matches(quota, kind, obj):
        return {}
    hard = quota.spec.hard
    return {r: v for r, v in cost.items() if r in hard}


def missing_compute(quota: Any, pod: Any) -> list[str]:
    """Kubernetes refuses a pod under a compute quota unless every container states what
    the quota limits: ["limits.cpu for: web", ...]."""
    hard = quota.spec.hard
    out: list[str] = []
    for resource in ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory"):
        side, name = resource.split(".")
        if resource not in hard and not (side == "requests" and name in hard):
            continue
        lacking = [
            c.name
            for c in pod.spec.containers
            if name not in (c.resources.requests if side == "requests" else c.resources.limits)
        ]
        if lacking:
            out.append(f"{resource} for: {','.join(lacking)}")
    return out


def format_amount(resource: str, value: Fraction) -> str:
    """Canonical quantity text for a usage figure: 500m, 2, 128Mi."""
    bytes_like = resource.endswith(("memory", "storage"))
    fmt = (
        QuantityFormat.BINARY_SI
        if bytes_like and value.denominator == 1 and value % 1024 == 0
        else QuantityFormat.DECIMAL_SI
    )
    return str(Quantity(value, fmt))


def format_usage(values: Mapping[str, Fraction]) -> dict[str, str]:
    return {r: format_amount(r, v) for r, v in values.items()}


def parse_usage(values: Mapping[str, str]) -> Usage:
    out: Usage = {}
    for resource, text in values.items():
        try:
            out[resource] = _q(text)
        except ValueError:
            continue
    return out


def exceeded(hard: Mapping[str, str], used: Usage, request: Usage) -> list[str]:
    """Resources that request would take past hard given used (sorted)."""
    over: list[str] = []
    for resource, amount in request.items():
        limit = hard.get(resource)
        if limit is None or amount <= 0:
            continue
        if used.get(resource, Fraction(0)) + amount > _q(limit):
            over.append(resource)
    return sorted(over)


def exceeded_message(
    quota_name: str, hard: Mapping[str, str], used: Usage, request: Usage, over: list[str]
) -> str:
    """Kubernetes' wording: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"""

    def pairs(values: Callable[[str], str]) -> str:
        return ",".join(f"{r}={values(r)}" for r in over)

    return (
        f"exceeded quota: {quota_name}, "
        f"requested: {pairs(lambda r: format_amount(r, request[r]))}, "
        f"used: {pairs(lambda r: format_amount(r, used.get(r, Fraction(0))))}, "
        f"limited: {pairs(lambda r: hard[r])}"
    )


def namespace_usage(
    quota: Any, objects_of: Callable[[str], Iterable[Any]], resources: Iterable[str] | None = None
) -> Usage:
    """What everything in quota's namespace uses of the resources quota limits (or of the
    given ones): the controller's recalculation, and admission's first charge when the
    controller has not filled status.used in yet. objects_of(kind) yields the
    namespace's objects of that kind."""
    wanted = list(quota.spec.hard if resources is None else resources)
    by_kind: dict[str, list[str]] = {}
    for resource in wanted:
        kind_name = kind_of_resource(resource)
        if kind_name is not None:
            by_kind.setdefault(kind_name, []).append(resource)
    total: Usage = {r: Fraction(0) for r in wanted}
    for kind_name, names in by_kind.items():
        row = kinds.by_kind(kind_name)
        for obj in objects_of(kind_name):
            if not counts_toward_quota(kind_name, obj) or not quota_matches(quota, kind_name, obj):
                continue
            cost = usage(row, obj)
            for resource in names:
                if resource in cost:
                    total[resource] += cost[resource]
    return total


# ------------------------------------------------------------------------- LimitRange


def _resources(kind: str, obj: Any) -> list[tuple[str, Any]]:
    if kind == "PersistentVolumeClaim":
        return [("", obj.spec.resources)]
    return [(c.name, c.resources) for c in (*obj.spec.init_containers, *obj.spec.containers)]


def apply_limit_range_defaults(limit_range: Any, pod: Any) -> bool:
    """Fill in the default limits and requests of a LimitRange's Container item for every
    container that sets none of that resource; True if anything changed."""
    changed = False
    for item in limit_range.spec.limits:
        if item.type != "Container":
            continue
        for ctr in (*pod.spec.init_containers, *pod.spec.containers):
            res = ctr.resources
            for name, value in item.default.items():
                if name not in res.limits:
                    res.limits[name] = value
                    changed = True
            for name, value in item.default_request.items():
                if name not in res.requests:
                    res.requests[name] = value
                    changed = True
    return changed


def limit_range_violations(limit_range: Any, kind: str, obj: Any) -> list[str]:
    """Kubernetes' LimitRanger min/max/ratio checks for a Pod or PersistentVolumeClaim."""
    out: list[str] = []
    for item in limit_range.spec.limits:
        if kind == "Pod" and item.type == "Container":
            for _, res in _resources(kind, obj):
                out.extend(_check(item, "Container", dict(res.requests), dict(res.limits)))
        elif kind == "Pod" and item.type == "Pod":
            requests, limits = pod_resources(obj)
            out.extend(_check_values(item, "Pod", requests, limits))
        elif kind == "PersistentVolumeClaim" and item.type == "PersistentVolumeClaim":
            res = obj.spec.resources
            out.extend(_check(item, "PersistentVolumeClaim", dict(res.requests), dict(res.limits)))
    return out


def _check(item: Any, what: str, requests: dict[str, str], limits: dict[str, str]) -> list[str]:
    return _check_values(
        item, what, {k: _q(v) for k, v in requests.items()}, {k: _q(v) for k, v in limits.items()}
    )


def _check_values(item: Any, what: str, requests: Usage, limits: Usage) -> list[str]:
    out: list[str] = []
    for name, text in item.min.items():
        low = _q(text)
        if name not in requests:
            out.append(f"minimum {name} usage per {what} is {text}.  No request is specified")
        elif requests[name] < low:
            got = format_amount(name, requests[name])
            out.append(f"minimum {name} usage per {what} is {text}, but request is {got}")
        if name in limits and limits[name] < low:
            got = format_amount(name, limits[name])
            out.append(f"minimum {name} usage per {what} is {text}, but limit is {got}")
    for name, text in item.max.items():
        high = _q(text)
        if what != "PersistentVolumeClaim" and name not in limits:
            out.append(f"maximum {name} usage per {what} is {text}.  No limit is specified")
        elif name in limits and limits[name] > high:
            got = format_amount(name, limits[name])
            out.append(f"maximum {name} usage per {what} is {text}, but limit is {got}")
        if what == "PersistentVolumeClaim" and name in requests and requests[name] > high:
            got = format_amount(name, requests[name])
            out.append(f"maximum {name} usage per {what} is {text}, but request is {got}")
    for name, text in item.max_limit_request_ratio.items():
        if name in limits and requests.get(name):
            ratio = limits[name] / requests[name]
            if ratio > _q(text):
                out.append(
                    f"{name} max limit to request ratio per {what} is {text}, but provided "
                    f"ratio is {float(ratio):f}"
                )
    return out

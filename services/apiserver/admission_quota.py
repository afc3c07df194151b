"""ResourceQuota and LimitRange admission (Kubernetes' ResourceQuota and LimitRanger plugins).

LimitRanger fills in a namespace's default requests and limits on pods and refuses pods and
claims outside its min/max. ResourceQuota then charges the create against every quota of the
namespace that tracks it: status.used is raised with a compare-and-swap on the quota object
(its resource version), so two apiservers admitting at once can never both take the last
unit - one of them re-reads and is refused. If the create itself fails afterwards, the undo
gives the charge back. Deletions are not subtracted here: the controller recalculates
status.used from what exists (Kubernetes' replenishment).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from capstan.apierrors import ForbiddenError
from capstan.machinery import quota as q
from capstan.machinery.kinds import Kind

from apiserver.filters import build_filter
from apiserver.registry import Registry, Undo
from apiserver.strategy import qos_class

# Kinds no quota can meaningfully limit and that are created at a high rate.
UNQUOTED = ("Event",)


def _cached(registry: Registry, namespace: str) -> list[Any]:
    flt = build_filter(registry.kind, namespace, "", "")
    return [s.obj for s in registry.cache.snapshot(flt)]


def _forbidden(kind: Kind, obj: Any, message: str) -> ForbiddenError:
    meta = obj.metadata
    name = meta.name or meta.generate_name
    return ForbiddenError(
        f'{kind.resource} "{name}" is forbidden: {message}',
        metadata={"resource": kind.resource, "name": name, "namespace": meta.namespace},
    )


class LimitRanger:
    """Defaults and min/max checks from the namespace's LimitRanges (Pods, claims)."""

    def __init__(self, kind: Kind, registries: dict[str, Registry]) -> None:
        self.kind = kind
        self.registries = registries

    async def admit_create(self, obj: Any) -> Undo | None:
        ranges = _cached(self.registries["LimitRange"], obj.metadata.namespace)
        if not ranges:
            return None
        if self.kind.kind == "Pod":
            changed = False
            for lr in ranges:
                changed = q.apply_limit_range_defaults(lr, obj) or changed
            if changed:
                obj.status.qos_class = qos_class(obj)
        problems = [p for lr in ranges for p in q.limit_range_violations(lr, self.kind.kind, obj)]
        if problems:
            raise _forbidden(self.kind, obj, ", ".join(problems))
        return None

    async def admit_update(self, new: Any, old: Any) -> Undo | None:
        return None

    async def updated(self, new: Any, old: Any) -> None:
        return None

    async def released(self, obj: Any) -> None:
        return None


class QuotaAdmission:
    """Charges creates of one kind against the namespace's ResourceQuotas."""

    def __init__(self, kind: Kind, registries: dict[str, Registry]) -> None:
        self.kind = kind
        self.registries = registries

    def _objects_of(self, namespace: str) -> Any:
        def objects_of(kind: str) -> Iterable[Any]:
            return _cached(self.registries[kind], namespace)

        return objects_of

    async def admit_create(self, obj: Any) -> Undo | None:
        kind = self.kind
        namespace = obj.metadata.namespace
        quotas = self.registries["ResourceQuota"]
        matching = _cached(quotas, namespace)
        if not matching or not q.counts_toward_quota(kind.kind, obj):
            return None
        cost = q.usage(kind, obj)
        charged: list[tuple[str, q.Usage]] = []
        try:
            for quota in matching:
                if kind.kind == "Pod" and q.quota_matches(quota, "Pod", obj):
                    lacking = q.missing_compute(quota, obj)
                    if lacking:
                        message = f"failed quota: {quota.metadata.name}: must specify " + "; ".join(
                            lacking
                        )
                        raise _forbidden(kind, obj, message)
                request = q.tracked(quota, kind.kind, obj, cost)
                if not request:
                    continue
                await self._charge(namespace, quota.metadata.name, obj, request, 1)
                charged.append((quota.metadata.name, request))
        except BaseException:
            await self._refund(namespace, charged)
            raise
        if not charged:
            return None

        async def undo() -> None:
            await self._refund(namespace, charged)

        return undo

    async def _charge(
        self, namespace: str, name: str, obj: Any, request: q.Usage, sign: int
    ) -> None:
        objects_of = self._objects_of(namespace)
        kind = self.kind

        def mutate(quota: Any) -> None:
            hard = quota.spec.hard
            used = q.parse_usage(quota.status.used)
            unknown = [r for r in request if r not in quota.status.used]
            if unknown:
                # The controller has not counted these yet: count them now, once.
                used.update(q.namespace_usage(quota, objects_of, unknown))
            if sign > 0:
                over = q.exceeded(hard, used, request)
                if over:
                    message = q.exceeded_message(quota.metadata.name, hard, used, request, over)
                    raise _forbidden(kind, obj, message)
            for resource, amount in request.items():
                used[resource] = max(Fraction(0), used.get(resource, Fraction(0)) + sign * amount)
            for resource, text in hard.items():
                quota.status.hard[resource] = text
            for resource, value in q.format_usage(used).items():
                quota.status.used[resource] = value

        await self.registries["ResourceQuota"].guaranteed_update(
            namespace, name, mutate, validate=False
        )

    async def _refund(self, namespace: str, charged: list[tuple[str, q.Usage]]) -> None:
        for name, request in reversed(charged):
            try:
                await self._charge(namespace, name, None, request, -1)
            except Exception:
                # The quota is gone or unreachable: the controller's recount fixes it.
                continue

    async def admit_update(self, new: Any, old: Any) -> Undo | None:
        return None

    async def updated(self, new: Any, old: Any) -> None:
        return None

    async def released(self, obj: Any) -> None:
        return None


def admission_for(kind: Kind, registries: dict[str, Registry]) -> list[Any]:
    """The quota-related admission hooks of a kind, in Kubernetes' order (LimitRanger
    defaults first, so the quota charges the defaulted requests)."""
    if not kind.namespaced or kind.kind in UNQUOTED:
        return []
    hooks: list[Any] = []
    if kind.kind in ("Pod", "PersistentVolumeClaim"):
        hooks.append(LimitRanger(kind, registries))
    hooks.append(QuotaAdmission(kind, registries))
    return hooks

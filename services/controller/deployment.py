"""Deployment: rolls a pod template out through ReplicaSets <deployment>-<pod-template-hash>,
one per template, as Kubernetes' deployment controller does.

- RollingUpdate: the new ReplicaSet grows while all pods stay within replicas + maxSurge,
  old ones shrink while available pods stay at or above replicas - maxUnavailable.
  Availability is counted from the pod cache (ready for minReadySeconds, not terminating)
  and capped by each ReplicaSet's spec, so a scale-down its ReplicaSet has not carried out
  yet is never counted twice; sizes use the larger of spec and live pods, so a pod about to
  be deleted still counts toward the surge limit.
- Recreate: old ReplicaSets go to zero, and the new one is created once no old pod runs.
- Revisions: deployment.kubernetes.io/revision on each ReplicaSet; a ReplicaSet brought
  back (rollback) gets the next number and remembers its old ones in revision-history.
  Deployment annotations (kubernetes.io/change-cause among them) are copied onto the
  ReplicaSets; revisionHistoryLimit bounds the zero-sized old ReplicaSets kept.
- A replicas change during a rollout is spread over the ReplicaSets in proportion to
  their sizes (desired-replicas / max-replicas annotations record what each was sized for).
- Conditions: Available (MinimumReplicasAvailable) and Progressing (NewReplicaSetCreated,
  FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable, DeploymentPaused,
  DeploymentResumed, or False with ProgressDeadlineExceeded).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import AlreadyExistsError, ConflictError
from capstan.client import NORMAL, WARNING, Controller, Informer
from capstan.client.indexer import object_key
from capstan.machinery.intstr import resolve_int_or_percent
from capstan.machinery.labels import selector_from_proto

from controller import podutil
from controller.common import controller_key, owned, owner_informer, pod_informer
from controller.hashing import compute_hash
from controller.ownership import claim, owner_reference
from controller.registry import ControllerContext

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
TEMPLATE_HASH = "pod-template-hash"
# Deployment annotations that are about the Deployment itself, not copied to ReplicaSets.
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}

ReplicaSet = apps_pb2.ReplicaSet
Deployment = apps_pb2.Deployment


# ---------------------------------------------------------------------------------------------
# Pure helpers (Kubernetes' deployment/util)


def replicas_of(obj: Any) -> int:
    return int(obj.spec.replicas) if obj.spec.HasField("replicas") else 1


def revision_of(rs: ReplicaSet) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def is_rolling(d: Deployment) -> bool:
    return d.spec.strategy.type != "Recreate"


def fenceposts(d: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both zero is read as unavailable 1."""
    if not is_rolling(d):
        return 0, 0
    desired = replicas_of(d)
    ru = d.spec.strategy.rolling_update
    surge = resolve_int_or_percent(ru.max_surge, desired, True) if ru.HasField("max_surge") else 0
    unavailable = (
        resolve_int_or_percent(ru.max_unavailable, desired, False)
        if ru.HasField("max_unavailable")
        else 0
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: Deployment) -> int:
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas_of(d))


def max_surge(d: Deployment) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def template_without_hash(template: core_pb2.PodTemplateSpec) -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.CopyFrom(template)
    t.metadata.labels.pop(TEMPLATE_HASH, None)
    return t


def equal_ignore_hash(a: core_pb2.PodTemplateSpec, b: core_pb2.PodTemplateSpec) -> bool:
    return template_without_hash(a) == template_without_hash(b)


def new_rs_replicas(d: Deployment, all_sizes: int, new_size: int) -> int:
    """How big the new ReplicaSet may be now (Kubernetes' NewRSNewReplicas)."""
    desired = replicas_of(d)
    if not is_rolling(d):
        return desired
    max_total = desired + max_surge(d)
    if all_sizes >= max_total:
        return new_size
    return new_size + max(0, min(max_total - all_sizes, desired - new_size))


def rs_fraction(size: int, annotated_max: int | None, d: Deployment, status_replicas: int) -> int:
    """Kubernetes' getReplicaSetFraction: how much a ReplicaSet of `size` grows or shrinks
    when the Deployment is resized, proportionally to what it was sized for."""
    desired = replicas_of(d)
    if desired == 0:
        return -size
    deployment_max = desired + max_surge(d)
    annotated = annotated_max if annotated_max is not None else status_replicas
    if annotated <= 0:
        return 0
    return round(size * deployment_max / annotated) - size


def proportional_sizes(
    d: Deployment, sets: list[tuple[str, int, int | None]], status_replicas: int
) -> dict[str, int]:
    """New sizes for (name, size, annotated max-replicas) sets when the Deployment's
    replicas changed mid-rollout; the rounding leftover goes to the largest set."""
    allowed = replicas_of(d) + max_surge(d)
    total = sum(s for _, s, _ in sets)
    to_add = allowed - total
    if to_add == 0 or not sets:
        return {name: size for name, size, _ in sets}
    # Larger first; on scale-up newer first, on scale-down older first (caller sorts by age).
    ordered = sorted(sets, key=lambda s: -s[1])
    added = 0
    out: dict[str, int] = {}
    for name, size, annotated in ordered:
        proportion = 0
        if size > 0:
            fraction = rs_fraction(size, annotated, d, status_replicas)
            left = to_add - added
            proportion = min(fraction, left) if to_add > 0 else max(fraction, left)
        out[name] = size + proportion
        added += proportion
    leftover = to_add - added
    if leftover and ordered:
        first = ordered[0][0]
        out[first] = max(0, out[first] + leftover)
    return out


# ---------------------------------------------------------------------------------------------


class DeploymentLoop:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.deployments: Informer[Deployment] = ctx.informers.for_resource(ctx.client.deployments)
        self.sets: Informer[ReplicaSet] = owner_informer(ctx, ctx.client.replicasets)
        self.pods = pod_informer(ctx)
        self.controller = Controller(
            "deployment", self.reconcile, workers=ctx.workers("deployment")
        )
        self.controller.watch(self.deployments)
        self.controller.watch(self.sets, self._rs_keys)
        self.controller.watch(self.pods, self._pod_keys)

    def _rs_keys(self, rs: ReplicaSet) -> list[str]:
        key = controller_key(rs, "Deployment")
        if key is not None:
            return [key]
        if rs.metadata.owner_references:
            return []
        out = []
        for d in self.deployments.list(rs.metadata.namespace):
            if selector_from_proto(d.spec.selector).matches(rs.metadata.labels):
                out.append(object_key(d))
        return out

    def _pod_keys(self, pod: core_pb2.Pod) -> list[str]:
        rs_key = controller_key(pod, "ReplicaSet")
        if rs_key is None:
            return []
        rs = self.sets.get_by_key(rs_key)
        key = controller_key(rs, "Deployment") if rs is not None else None
        return [key] if key is not None else []

    # ------------------------------------------------------------------ sync
    async def reconcile(self, key: str) -> float | None:
        d = self.deployments.get_by_key(key)
        if d is None:
            return None
        d = copy.deepcopy(d)
        selector = selector_from_proto(d.spec.selector)
        candidates = [
            rs for rs in self.sets.list(d.metadata.namespace)
            if not rs.metadata.HasField("deletion_timestamp") or controller_key(rs, "Deployment")
        ]  # fmt: skip
        sets = await claim(d, selector, candidates, self.client.replicasets)
        sync = _Sync(self, d, sets)
        try:
            return await sync.run()
        except ConflictError:
            # The cache is behind a write (ours or another's); its watch event is on the
            # way and a prompt retry starts from the newer state.
            return 0.05

    def live_pods(self, rs: ReplicaSet) -> list[core_pb2.Pod]:
        return [p for p in owned(self.pods, rs.metadata.uid) if podutil.is_active(p)]


class _Sync:
    """One sync of one Deployment; the ReplicaSets in hand are updated as it scales them."""

    def __init__(self, loop: DeploymentLoop, d: Deployment, sets: list[ReplicaSet]) -> None:
        self.loop = loop
        self.d = d
        self.sets = {rs.metadata.name: copy.deepcopy(rs) for rs in sets}
        self.new_name = ""

    # --- views
    @property
    def new(self) -> ReplicaSet | None:
        return self.sets.get(self.new_name) if self.new_name else None

    def old(self) -> list[ReplicaSet]:
        return sorted(
            (rs for n, rs in self.sets.items() if n != self.new_name),
            key=lambda rs: (podutil.seconds(rs.metadata.creation_timestamp), rs.metadata.name),
        )

    def size(self, rs: ReplicaSet) -> int:
        """Pods the set has or is about to have: the larger of spec and live pods."""
        return max(replicas_of(rs), len(self.loop.live_pods(rs)))

    def available(self, rs: ReplicaSet) -> int:
        pods = self.loop.live_pods(rs)
        ready = sum(1 for p in pods if podutil.is_available(p, self.d.spec.min_ready_seconds))
        return min(ready, replicas_of(rs))

    # --- entry
    async def run(self) -> float | None:
        d = self.d
        self._find_new()
        if d.metadata.HasField("deletion_timestamp"):
            return await self.sync_status()
        self._paused_condition()
        if d.spec.paused:
            return await self.sync_scale_only()
        if self._scaling_event():
            return await self.sync_scale_only()
        if is_rolling(d):
            return await self.rollout_rolling()
        return await self.rollout_recreate()

    def _find_new(self) -> None:
        matching = [
            rs
            for rs in self.sets.values()
            if equal_ignore_hash(rs.spec.template, self.d.spec.template)
        ]
        matching.sort(
            key=lambda rs: (podutil.seconds(rs.metadata.creation_timestamp), rs.metadata.name)
        )
        self.new_name = matching[0].metadata.name if matching else ""

    def _paused_condition(self) -> None:
        conds = self.d.status.conditions
        cond = podutil.get_condition(conds, "Progressing")
        if self.d.spec.paused:
            if cond is None or cond.reason != "DeploymentPaused":
                podutil.set_condition(
                    conds, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                    update_time=True,
                )  # fmt: skip
        elif cond is not None and cond.reason == "DeploymentPaused":
            podutil.set_condition(
                conds, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed",
                update_time=True,
            )  # fmt: skip

    def _scaling_event(self) -> bool:
        desired = str(replicas_of(self.d))
        for rs in self.sets.values():
            if replicas_of(rs) == 0:
                continue
            annotated = rs.metadata.annotations.get(DESIRED_REPLICAS)
            if annotated is not None and annotated != desired:
                return True
        return False

    # --- revisions and the new ReplicaSet
    def _max_old_revision(self) -> int:
        return max((revision_of(rs) for rs in self.old()), default=0)

    def _annotate(self, rs: ReplicaSet, new_revision: int, *, fresh: bool) -> bool:
        """Copy the Deployment's annotations and stamp the revision; True if changed."""
        before = dict(rs.metadata.annotations)
        ann = rs.metadata.annotations
        for k, v in self.d.metadata.annotations.items():
            if k not in _NOT_COPIED:
                ann[k] = v
        old = revision_of(rs) if not fresh else 0
        if old < new_revision:
            if old > 0:
                history = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
                history.append(str(old))
                ann[REVISION_HISTORY] = ",".join(history)
            ann[REVISION] = str(new_revision)
        if fresh:
            # An existing set keeps what it was sized for until it is scaled: proportional
            # scaling reads it.
            self._size_annotations(rs)
        return dict(ann) != before

    def _size_annotations(self, rs: ReplicaSet) -> None:
        rs.metadata.annotations[DESIRED_REPLICAS] = str(replicas_of(self.d))
        rs.metadata.annotations[MAX_REPLICAS] = str(replicas_of(self.d) + max_surge(self.d))

    async def ensure_new(self, create: bool) -> ReplicaSet | None:
        new_revision = self._max_old_revision() + 1
        rs = self.new
        if rs is not None:
            changed = self._annotate(rs, new_revision, fresh=False)
            if rs.spec.min_ready_seconds != self.d.spec.min_ready_seconds:
                rs.spec.min_ready_seconds = self.d.spec.min_ready_seconds
                changed = True
            if changed:
                self.sets[rs.metadata.name] = await self.loop.client.replicasets.update(rs)
            cond = podutil.get_condition(self.d.status.conditions, "Progressing")
            if cond is None:
                podutil.set_condition(
                    self.d.status.conditions, "Progressing", "True", "FoundNewReplicaSet",
                    f'Found new replica set "{rs.metadata.name}"', update_time=True,
                )  # fmt: skip
            return self.sets[rs.metadata.name]
        if not create:
            return None
        return await self._create_new(new_revision)

    async def _create_new(self, new_revision: int) -> ReplicaSet:
        d = self.d
        collision = d.status.collision_count if d.status.HasField("collision_count") else None
        template = template_without_hash(d.spec.template)
        h = compute_hash(template, collision)
        rs = ReplicaSet()
        rs.metadata.name = f"{d.metadata.name}-{h}"
        rs.metadata.namespace = d.metadata.namespace
        rs.metadata.labels.update(template.metadata.labels)
        rs.metadata.labels[TEMPLATE_HASH] = h
        rs.metadata.owner_references.append(owner_reference(d))
        rs.spec.template.CopyFrom(template)
        rs.spec.template.metadata.labels[TEMPLATE_HASH] = h
        rs.spec.selector.CopyFrom(d.spec.selector)
        rs.spec.selector.match_labels[TEMPLATE_HASH] = h
        rs.spec.min_ready_seconds = d.spec.min_ready_seconds
        all_sizes = sum(self.size(s) for s in self.sets.values())
        rs.spec.replicas = new_rs_replicas(d, all_sizes, 0)
        self._annotate(rs, new_revision, fresh=True)
        try:
            created = await self.loop.client.replicasets.create(rs)
        except AlreadyExistsError:
            existing = await self.loop.client.replicasets.get(
                rs.metadata.name, rs.metadata.namespace
            )
            ours = any(
                r.uid == d.metadata.uid and r.controller for r in existing.metadata.owner_references
            )
            if ours and equal_ignore_hash(existing.spec.template, d.spec.template):
                self.sets[existing.metadata.name] = existing
                self.new_name = existing.metadata.name
                return existing
            # A hash collision: bump the count so the next sync hashes differently.
            d.status.collision_count = (collision or 0) + 1
            await self._write_status(d.status)
            raise
        self.sets[created.metadata.name] = created
        self.new_name = created.metadata.name
        if created.spec.replicas > 0:
            self.loop.recorder.record(
                d, NORMAL, "ScalingReplicaSet",
                f"Scaled up replica set {created.metadata.name} to {created.spec.replicas}",
            )  # fmt: skip
        podutil.set_condition(
            d.status.conditions, "Progressing", "True", "NewReplicaSetCreated",
            f'Created new replica set "{created.metadata.name}"', update_time=True,
        )  # fmt: skip
        return created

    # --- scaling
    async def scale(self, rs: ReplicaSet, size: int) -> bool:
        """Set a ReplicaSet's size (and its sizing annotations); True if anything changed."""
        before_size = replicas_of(rs)
        new = copy.deepcopy(rs)
        new.spec.replicas = size
        self._size_annotations(new)
        if new == rs:
            return False
        self.sets[rs.metadata.name] = await self.loop.client.replicasets.update(new)
        if size != before_size:
            verb = "up" if size > before_size else "down"
            self.loop.recorder.record(
                self.d, NORMAL, "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs.metadata.name} to {size}",
            )  # fmt: skip
        return size != before_size

    async def sync_scale_only(self) -> float | None:
        """Paused or resized: resize without rolling out (Kubernetes' sync())."""
        await self.ensure_new(create=False)
        await self._scale_proportionally()
        if self.d.spec.paused:
            await self.cleanup()
        return await self.sync_status()

    async def _scale_proportionally(self) -> None:
        d = self.d
        desired = replicas_of(d)
        active = [rs for rs in self.sets.values() if replicas_of(rs) > 0]
        new = self.new
        if len(active) <= 1:
            target = active[0] if active else (new or self._latest())
            if target is not None:
                await self.scale(target, desired)
            return
        if new is not None and replicas_of(new) == desired and self.available(new) == desired:
            for rs in self.old():
                await self.scale(rs, 0)
            return
        if not is_rolling(d):
            return
        sets = []
        for rs in active:
            raw = rs.metadata.annotations.get(MAX_REPLICAS)
            annotated = int(raw) if raw and raw.isdigit() else None
            sets.append((rs.metadata.name, replicas_of(rs), annotated))
        sizes = proportional_sizes(d, sets, d.status.replicas)
        for name, size in sizes.items():
            await self.scale(self.sets[name], size)

    def _latest(self) -> ReplicaSet | None:
        old = self.old()
        return max(old, key=revision_of) if old else None

    async def rollout_rolling(self) -> float | None:
        new = await self.ensure_new(create=True)
        assert new is not None
        if await self._reconcile_new(new):
            return await self.sync_status()
        if await self._reconcile_old(self.new or new):
            return await self.sync_status()
        if self._complete(self._calculate_status()):
            await self.cleanup()
        return await self.sync_status()

    async def _reconcile_new(self, new: ReplicaSet) -> bool:
        desired = replicas_of(self.d)
        current = replicas_of(new)
        if current == desired:
            return False
        if current > desired:
            return await self.scale(new, desired)
        all_sizes = sum(self.size(rs) for rs in self.sets.values())
        return await self.scale(new, new_rs_replicas(self.d, all_sizes, current))

    async def _reconcile_old(self, new: ReplicaSet) -> bool:
        old = self.old()
        if sum(replicas_of(rs) for rs in old) == 0:
            return False
        all_sizes = sum(replicas_of(rs) for rs in self.sets.values())
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        new_unavailable = replicas_of(new) - self.available(new)
        budget = all_sizes - min_available - new_unavailable
        if budget <= 0:
            return False
        changed = False
        # Unhealthy old pods first: removing them costs no availability.
        for rs in old:
            if budget <= 0:
                break
            unhealthy = replicas_of(rs) - self.available(rs)
            if unhealthy <= 0:
                continue
            cut = min(budget, unhealthy)
            changed |= await self.scale(self.sets[rs.metadata.name], replicas_of(rs) - cut)
            budget -= cut
        available = sum(self.available(rs) for rs in self.sets.values())
        room = available - min_available
        for rs in self.old():
            if room <= 0:
                break
            cur = replicas_of(rs)
            if cur == 0:
                continue
            cut = min(cur, room)
            changed |= await self.scale(rs, cur - cut)
            room -= cut
        return changed

    async def rollout_recreate(self) -> float | None:
        await self.ensure_new(create=False)
        scaled = False
        for rs in self.old():
            scaled |= await self.scale(rs, 0)
        if scaled:
            return await self.sync_status()
        for rs in self.old():
            if any(
                p.status.phase not in (podutil.SUCCEEDED, podutil.FAILED)
                for p in owned(self.loop.pods, rs.metadata.uid)
            ):
                return await self.sync_status()
        new = await self.ensure_new(create=True)
        assert new is not None
        await self._reconcile_new(self.new or new)
        if self._complete(self._calculate_status()):
            await self.cleanup()
        return await self.sync_status()

    async def cleanup(self) -> None:
        limit = (
            self.d.spec.revision_history_limit
            if self.d.spec.HasField("revision_history_limit")
            else 10
        )
        old = [rs for rs in self.old() if not rs.metadata.HasField("deletion_timestamp")]
        excess = len(old) - limit
        if excess <= 0:
            return
        for rs in sorted(old, key=revision_of):
            if excess <= 0:
                break
            if rs.status.replicas != 0 or replicas_of(rs) != 0:
                continue
            if rs.status.observed_generation < rs.metadata.generation:
                continue
            await self.loop.client.replicasets.delete(rs.metadata.name, rs.metadata.namespace)
            self.sets.pop(rs.metadata.name, None)
            excess -= 1

    # --- status
    def _calculate_status(self) -> apps_pb2.DeploymentStatus:
        d = self.d
        s = apps_pb2.DeploymentStatus()
        s.CopyFrom(d.status)
        sets = list(self.sets.values())
        new = self.new
        s.observed_generation = d.metadata.generation
        s.replicas = sum(rs.status.replicas for rs in sets)
        s.updated_replicas = new.status.replicas if new is not None else 0
        s.ready_replicas = sum(rs.status.ready_replicas for rs in sets)
        s.available_replicas = sum(rs.status.available_replicas for rs in sets)
        total = sum(replicas_of(rs) for rs in sets)
        # Validation bounds it by status.replicas (pods that exist).
        s.unavailable_replicas = min(max(0, total - s.available_replicas), s.replicas)
        if s.available_replicas >= replicas_of(d) - max_unavailable(d):
            podutil.set_condition(
                s.conditions, "Available", "True", "MinimumReplicasAvailable",
                "Deployment has minimum availability.", update_time=True,
            )  # fmt: skip
        else:
            podutil.set_condition(
                s.conditions, "Available", "False", "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.", update_time=True,
            )  # fmt: skip
        return s

    def _complete(self, s: apps_pb2.DeploymentStatus) -> bool:
        desired = replicas_of(self.d)
        return (
            s.updated_replicas == desired
            and s.replicas == desired
            and s.available_replicas == desired
            and s.observed_generation >= self.d.metadata.generation
        )

    def _progressing(self, s: apps_pb2.DeploymentStatus) -> bool:
        old = self.d.status
        return (
            s.updated_replicas > old.updated_replicas
            or s.ready_replicas > old.ready_replicas
            or s.available_replicas > old.available_replicas
            or (s.replicas - s.updated_replicas) < (old.replicas - old.updated_replicas)
        )

    async def sync_status(self) -> float | None:
        d = self.d
        s = self._calculate_status()
        requeue: float | None = None
        deadline = (
            d.spec.progress_deadline_seconds
            if d.spec.HasField("progress_deadline_seconds")
            else 600
        )
        new = self.new
        if not d.spec.paused and not d.metadata.HasField("deletion_timestamp"):
            cond = podutil.get_condition(s.conditions, "Progressing")
            name = new.metadata.name if new is not None else ""
            if self._complete(s):
                podutil.set_condition(
                    s.conditions, "Progressing", "True", "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}" has successfully progressed.', update_time=True,
                )  # fmt: skip
            elif self._progressing(s):
                msg = f'ReplicaSet "{name}" is progressing.'
                if cond is not None and cond.status == "True":
                    cond.reason, cond.message = "ReplicaSetUpdated", msg
                    cond.last_update_time.CopyFrom(podutil.now_ts())
                else:
                    podutil.set_condition(
                        s.conditions, "Progressing", "True", "ReplicaSetUpdated", msg,
                        update_time=True,
                    )  # fmt: skip
            elif cond is not None and cond.reason != "NewReplicaSetAvailable":
                since = podutil.seconds(cond.last_update_time) or podutil.seconds(
                    cond.last_transition_time
                )
                left = since + deadline - time.time()
                if cond.reason == "ProgressDeadlineExceeded":
                    pass
                elif left <= 0:
                    podutil.set_condition(
                        s.conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                        f'ReplicaSet "{name}" has timed out progressing.', update_time=True,
                    )  # fmt: skip
                    self.loop.recorder.record(
                        d, WARNING, "ProgressDeadlineExceeded",
                        f'ReplicaSet "{name}" has timed out progressing.',
                    )  # fmt: skip
                else:
                    requeue = left + 0.1
            cond = podutil.get_condition(s.conditions, "Progressing")
            if (
                requeue is None
                and cond is not None
                and cond.status == "True"
                and cond.reason != "NewReplicaSetAvailable"
            ):
                since = podutil.seconds(cond.last_update_time)
                requeue = max(0.1, since + deadline - time.time() + 0.1)
        await self._write_status(s)
        if d.spec.min_ready_seconds > 0 and s.ready_replicas > s.available_replicas:
            wait = float(d.spec.min_ready_seconds)
            requeue = wait if requeue is None else min(requeue, wait)
        return requeue

    async def _write_status(self, s: apps_pb2.DeploymentStatus) -> None:
        current = self.loop.deployments.get_by_key(object_key(self.d))
        if current is not None and current.status == s:
            return
        new = copy.deepcopy(self.d)
        if current is not None:
            new.metadata.resource_version = current.metadata.resource_version
            new.spec.CopyFrom(current.spec)
            new.metadata.generation = current.metadata.generation
        new.status.CopyFrom(s)
        await self.loop.client.deployments.update_status(new)


def new_deployment_controller(ctx: ControllerContext) -> Controller:
    return DeploymentLoop(ctx).controller

"""StatefulSet: pods <set>-<ordinal> with stable identities, as Kubernetes runs them.

Each pod gets hostname <pod> and subdomain <serviceName> (DNS <pod>.<service>), labels
statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index and
controller-revision-hash, and one PVC <claim>-<set>-<ordinal> per volumeClaimTemplate,
created before the pod and never deleted with it. OrderedReady creates ordinal N+1 only
once N is Running and Ready and removes pods from the highest ordinal down, one at a
time; Parallel does both at once. RollingUpdate replaces pods whose revision is not the
update revision from the highest ordinal down to the partition, one at a time, each only
after every pod is Running and Ready; OnDelete replaces a pod only when it is deleted.
Pods below the partition are (re)created from the current revision.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import AlreadyExistsError
from capstan.client import NORMAL, Controller, Informer
from capstan.machinery.labels import selector_from_proto

from controller import podutil
from controller.common import owned, owner_informer, pod_informer, track_owned_pods, write_status
from controller.ownership import claim, owner_reference
from controller.registry import ControllerContext
from controller.revisions import REVISION_HASH_LABEL, sync_revisions, template_of, truncate_history

StatefulSet = apps_pb2.StatefulSet
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(sts_name: str, pod: core_pb2.Pod) -> int | None:
    m = re.fullmatch(re.escape(sts_name) + r"-(\d+)", pod.metadata.name)
    return int(m.group(1)) if m else None


def claim_name(template: core_pb2.PersistentVolumeClaim, sts: StatefulSet, ordinal: int) -> str:
    return f"{template.metadata.name}-{sts.metadata.name}-{ordinal}"


def running_and_ready(pod: core_pb2.Pod) -> bool:
    return (
        pod.status.phase == podutil.RUNNING
        and podutil.is_ready(pod)
        and not podutil.is_terminating(pod)
    )


def new_pod(
    sts: StatefulSet, template: core_pb2.PodTemplateSpec, revision: str, ordinal: int
) -> core_pb2.Pod:
    name = f"{sts.metadata.name}-{ordinal}"
    pod = core_pb2.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = sts.metadata.namespace
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.labels[POD_NAME_LABEL] = name
    pod.metadata.labels[POD_INDEX_LABEL] = str(ordinal)
    pod.metadata.labels[REVISION_HASH_LABEL] = revision
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.owner_references.append(owner_reference(sts))
    pod.spec.CopyFrom(template.spec)
    pod.spec.hostname = name
    pod.spec.subdomain = sts.spec.service_name
    for claim_t in sts.spec.volume_claim_templates:
        volume_name = claim_t.metadata.name
        kept = [v for v in pod.spec.volumes if v.name != volume_name]
        del pod.spec.volumes[:]
        pod.spec.volumes.extend(kept)
        vol = pod.spec.volumes.add(name=volume_name)
        vol.persistent_volume_claim.claim_name = claim_name(claim_t, sts, ordinal)
    return pod


@dataclass(frozen=True)
class _Plan:
    start: int
    replicas: int
    update_rev: str
    current_rev: str
    templates: dict[str, core_pb2.PodTemplateSpec]
    partition: int
    rolling: bool


class StatefulSetLoop:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.sets: Informer[StatefulSet] = ctx.informers.for_resource(ctx.client.statefulsets)
        self.pods = pod_informer(ctx)
        self.revisions = owner_informer(ctx, ctx.client.controllerrevisions)
        self.claims = ctx.informers.for_resource(ctx.client.persistentvolumeclaims)
        self.controller = Controller(
            "statefulset", self.reconcile, workers=ctx.workers("statefulset")
        )
        self.controller.watch(self.sets)
        self.controller.informers.extend([self.revisions, self.claims])
        track_owned_pods(self.pods, "StatefulSet", self.controller)

    async def reconcile(self, key: str) -> float | None:
        cached = self.sets.get_by_key(key)
        if cached is None:
            return None
        sts = copy.deepcopy(cached)
        ns, name = sts.metadata.namespace, sts.metadata.name
        pods = await claim(
            sts, selector_from_proto(sts.spec.selector), self.pods.list(ns), self.pods.resource
        )
        collision = sts.status.collision_count if sts.status.HasField("collision_count") else None
        update, history = await sync_revisions(
            self.client, sts, owned(self.revisions, sts.metadata.uid), sts.spec.template, collision
        )
        update_rev = update.metadata.name
        current_rev = sts.status.current_revision or update_rev
        current = next((r for r in history if r.metadata.name == current_rev), update)
        templates = {update_rev: sts.spec.template, current.metadata.name: template_of(current)}

        replicas = sts.spec.replicas if sts.spec.HasField("replicas") else 1
        start = sts.spec.ordinals.start
        by_ordinal: dict[int, core_pb2.Pod] = {}
        for p in pods:
            o = ordinal_of(name, p)
            if o is not None:
                by_ordinal[o] = p
        rolling = sts.spec.update_strategy.type != "OnDelete"
        partition = sts.spec.update_strategy.rolling_update.partition if rolling else 0

        if not sts.metadata.HasField("deletion_timestamp"):
            plan = _Plan(
                start, replicas, update_rev, current.metadata.name, templates, partition, rolling
            )
            await self._sync_pods(sts, by_ordinal, plan)

        live = owned(self.pods, sts.metadata.uid)
        status = apps_pb2.StatefulSetStatus()
        status.CopyFrom(sts.status)
        status.observed_generation = sts.metadata.generation
        status.replicas = sum(1 for p in live if not podutil.is_terminating(p))
        status.ready_replicas = sum(1 for p in live if running_and_ready(p))
        status.available_replicas = sum(
            1
            for p in live
            if running_and_ready(p) and podutil.is_available(p, sts.spec.min_ready_seconds)
        )
        revs = [
            p.metadata.labels.get(REVISION_HASH_LABEL, "")
            for p in live
            if not podutil.is_terminating(p)
        ]
        status.updated_replicas = revs.count(update_rev)
        status.current_replicas = revs.count(current.metadata.name)
        status.update_revision = update_rev
        status.current_revision = current.metadata.name
        if (
            status.updated_replicas == replicas
            and status.ready_replicas == replicas
            and len(revs) == replicas
        ):
            status.current_revision = update_rev
            status.current_replicas = status.updated_replicas
        await write_status(self.client.statefulsets, cached, status)
        limit = (
            sts.spec.revision_history_limit if sts.spec.HasField("revision_history_limit") else 10
        )
        in_use = {update_rev, status.current_revision, *revs}
        await truncate_history(self.client, history, in_use, limit)
        return None

    async def _sync_pods(
        self,
        sts: StatefulSet,
        by_ordinal: dict[int, core_pb2.Pod],
        plan: _Plan,
    ) -> None:
        start, replicas, partition, rolling = (
            plan.start,
            plan.replicas,
            plan.partition,
            plan.rolling,
        )
        update_rev, current_rev, templates = plan.update_rev, plan.current_rev, plan.templates
        monotonic = sts.spec.pod_management_policy != "Parallel"
        wanted = range(start, start + replicas)
        # 1. Every wanted ordinal has a healthy pod (in order when monotonic).
        for ordinal in wanted:
            pod = by_ordinal.get(ordinal)
            if pod is None:
                rev = current_rev if rolling and ordinal - start < partition else update_rev
                await self._create(sts, ordinal, rev, templates[rev])
                if monotonic:
                    return
                continue
            if pod.status.phase in (
                podutil.FAILED,
                podutil.SUCCEEDED,
            ) and not podutil.is_terminating(pod):
                await self._delete(sts, pod)
                if monotonic:
                    return
                continue
            if monotonic and not running_and_ready(pod):
                return
        # 2. Condemned pods go from the highest ordinal down.
        condemned = sorted((o for o in by_ordinal if o not in wanted), reverse=True)
        for ordinal in condemned:
            pod = by_ordinal[ordinal]
            if podutil.is_terminating(pod):
                if monotonic:
                    return
                continue
            await self._delete(sts, pod)
            if monotonic:
                return
        # 3. Rolling update from the highest ordinal down to the partition.
        if not rolling:
            return
        for ordinal in sorted(wanted, reverse=True):
            if ordinal - start < partition:
                break
            pod = by_ordinal.get(ordinal)
            if pod is None or podutil.is_terminating(pod):
                return
            if pod.metadata.labels.get(REVISION_HASH_LABEL) != update_rev:
                await self._delete(sts, pod)
                return
            if not running_and_ready(pod):
                return

    async def _create(
        self, sts: StatefulSet, ordinal: int, revision: str, template: core_pb2.PodTemplateSpec
    ) -> None:
        ns = sts.metadata.namespace
        for claim_t in sts.spec.volume_claim_templates:
            pvc_name = claim_name(claim_t, sts, ordinal)
            if self.claims.get(pvc_name, ns) is not None:
                continue
            pvc = core_pb2.PersistentVolumeClaim()
            pvc.metadata.name = pvc_name
            pvc.metadata.namespace = ns
            pvc.metadata.labels.update(claim_t.metadata.labels)
            pvc.metadata.labels.update(sts.spec.selector.match_labels)
            pvc.spec.CopyFrom(claim_t.spec)
            try:
                await self.client.persistentvolumeclaims.create(pvc)
                self.recorder.record(sts, NORMAL, "SuccessfulCreate",
                                     f"create Claim {pvc_name} Pod {sts.metadata.name}-{ordinal} "
                                     f"in StatefulSet {sts.metadata.name} success")  # fmt: skip
            except AlreadyExistsError:
                pass
        pod = new_pod(sts, template, revision, ordinal)
        try:
            await self.client.pods.create(pod)
        except AlreadyExistsError:
            return
        self.recorder.record(sts, NORMAL, "SuccessfulCreate",
                             f"create Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} "
                             "successful")  # fmt: skip

    async def _delete(self, sts: StatefulSet, pod: core_pb2.Pod) -> None:
        await self.client.pods.delete(pod.metadata.name, pod.metadata.namespace)
        self.recorder.record(sts, NORMAL, "SuccessfulDelete",
                             f"delete Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} "
                             "successful")  # fmt: skip


def new_statefulset_controller(ctx: ControllerContext) -> Controller:
    return StatefulSetLoop(ctx).controller

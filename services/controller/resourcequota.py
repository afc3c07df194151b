"""The resource quota controller: keeps every ResourceQuota's status (hard, used) equal to
what its namespace actually holds.

The apiserver's quota admission raises status.used as it admits creates; this loop is the
other half (Kubernetes' replenishment): it recounts from the informers' caches when
objects are deleted, finish, or cost less, and when a quota is created or changed.
Usage is computed by capstan.machinery.quota, the same code admission uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Controller, Informer, SharedInformerFactory, split_key
from capstan.machinery import kinds
from capstan.machinery import quota as q

from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

# Kinds measured by the classic quota resource names; informers on these start with the loop.
CORE_KINDS = tuple(sorted(set(q.OBJECT_COUNTS.values())))
SYNC_TIMEOUT = 30.0


def desired_status(quota: Any, objects_of: Any) -> core_pb2.ResourceQuotaStatus:
    status = core_pb2.ResourceQuotaStatus()
    status.hard.update(quota.spec.hard)
    status.used.update(q.format_usage(q.namespace_usage(quota, objects_of)))
    return status


class ResourceQuotaController:
    def __init__(
        self,
        client: Any,
        factory: SharedInformerFactory,
        *,
        workers: int = 5,
    ) -> None:
        self.client = client
        self.factory = factory
        self.informers: dict[str, Informer[Any]] = {}
        self.quotas: Informer[core_pb2.ResourceQuota] = factory.for_resource(client.resourcequotas)
        self.controller = Controller("resourcequota", self.reconcile, workers=workers)
        self.controller.informers.append(self.quotas)

        def quota_added(obj: Any) -> None:
            self.controller.enqueue(f"{obj.metadata.namespace}/{obj.metadata.name}")

        def quota_updated(old: Any, new: Any) -> None:
            # Admission's charges change status only; a recount then could race them.
            if old.spec != new.spec or dict(new.status.hard) != dict(new.spec.hard):
                quota_added(new)

        self.quotas.add_event_handler(quota_added, quota_updated)
        for kind in CORE_KINDS:
            self.controller.informers.append(self._informer(kind))

    def _informer(self, kind: str) -> Informer[Any]:
        """The informer of a measured kind, wired to recount its namespace's quotas."""
        informer = self.informers.get(kind)
        if informer is not None:
            return informer
        informer = self.factory.informer(kind)
        self.informers[kind] = informer
        row = kinds.by_kind(kind)

        def deleted(obj: Any) -> None:
            self._enqueue_namespace(obj.metadata.namespace)

        def updated(old: Any, new: Any) -> None:
            before = q.usage(row, old) if q.counts_toward_quota(kind, old) else {}
            after = q.usage(row, new) if q.counts_toward_quota(kind, new) else {}
            if any(after.get(r, 0) < v for r, v in before.items()):
                self._enqueue_namespace(new.metadata.namespace)

        # Creates are charged by admission; recounting on them would race it (a cache that
        # has not seen the newest create would undercount), so, as in Kubernetes, only
        # what frees quota (replenishment) triggers a recount.
        informer.add_event_handler(None, updated, deleted)
        return informer

    def _enqueue_namespace(self, namespace: str) -> None:
        for quota in self.quotas.list(namespace):
            self.controller.enqueue(f"{namespace}/{quota.metadata.name}")

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        quota = self.quotas.get(name, namespace)
        if quota is None:
            return None
        needed: dict[str, Informer[Any]] = {}
        for resource in quota.spec.hard:
            kind = q.kind_of_resource(resource)
            if kind is not None:
                needed[kind] = self._informer(kind)
        for kind, informer in needed.items():
            informer.start()
            if not await informer.wait_for_sync(SYNC_TIMEOUT):
                raise TimeoutError(f"informer for {kind} did not sync")

        def objects_of(kind: str) -> Iterable[Any]:
            return needed[kind].list(namespace)

        want = desired_status(quota, objects_of)
        if quota.status == want:
            return None
        new = core_pb2.ResourceQuota()
        new.CopyFrom(quota)
        new.status.CopyFrom(want)
        try:
            await self.client.resourcequotas.update_status(new)
        except NotFoundError:
            return None
        return None


def new_resourcequota_controller(ctx: ControllerContext) -> Controller:
    c = ResourceQuotaController(ctx.client, ctx.informers, workers=ctx.workers("resourcequota", 5))
    return c.controller

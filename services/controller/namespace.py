"""The namespace controller: empties a namespace being deleted, then lets it go.

A deleted namespace stays (phase Terminating) while its spec.finalizers holds "kubernetes".
This loop deletes every object of every namespaced kind in it, reports what remains in the
namespace's conditions as Kubernetes does (NamespaceContentRemaining,
NamespaceDeletionContentFailure, NamespaceFinalizersRemaining), looks again until nothing
is left, then removes its finalizer with an Update - the apiserver removes the namespace
when the last finalizer goes.
"""

from __future__ import annotations

from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError, ConflictError, NotFoundError
from capstan.client import Controller, Informer
from capstan.machinery import kinds

from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

FINALIZER = "kubernetes"
RECHECK_SECONDS = 1.0


def namespaced_kinds() -> list[kinds.Kind]:
    return [k for k in kinds.all_kinds() if k.namespaced]


def set_condition(ns: Any, ctype: str, status: str, reason: str, message: str) -> bool:
    for c in ns.status.conditions:
        if c.type == ctype:
            if (c.status, c.reason, c.message) == (status, reason, message):
                return False
            if c.status != status:
                c.last_transition_time.GetCurrentTime()
            c.status, c.reason, c.message = status, reason, message
            return True
    c = ns.status.conditions.add(type=ctype, status=status, reason=reason, message=message)
    c.last_transition_time.GetCurrentTime()
    return True


def remaining_message(remaining: dict[str, int]) -> str:
    parts = [f"{r} has {n} resource instances" for r, n in sorted(remaining.items())]
    return "Some resources are remaining: " + ", ".join(parts)


class NamespaceController:
    def __init__(
        self, client: Any, namespaces: Informer[core_pb2.Namespace], *, workers: int = 2
    ) -> None:
        self.client = client
        self.namespaces = namespaces
        self.controller = Controller("namespace", self.reconcile, workers=workers)
        self.controller.watch(namespaces)

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or not ns.metadata.HasField("deletion_timestamp"):
            return None
        if FINALIZER not in ns.spec.finalizers:
            return None
        remaining, failures = await self._delete_content(key)
        if remaining or failures:
            await self._report(ns, remaining, failures)
            return RECHECK_SECONDS
        new = core_pb2.Namespace()
        new.CopyFrom(ns)
        keep = [f for f in new.spec.finalizers if f != FINALIZER]
        del new.spec.finalizers[:]
        new.spec.finalizers.extend(keep)
        try:
            await self.client.namespaces.update(new)
        except NotFoundError:
            return None
        log.info("namespace emptied; finalizer removed", namespace=key)
        return None

    async def _delete_content(self, namespace: str) -> tuple[dict[str, int], list[str]]:
        """Delete everything in the namespace; (resource -> objects still there, errors)."""
        remaining: dict[str, int] = {}
        failures: list[str] = []
        for kind in namespaced_kinds():
            rc = self.client.resource(kind)
            try:
                items, _ = await rc.list_all(namespace)
            except ApiError as e:
                failures.append(f"{kind.resource}: {e.message}")
                continue
            if not items:
                continue
            remaining[kind.resource] = len(items)
            for obj in items:
                if obj.metadata.HasField("deletion_timestamp"):
                    continue
                try:
                    await rc.delete(
                        obj.metadata.name, namespace, preconditions_uid=obj.metadata.uid
                    )
                except (NotFoundError, ConflictError):
                    continue
                except ApiError as e:
                    failures.append(f"{kind.resource} {obj.metadata.name}: {e.message}")
        return remaining, failures

    async def _report(self, ns: Any, remaining: dict[str, int], failures: list[str]) -> None:
        new = core_pb2.Namespace()
        new.CopyFrom(ns)
        changed = set_condition(
            new,
            "NamespaceContentRemaining",
            "True" if remaining else "False",
            "SomeResourcesRemain" if remaining else "ContentRemoved",
            remaining_message(remaining) if remaining else "All content successfully removed",
        )
        changed = (
            set_condition(
                new,
                "NamespaceDeletionContentFailure",
                "True" if failures else "False",
                "ContentDeletionFailed" if failures else "ContentDeleted",
                "; ".join(failures)[:1024] if failures else "All content successfully deleted",
            )
            or changed
        )
        if changed:
            try:
                await self.client.namespaces.update_status(new)
            except (NotFoundError, ConflictError):
                return


def new_namespace_controller(ctx: ControllerContext) -> Controller:
    c = NamespaceController(
        ctx.client,
        ctx.informers.for_resource(ctx.client.namespaces),
        workers=ctx.workers("namespace", 2),
    )
    return c.controller

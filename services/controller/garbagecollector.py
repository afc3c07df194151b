"""The garbage collector: deletes objects whose owners are gone, and carries out the
foreground and orphan deletion of owners (Kubernetes' ownerReferences semantics).

It keeps a graph of every object of every kind, reduced to what ownership needs - uid ->
(kind, namespace, name, owner references, deleting, finalizers) - plus the reverse index
owner uid -> dependent uids, built from the shared informers' events. Work is keyed by uid:
- an object whose owners have all vanished is deleted (background propagation); owners
  missing from the graph are looked up live first, since the graph may lag a create;
  dangling references next to a live owner are removed;
- an owner being deleted with the "orphan" finalizer: its references are removed from every
  dependent, then the finalizer;
- an owner being deleted with the "foregroundDeletion" finalizer: its dependents are
  deleted (themselves in the foreground), and once none with blockOwnerDeletion remains
  the finalizer is removed, which completes the owner's deletion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from capstan.apierrors import ConflictError, NotFoundError
from capstan.client import Controller, Informer
from capstan.machinery import kinds
from capstan.machinery.kinds import Kind

from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# Kinds that never own nor are owned in practice, and churn too much to mirror.
IGNORED_KINDS = ("Event",)


@dataclass(frozen=True, slots=True)
class OwnerRef:
    uid: str
    kind: str
    name: str
    block: bool


@dataclass(frozen=True, slots=True)
class GraphNode:
    kind: str
    namespace: str
    name: str
    owners: tuple[OwnerRef, ...]
    deleting: bool
    finalizers: frozenset[str]


def graph_node(kind: str, obj: Any) -> GraphNode:
    meta = obj.metadata
    owners = tuple(
        OwnerRef(r.uid, r.kind, r.name, bool(r.block_owner_deletion)) for r in meta.owner_references
    )
    return GraphNode(
        kind,
        meta.namespace,
        meta.name,
        owners,
        meta.HasField("deletion_timestamp"),
        frozenset(meta.finalizers),
    )


class Graph:
    """uid -> GraphNode and owner uid -> dependent uids."""

    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.dependents: dict[str, set[str]] = {}

    def upsert(self, uid: str, node: GraphNode) -> GraphNode | None:
        old = self.nodes.get(uid)
        self.nodes[uid] = node
        before = {o.uid for o in old.owners} if old else set()
        after = {o.uid for o in node.owners}
        for owner in before - after:
            self._unlink(owner, uid)
        for owner in after - before:
            self.dependents.setdefault(owner, set()).add(uid)
        return old

    def remove(self, uid: str) -> GraphNode | None:
        old = self.nodes.pop(uid, None)
        if old is not None:
            for o in old.owners:
                self._unlink(o.uid, uid)
        return old

    def _unlink(self, owner: str, uid: str) -> None:
        deps = self.dependents.get(owner)
        if deps is not None:
            deps.discard(uid)
            if not deps:
                del self.dependents[owner]

    def dependents_of(self, uid: str) -> list[str]:
        return sorted(self.dependents.get(uid, ()))


def owner_namespace(ref_kind: str, dependent_namespace: str) -> str:
    try:
        return dependent_namespace if kinds.by_kind(ref_kind).namespaced else ""
    except KeyError:
        return dependent_namespace


class GarbageCollector:
    def __init__(
        self, client: Any, informers: dict[str, Informer[Any]], *, workers: int = 5
    ) -> None:
        self.client = client
        self.informers = informers
        self.graph = Graph()
        self.controller = Controller("garbagecollector", self.reconcile, workers=workers)
        for kind, informer in informers.items():
            self._wire(kind, informer)
            self.controller.informers.append(informer)

    # ------------------------------------------------------------------ graph upkeep
    def _wire(self, kind: str, informer: Informer[Any]) -> None:
        def on_add(obj: Any) -> None:
            self._observe(kind, obj)

        def on_update(_old: Any, new: Any) -> None:
            self._observe(kind, new)

        def on_delete(obj: Any) -> None:
            uid = obj.metadata.uid
            old = self.graph.remove(uid)
            for dep in self.graph.dependents_of(uid):
                self.controller.enqueue(dep)
            for owner in old.owners if old else ():
                self._poke_deleting_owner(owner.uid)

        informer.add_event_handler(on_add, on_update, on_delete)

    def _observe(self, kind: str, obj: Any) -> None:
        uid = obj.metadata.uid
        node = graph_node(kind, obj)
        old = self.graph.upsert(uid, node)
        if node.owners or (node.deleting and node.finalizers & {ORPHAN, FOREGROUND}):
            self.controller.enqueue(uid)
        if node.deleting and (old is None or not old.deleting):
            for owner in node.owners:
                self._poke_deleting_owner(owner.uid)
        if old is not None and old.owners != node.owners:
            for owner in old.owners:
                self._poke_deleting_owner(owner.uid)
        if node.deleting and self.graph.dependents_of(uid):
            self.controller.enqueue(uid)

    def _poke_deleting_owner(self, owner_uid: str) -> None:
        owner = self.graph.nodes.get(owner_uid)
        if owner is not None and owner.deleting and FOREGROUND in owner.finalizers:
            self.controller.enqueue(owner_uid)

    # ------------------------------------------------------------------ reconcile
    def _cached(self, uid: str) -> tuple[GraphNode, Any] | None:
        node = self.graph.nodes.get(uid)
        if node is None:
            return None
        informer = self.informers.get(node.kind)
        obj = informer.get(node.name, node.namespace) if informer else None
        if obj is None or obj.metadata.uid != uid:
            return None
        return node, obj

    async def reconcile(self, uid: str) -> float | None:
        found = self._cached(uid)
        if found is None:
            return None
        node, obj = found
        if node.deleting and ORPHAN in node.finalizers:
            await self._orphan_dependents(uid, node, obj)
            return None
        if node.deleting and FOREGROUND in node.finalizers:
            return await self._delete_dependents(uid, node, obj)
        if node.owners:
            await self._check_owners(uid, node, obj)
        return None

    async def _owner_state(self, ref: OwnerRef, namespace: str) -> str:
        """solid, waiting (deleting in the foreground) or absent."""
        owner = self.graph.nodes.get(ref.uid)
        if owner is None:
            try:
                live = await self.client.resource(ref.kind).get(
                    ref.name, owner_namespace(ref.kind, namespace)
                )
            except (NotFoundError, KeyError):
                return "absent"
            if live.metadata.uid != ref.uid:
                return "absent"
            owner = graph_node(ref.kind, live)
        if owner.deleting and FOREGROUND in owner.finalizers:
            return "waiting"
        return "solid"

    async def _check_owners(self, uid: str, node: GraphNode, obj: Any) -> None:
        states = {ref.uid: await self._owner_state(ref, node.namespace) for ref in node.owners}
        if any(s == "solid" for s in states.values()):
            dangling = {u for u, s in states.items() if s == "absent"}
            if dangling:
                await self._remove_refs(node, obj, dangling)
            return
        if node.deleting:
            return
        waiting = any(s == "waiting" for s in states.values())
        policy = "Foreground" if waiting else "Background"
        log.info(
            "deleting dependent whose owners are gone",
            kind=node.kind,
            namespace=node.namespace,
            name=node.name,
            propagation=policy,
        )
        await self._delete(node, uid, policy)

    async def _delete(self, node: GraphNode, uid: str, policy: str) -> None:
        try:
            await self.client.resource(node.kind).delete(
                node.name, node.namespace, propagation_policy=policy, preconditions_uid=uid
            )
        except (NotFoundError, ConflictError):
            return

    async def _remove_refs(self, node: GraphNode, obj: Any, owners: set[str]) -> None:
        new = type(obj)()
        new.CopyFrom(obj)
        keep = [r for r in new.metadata.owner_references if r.uid not in owners]
        del new.metadata.owner_references[:]
        new.metadata.owner_references.extend(keep)
        try:
            await self.client.resource(node.kind).update(new)
        except NotFoundError:
            return

    async def _remove_finalizer(self, node: GraphNode, obj: Any, finalizer: str) -> None:
        new = type(obj)()
        new.CopyFrom(obj)
        keep = [f for f in new.metadata.finalizers if f != finalizer]
        del new.metadata.finalizers[:]
        new.metadata.finalizers.extend(keep)
        try:
            await self.client.resource(node.kind).update(new)
        except NotFoundError:
            return

    async def _orphan_dependents(self, uid: str, node: GraphNode, obj: Any) -> None:
        for dep_uid in self.graph.dependents_of(uid):
            dep = self._cached(dep_uid)
            if dep is not None:
                await self._remove_refs(dep[0], dep[1], {uid})
        log.info("orphaned dependents", kind=node.kind, namespace=node.namespace, name=node.name)
        await self._remove_finalizer(node, obj, ORPHAN)

    async def _delete_dependents(self, uid: str, node: GraphNode, obj: Any) -> float | None:
        blocking = 0
        for dep_uid in self.graph.dependents_of(uid):
            dep = self._cached(dep_uid)
            if dep is None:
                continue
            dep_node, _ = dep
            if any(o.uid == uid and o.block for o in dep_node.owners):
                blocking += 1
            if not dep_node.deleting:
                await self._delete(dep_node, dep_uid, "Foreground")
        if blocking:
            # Woken by the dependents' deletions; the delay only guards a missed event.
            return 5.0
        await self._remove_finalizer(node, obj, FOREGROUND)
        return None


def gc_kinds() -> list[Kind]:
    return [k for k in kinds.all_kinds() if k.kind not in IGNORED_KINDS]


def new_garbagecollector_controller(ctx: ControllerContext) -> Controller:
    informers = {k.kind: ctx.informers.informer(k) for k in gc_kinds()}
    gc = GarbageCollector(ctx.client, informers, workers=ctx.workers("garbagecollector", 5))
    return gc.controller

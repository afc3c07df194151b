"""Wiring shared by the workload loops: the pod informer with its owner index, mapping a
pod event to the owner key to sync, and writing status only when it changed."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ConflictError
from capstan.client import (
    OWNER_UID_INDEX,
    Controller,
    Informer,
    ResourceClient,
    index_by_owner_uid,
)
from capstan.client.indexer import object_key
from google.protobuf.message import Message

from controller.expectations import Expectations
from controller.registry import ControllerContext

T = TypeVar("T", bound=Message)


def pod_informer(ctx: ControllerContext) -> Informer[core_pb2.Pod]:
    return ctx.informers.for_resource(
        ctx.client.pods, indexers={OWNER_UID_INDEX: index_by_owner_uid}
    )


def owner_informer(ctx: ControllerContext, resource: ResourceClient[T]) -> Informer[T]:
    return ctx.informers.for_resource(resource, indexers={OWNER_UID_INDEX: index_by_owner_uid})


def controller_key(obj: Any, kind: str) -> str | None:
    """namespace/name of obj's controlling owner if it is of the given kind."""
    for ref in obj.metadata.owner_references:
        if ref.controller and ref.kind == kind:
            ns = obj.metadata.namespace
            return f"{ns}/{ref.name}" if ns else str(ref.name)
    return None


def owned(informer: Informer[Any], owner_uid: str) -> list[Any]:
    """Objects whose controller reference names owner_uid (via the owner index)."""
    return [
        o
        for o in informer.by_index(OWNER_UID_INDEX, owner_uid)
        if any(r.uid == owner_uid and r.controller for r in o.metadata.owner_references)
    ]


async def write_status(resource: ResourceClient[T], obj: T, status: Message) -> T:
    """update_status with the new status if it differs from the cached one. A conflict
    means the cache is behind: the newer object's watch event syncs the owner again, so
    it is not an error."""
    if obj.status == status:  # type: ignore[attr-defined]
        return obj
    new = copy.deepcopy(obj)
    new.status.CopyFrom(status)  # type: ignore[attr-defined]
    try:
        return await resource.update_status(new)
    except ConflictError:
        return obj


def track_owned_pods(
    pods: Informer[core_pb2.Pod],
    kind: str,
    controller: Controller,
    expectations: Expectations | None = None,
) -> None:
    """Pod events -> the owning controller's key, lowering its expectations on the way:
    an add is an observed creation, a pod turning terminating or vanishing an observed
    deletion."""
    if pods not in controller.informers:
        controller.informers.append(pods)

    def added(pod: core_pb2.Pod) -> None:
        key = controller_key(pod, kind)
        if key is not None:
            if expectations is not None:
                expectations.creation_observed(key)
            controller.enqueue(key)

    def updated(old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        key = controller_key(new, kind)
        old_key = controller_key(old, kind)
        if (
            key is not None
            and expectations is not None
            and new.metadata.HasField("deletion_timestamp")
            and not old.metadata.HasField("deletion_timestamp")
        ):
            expectations.deletion_observed(key, object_key(new))
        for k in {key, old_key}:
            if k is not None:
                controller.enqueue(k)

    def deleted(pod: core_pb2.Pod) -> None:
        key = controller_key(pod, kind)
        if key is not None:
            if expectations is not None:
                expectations.deletion_observed(key, object_key(pod))
            controller.enqueue(key)

    pods.add_event_handler(added, updated, deleted)

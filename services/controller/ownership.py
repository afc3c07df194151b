"""Owner references: which controller a pod (or ReplicaSet, PVC, revision) belongs to,
and Kubernetes' ControllerRefManager claim rules - adopt matching orphans, release owned
objects whose labels no longer match, never touch what another controller owns."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, TypeVar

import structlog
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import ConflictError, NotFoundError
from capstan.client import ResourceClient
from capstan.machinery import kinds
from capstan.machinery.labels import Selector
from google.protobuf.message import Message

log = structlog.get_logger(__name__)

T = TypeVar("T", bound=Message)


def owner_reference(owner: Message) -> meta_pb2.OwnerReference:
    """The controller reference an owner puts on what it creates."""
    kind = kinds.by_message(owner)
    meta = owner.metadata  # type: ignore[attr-defined]
    return meta_pb2.OwnerReference(
        api_version=kind.api_version,
        kind=kind.kind,
        name=meta.name,
        uid=meta.uid,
        controller=True,
        block_owner_deletion=True,
    )


def controller_of(obj: Any) -> meta_pb2.OwnerReference | None:
    for ref in obj.metadata.owner_references:
        if ref.controller:
            return ref  # type: ignore[no-any-return]
    return None


def is_controlled_by(obj: Any, owner_uid: str) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.uid == owner_uid


def _deleting(obj: Any) -> bool:
    return bool(obj.metadata.HasField("deletion_timestamp"))


async def claim(
    owner: Message,
    selector: Selector,
    candidates: Iterable[T],
    resource: ResourceClient[T],
    *,
    labels_of: Any = None,
) -> list[T]:
    """The candidates the owner controls after adopting orphans that match its selector
    and releasing owned ones that no longer match. A failed adopt/release (conflict, gone)
    just leaves the object out; the next sync tries again from fresh state."""
    meta = owner.metadata  # type: ignore[attr-defined]
    owner_deleting = _deleting(owner)
    get_labels = labels_of or (lambda o: o.metadata.labels)
    out: list[T] = []
    for obj in candidates:
        ref = controller_of(obj)
        matches = selector.matches(get_labels(obj))
        if ref is not None:
            if ref.uid != meta.uid:
                continue
            if matches:
                out.append(obj)
            elif not owner_deleting:
                await _release(obj, meta.uid, resource)
            continue
        if owner_deleting or not matches or _deleting(obj):
            continue
        adopted = await _adopt(obj, owner, resource)
        if adopted is not None:
            out.append(adopted)
    return out


async def _adopt(obj: T, owner: Message, resource: ResourceClient[T]) -> T | None:
    new = copy.deepcopy(obj)
    new.metadata.owner_references.append(owner_reference(owner))  # type: ignore[attr-defined]
    try:
        return await resource.update(new)
    except (ConflictError, NotFoundError):
        return None


async def _release(obj: T, owner_uid: str, resource: ResourceClient[T]) -> None:
    new = copy.deepcopy(obj)
    refs = new.metadata.owner_references  # type: ignore[attr-defined]
    keep = [r for r in refs if r.uid != owner_uid]
    del refs[:]
    refs.extend(keep)
    try:
        await resource.update(new)
    except (ConflictError, NotFoundError):
        return

"""ControllerRevision history for DaemonSets and StatefulSets: each distinct pod template
is one immutable ControllerRevision <owner>-<hash> whose data is {"spec": {"template":
...}} (the shape `capstan rollout history/undo` reads). Going back to an old template
reuses its revision object under the next revision number, as Kubernetes does."""

from __future__ import annotations

from collections.abc import Iterable

from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import AlreadyExistsError
from capstan.client import Client
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from controller.hashing import compute_hash
from controller.ownership import owner_reference

ControllerRevision = apps_pb2.ControllerRevision
REVISION_HASH_LABEL = "controller-revision-hash"


def revision_data(template: core_pb2.PodTemplateSpec) -> Struct:
    data = Struct()
    json_format.ParseDict({"spec": {"template": json_format.MessageToDict(template)}}, data)
    return data


def template_of(revision: ControllerRevision) -> core_pb2.PodTemplateSpec:
    raw = json_format.MessageToDict(revision.data).get("spec", {}).get("template", {})
    template = core_pb2.PodTemplateSpec()
    json_format.ParseDict(raw, template, ignore_unknown_fields=True)
    return template


def hash_of(template: core_pb2.PodTemplateSpec, collision_count: int | None) -> str:
    return compute_hash(revision_data(template), collision_count)


async def sync_revisions(
    client: Client,
    owner: Message,
    owned: Iterable[ControllerRevision],
    template: core_pb2.PodTemplateSpec,
    collision_count: int | None,
) -> tuple[ControllerRevision, list[ControllerRevision]]:
    """The update revision for the owner's current template (created, or an old one
    renumbered to the top) and every owned revision after the change, oldest first."""
    revisions = sorted(owned, key=lambda r: (r.revision, r.metadata.name))
    top = revisions[-1].revision if revisions else 0
    data = revision_data(template)
    equal = [r for r in revisions if r.data == data]
    if equal:
        chosen = equal[-1]
        if chosen.revision != top:
            chosen = await _renumber(client, chosen, top + 1)
            revisions = [r for r in revisions if r.metadata.name != chosen.metadata.name]
            revisions.append(chosen)
        return chosen, revisions
    meta = owner.metadata  # type: ignore[attr-defined]
    h = compute_hash(data, collision_count)
    cr = ControllerRevision()
    cr.metadata.name = f"{meta.name}-{h}"
    cr.metadata.namespace = meta.namespace
    cr.metadata.labels.update(template.metadata.labels)
    cr.metadata.labels[REVISION_HASH_LABEL] = h
    cr.metadata.owner_references.append(owner_reference(owner))
    cr.data.CopyFrom(data)
    cr.revision = top + 1
    try:
        created = await client.controllerrevisions.create(cr)
    except AlreadyExistsError:
        existing = await client.controllerrevisions.get(cr.metadata.name, cr.metadata.namespace)
        if existing.data != data:
            raise
        created = await _renumber(client, existing, top + 1)
    revisions = [r for r in revisions if r.metadata.name != created.metadata.name]
    revisions.append(created)
    return created, revisions


async def _renumber(client: Client, cr: ControllerRevision, revision: int) -> ControllerRevision:
    new = ControllerRevision()
    new.CopyFrom(cr)
    new.revision = revision
    return await client.controllerrevisions.update(new)


async def truncate_history(
    client: Client, revisions: list[ControllerRevision], live: set[str], limit: int
) -> None:
    """Delete the oldest revisions no pod runs beyond the history limit."""
    unused = [r for r in revisions if r.metadata.name not in live]
    for r in unused[: max(0, len(unused) - limit)]:
        await client.controllerrevisions.delete(r.metadata.name, r.metadata.namespace)

"""How objects live in the store: keys, encoding, and the wire encoding of lists and watch
events built from already-serialised objects (so a List of 10k pods or an event fanned
out to 1000 watchers is serialised once, never per reader)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import BadRequestError
from capstan.machinery.kinds import Kind
from capstan.store import KeyValue
from google.protobuf.message import Message

from apiserver.grpc_parse import MAX_OBJECT_BYTES


def kind_prefix(kind: Kind) -> str:
    return f"/registry/{kind.storage_group}/{kind.plural}/"


def namespace_prefix(kind: Kind, namespace: str) -> str:
    """The key prefix holding one namespace's objects (all objects if namespace is '')."""
    if kind.namespaced and namespace:
        return f"{kind_prefix(kind)}{namespace}/"
    return kind_prefix(kind)


def object_key(kind: Kind, namespace: str, name: str) -> str:
    if kind.namespaced:
        return f"{kind_prefix(kind)}{namespace}/{name}"
    return f"{kind_prefix(kind)}{name}"


@dataclass(frozen=True, slots=True)
class Stored:
    """One object version: the decoded message (resource_version set) and its bytes."""

    obj: Any
    data: bytes
    revision: int


def encode_for_store(obj: Message) -> bytes:
    """Objects are stored without resource_version: the store's mod revision is the truth.

    The size limit is checked here as well as on the request: the fields the server adds
    (uid, timestamps, defaults) can push an object just under the limit over it, which
    etcd would refuse with an opaque error and SQLite would store."""
    meta = obj.metadata  # type: ignore[attr-defined]
    rv = meta.resource_version
    meta.resource_version = ""
    try:
        data = obj.SerializeToString()
    finally:
        meta.resource_version = rv
    if len(data) > MAX_OBJECT_BYTES:
        raise BadRequestError(
            f"object is too large: {len(data)} bytes once stored, limit is {MAX_OBJECT_BYTES}",
            metadata={"limit": str(MAX_OBJECT_BYTES)},
        )
    return data


def decode(kind: Kind, kv: KeyValue, revision: int | None = None) -> Stored:
    obj = kind.message.FromString(kv.value)
    rev = kv.mod_revision if revision is None else revision
    obj.metadata.resource_version = str(rev)  # type: ignore[attr-defined]
    return Stored(obj, obj.SerializeToString(), rev)


def stored_from(obj: Message, revision: int) -> Stored:
    obj.metadata.resource_version = str(revision)  # type: ignore[attr-defined]
    return Stored(obj, obj.SerializeToString(), revision)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (tag, length, payload)."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def encode_list(items: list[bytes], resource_version: int, continue_token: str = "") -> bytes:
    """XList{metadata=1: ListMeta, items=2: repeated X} from serialised items."""
    meta = meta_pb2.ListMeta(resource_version=str(resource_version), continue_token=continue_token)
    parts = [length_delimited(1, meta.SerializeToString())]
    parts.extend(length_delimited(2, item) for item in items)
    return b"".join(parts)


def encode_watch_event(event_type: str, object_data: bytes) -> bytes:
    """XWatchEvent{type=1: string, object=2: X} from a serialised object."""
    return length_delimited(1, event_type.encode()) + length_delimited(2, object_data)


def bookmark(kind: Kind, revision: int, initial_events_end: bool = False) -> bytes:
    obj = kind.message()
    obj.metadata.resource_version = str(revision)  # type: ignore[attr-defined]
    if initial_events_end:
        obj.metadata.annotations["k8s.io/initial-events-end"] = "true"  # type: ignore[attr-defined]
    return encode_watch_event("BOOKMARK", obj.SerializeToString())

"""Request parsing: raw bytes to a message, with the checks that turn malformed input
into INVALID_ARGUMENT naming the problem (grpc's own deserialiser would answer INTERNAL)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, cast

from capstan.apierrors import BadRequestError
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

# Kubernetes' (etcd's) object size limit.
MAX_OBJECT_BYTES = 1536 * 1024

M = TypeVar("M", bound=Message)


def parse(cls: type[M], data: bytes) -> M:
    if len(data) > MAX_OBJECT_BYTES:
        raise BadRequestError(
            f"request entity too large: {len(data)} bytes, limit is {MAX_OBJECT_BYTES}",
            metadata={"limit": str(MAX_OBJECT_BYTES)},
        )
    try:
        msg = cls.FromString(data)
    except DecodeError as e:
        raise BadRequestError(f"request is not a valid {cls.DESCRIPTOR.full_name}: {e}") from None
    # Fast check: dropping unknown fields changes the size only if there were any; the
    # walk that names them runs on that rare error path alone.
    size = msg.ByteSize()
    msg.DiscardUnknownFields()
    if msg.ByteSize() != size:
        _reject_unknown(cls.FromString(data), cls.DESCRIPTOR.full_name)
    return msg


def _reject_unknown(msg: Message, path: str) -> None:
    """Fields this server does not know are an error, never silently stored: check the
    message and every message inside it (a wrong message type, or a client built from a
    newer proto, shows up at any depth; stored bytes must hold only fields we define)."""
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        numbers = sorted({f.field_number for f in cast(Iterable[Any], unknown)})
        raise BadRequestError(
            f"{path}: unknown field number(s) {numbers}: is the request of another type?"
        )
    for field, value in msg.ListFields():
        sub_type = field.message_type
        if sub_type is None:
            continue
        sub_path = f"{path}.{field.name}"
        if sub_type.GetOptions().map_entry:
            if sub_type.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    _reject_unknown(item, f"{sub_path}[{key}]")
        elif field.is_repeated:
            for i, item in enumerate(value):
                _reject_unknown(item, f"{sub_path}[{i}]")
        else:
            _reject_unknown(value, sub_path)

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
    _reject_unknown(msg, cls.DESCRIPTOR.full_name)
    return msg


def _reject_unknown(msg: Message, path: str) -> None:
    """Fields this server does not know are an error, never silently stored: check the
    message and its direct sub-messages (where a wrong message type shows up)."""
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        numbers = sorted({f.field_number for f in cast(Iterable[Any], unknown)})
        raise BadRequestError(
            f"{path}: unknown field number(s) {numbers}: is the request of another type?"
        )
    for field, value in msg.ListFields():
        if field.message_type is not None and not field.is_repeated:
            sub = UnknownFieldSet(value)
            if len(sub):
                numbers = sorted({f.field_number for f in cast(Iterable[Any], sub)})
                raise BadRequestError(f"{path}.{field.name}: unknown field number(s) {numbers}")

"""Hashes that name template revisions: Kubernetes' pod-template-hash and
controller-revision-hash. Both are FNV-1a (32 bit) over a deterministic encoding of the
template plus the owner's collision count, printed in decimal and then mapped onto an
alphabet without vowels (rand.SafeEncodeString) so a hash never spells a word and is a
valid label value."""

from __future__ import annotations

from google.protobuf.message import Message

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
# rand.SafeEncodeString's alphabet: no vowels, no confusable 0/1/3.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes, h: int = _FNV_OFFSET) -> int:
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in text)


def compute_hash(template: Message, collision_count: int | None = None) -> str:
    """The pod-template-hash of a template: equal templates hash equal in every process
    (deterministic serialization), and a bumped collision count moves the hash when two
    different templates collide."""
    h = fnv32a(template.SerializeToString(deterministic=True))
    if collision_count is not None:
        h = fnv32a(collision_count.to_bytes(4, "little", signed=True), h)
    return safe_encode(str(h))

"""Object metadata validation and the small error helpers every kind's validator shares.

Mirrors k8s.io/apimachinery/pkg/api/validation (ValidateObjectMeta, ValidateObjectMetaUpdate)
so a bad name, label or owner reference reads exactly like Kubernetes' answer. The helpers
here (map keys in paths, immutability, enums in Kubernetes' own order) complete the
primitives of `capstan.machinery.validation`, which stays free of generated code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import Message

from capstan.api.meta.v1 import meta_pb2
from capstan.machinery.validation import (
    child,
    dns1123_label_ok,
    forbidden,
    invalid,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    labels_ok,
    not_supported,
    required,
    validate_annotations,
    validate_labels,
)
from capstan.machinery.violations import FieldViolation

Errors = list[FieldViolation]
# (name, is_prefix) -> bare messages, like Kubernetes' ValidateNameFunc.
NameFunc = Callable[[str, bool], list[str]]

FIELD_IMMUTABLE: Final = "field is immutable"
IS_NEGATIVE: Final = "must be greater than or equal to 0"
IS_NOT_POSITIVE: Final = "must be greater than zero"


# ---------------------------------------------------------------------------------------------
# Path and error helpers


def key(path: str, k: str) -> str:
    """Kubernetes' Path.Key: a map entry renders as `limits[cpu]`, unquoted."""
    return f"{path}[{k}]"


def render(value: object) -> str:
    """A compound value as compact JSON (messages in their manifest form); error paths only."""
    if isinstance(value, Message):
        return json.dumps(json_format.MessageToDict(value), separators=(",", ":"), sort_keys=True)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)
    return json.dumps(value, separators=(",", ":"), default=str)


def invalid_raw(path: str, rendered: str, detail: str) -> FieldViolation:
    """field.Invalid for a compound value that is already rendered (no extra quoting)."""
    return FieldViolation(path, f"Invalid value: {rendered}: {detail}" if detail else rendered)


def immutable(path: str, new: object) -> FieldViolation:
    if isinstance(new, Message | Mapping):
        return invalid_raw(path, render(new), FIELD_IMMUTABLE)
    return invalid(path, new, FIELD_IMMUTABLE)


def enum(value: str, allowed: Sequence[str], path: str, *, allow_empty: bool = False) -> Errors:
    """An enum field with Kubernetes' own ordering of the supported values in the message."""
    if not value:
        return [] if allow_empty else [required(path)]
    if value not in allowed:
        return [not_supported(path, value, allowed)]
    return []


def non_negative(value: int, path: str) -> Errors:
    return [invalid(path, value, IS_NEGATIVE)] if value < 0 else []


def positive(value: int, path: str) -> Errors:
    return [invalid(path, value, IS_NOT_POSITIVE)] if value <= 0 else []


def at_least(value: int, minimum: int, path: str) -> Errors:
    if value < minimum:
        return [invalid(path, value, f"must be greater than or equal to {minimum}")]
    return []


def each_invalid(messages: Iterable[str], path: str, value: object) -> Errors:
    return [invalid(path, value, m) for m in messages]


def has(msg: Message, field: str) -> bool:
    """HasField for a field named at run time (table-driven checks)."""
    return msg.HasField(field)


def maps_equal(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    return len(a) == len(b) and all(k in b and b[k] == v for k, v in a.items())


# ---------------------------------------------------------------------------------------------
# Name rules (k8s.io/apimachinery/pkg/api/validation/generic.go)


def _mask_trailing_dash(name: str) -> str:
    # A generateName prefix may end in "-": Kubernetes checks it as if a character followed.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def validate_namespace_name(namespace: str, path: str) -> Errors:
    return each_invalid(is_dns1123_label(namespace), path, namespace)


# ---------------------------------------------------------------------------------------------
# Owner references and finalizers

_FINALIZER_ORPHAN: Final = "orphan"
_FINALIZER_FOREGROUND: Final = "foregroundDeletion"


def validate_owner_references(refs: Sequence[meta_pb2.OwnerReference], path: str) -> Errors:
    """Kubernetes reports these at the list's path, without an index."""
    out: Errors = []
    first_controller = ""
    for ref in refs:
        _group, _, version = ref.api_version.rpartition("/")
        if not version:
            out.append(
                invalid(child(path, "apiVersion"), ref.api_version, "version must not be empty")
            )
        if not ref.kind:
            out.append(invalid(child(path, "kind"), ref.kind, "must not be empty"))
        if not ref.name:
            out.append(invalid(child(path, "name"), ref.name, "must not be empty"))
        if not ref.uid:
            out.append(invalid(child(path, "uid"), ref.uid, "must not be empty"))
        if ref.HasField("controller") and ref.controller:
            current = f"{ref.kind}/{ref.name}"
            if first_controller:
                out.append(
                    invalid_raw(
                        path,
                        render([f"{r.kind}/{r.name}" for r in refs]),
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return out


def validate_finalizers(finalizers: Sequence[str], path: str) -> Errors:
    out: Errors = []
    for finalizer in finalizers:
        out.extend(each_invalid(is_qualified_name(finalizer), path, finalizer))
    if _FINALIZER_ORPHAN in finalizers and _FINALIZER_FOREGROUND in finalizers:
        out.append(
            invalid(
                path,
                list(finalizers),
                f"finalizer {_FINALIZER_ORPHAN} and {_FINALIZER_FOREGROUND} cannot be both set",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# ObjectMeta


def _validate_meta_common(meta: meta_pb2.ObjectMeta, path: str) -> Errors:
    # Every write passes here: look at each value first, build a path only to report.
    out = non_negative(meta.generation, child(path, "generation")) if meta.generation < 0 else []
    labels = meta.labels
    if labels and not labels_ok(labels):
        out.extend(validate_labels(labels, child(path, "labels")))
    annotations = meta.annotations
    if annotations:
        out.extend(validate_annotations(annotations, child(path, "annotations")))
    refs = meta.owner_references
    if refs:
        out.extend(validate_owner_references(refs, child(path, "ownerReferences")))
    finalizers = meta.finalizers
    if finalizers:
        out.extend(validate_finalizers(finalizers, child(path, "finalizers")))
    return out


def validate_object_meta(
    meta: meta_pb2.ObjectMeta, namespaced: bool, name_fn: NameFunc, path: str = "metadata"
) -> Errors:
    """Kubernetes' ValidateObjectMeta for a create."""
    out: Errors = []
    generate_name = meta.generate_name
    if generate_name:
        messages = name_fn(generate_name, True)
        if messages:
            out.extend(each_invalid(messages, child(path, "generateName"), generate_name))
    name = meta.name
    if not name:
        out.append(required(child(path, "name"), "name or generateName is required"))
    else:
        messages = name_fn(name, False)
        if messages:
            out.extend(each_invalid(messages, child(path, "name"), name))
    namespace = meta.namespace
    if namespaced:
        if not namespace:
            out.append(required(child(path, "namespace")))
        elif not dns1123_label_ok(namespace):
            out.extend(validate_namespace_name(namespace, child(path, "namespace")))
    elif namespace:
        out.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    out.extend(_validate_meta_common(meta, path))
    return out


def validate_object_meta_update(
    new: meta_pb2.ObjectMeta, old: meta_pb2.ObjectMeta, path: str = "metadata"
) -> Errors:
    """Kubernetes' ValidateObjectMetaUpdate.

    An empty uid or unset creationTimestamp in the new object means "unchanged" (Kubernetes'
    BeforeUpdate carries both over); resourceVersion and generation are the server's own and
    are not checked here.
    """
    out: Errors = []
    if new.name != old.name:
        out.append(immutable(child(path, "name"), new.name))
    if new.namespace != old.namespace:
        out.append(immutable(child(path, "namespace"), new.namespace))
    if new.uid and new.uid != old.uid:
        out.append(immutable(child(path, "uid"), new.uid))
    if new.HasField("creation_timestamp") and new.creation_timestamp != old.creation_timestamp:
        out.append(
            immutable(child(path, "creationTimestamp"), new.creation_timestamp.ToJsonString())
        )
    if old.HasField("deletion_timestamp"):
        added = sorted(set(new.finalizers) - set(old.finalizers))
        if added:
            out.append(
                forbidden(
                    child(path, "finalizers"),
                    "no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {render(added)}",
                )
            )
    if (
        new.HasField("deletion_grace_period_seconds")
        and old.HasField("deletion_grace_period_seconds")
        and new.deletion_grace_period_seconds != old.deletion_grace_period_seconds
    ):
        out.append(
            immutable(child(path, "deletionGracePeriodSeconds"), new.deletion_grace_period_seconds)
        )
    out.extend(_validate_meta_common(new, path))
    return out

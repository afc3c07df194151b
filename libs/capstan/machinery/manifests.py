"""Kubernetes manifests (YAML or JSON documents) <-> (Kind, protobuf message).

The API's field names are Kubernetes' own, so protobuf's JSON mapping reads a manifest from a
tutorial unchanged. What this module adds on top of json_format:

- apiVersion + kind select the kind-table row, accepting the older group/version strings
  (extensions/v1beta1, apps/v1beta1, batch/v1beta1, ...) that old manifests still carry.
- Every key is checked against the message descriptors first, so a field capstan does not
  support fails with its full JSON path ("spec.template.spec.containers[0].foo") instead of
  protobuf's nested message, and is never silently dropped.
- Quantities written as YAML numbers (cpu: 1, memory: 1000) become strings, as Kubernetes'
  resource.Quantity accepts both.
- Printing undoes the two places proto3 JSON differs from Kubernetes: int64 written as strings
  and numbers inside google.protobuf.Value written as floats.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from capstan.machinery.kinds import KINDS, LEGACY_GROUPS, Kind

# Per API group: the versions whose shapes match capstan's single version of each kind.
# Older beta versions of apps/batch differ from v1 only in defaults, not in field shapes.
ACCEPTED_VERSIONS: dict[str, tuple[str, ...]] = {
    "": ("v1",),
    "apps": ("v1", "v1beta1", "v1beta2"),
    "extensions": ("v1beta1",),
    "batch": ("v1", "v1beta1"),
    "autoscaling": ("v1",),
    "coordination.k8s.io": ("v1", "v1beta1"),
    "storage.k8s.io": ("v1", "v1beta1"),
}

_INT64_TYPES = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_INT_TYPES = _INT64_TYPES | {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_DYNAMIC_JSON = {"google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue"}

# Fields holding resource.Quantity values (maps of them, or one), by proto field name.
_QUANTITY_MAPS = {
    "requests",
    "limits",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "max",
    "min",
    "default",
    "default_request",
    "max_limit_request_ratio",
}
_QUANTITY_SCALARS = {"size_limit", "divisor"}

LIST_KINDS = {"List"}


class ManifestError(ValueError):
    """A document that does not describe an object capstan serves, or a field it rejects."""


def resolve_kind(api_version: str, kind: str) -> Kind:
    """The kind-table row for a manifest's apiVersion and kind; ManifestError otherwise."""
    if not kind:
        raise ManifestError('missing "kind"')
    if not api_version:
        raise ManifestError(f'{kind}: missing "apiVersion"')
    group, _, version = api_version.rpartition("/")
    if group == "" and "/" in api_version:
        raise ManifestError(f'{kind}: invalid apiVersion "{api_version}"')
    accepted = ACCEPTED_VERSIONS.get(group)
    if accepted is None:
        raise ManifestError(
            f'{kind}: unknown API group "{group}" in apiVersion "{api_version}" '
            "(capstan does not serve it)"
        )
    if version not in accepted:
        raise ManifestError(
            f'{kind}: apiVersion "{api_version}" is not supported '
            f"(capstan accepts {', '.join(_join(group, v) for v in accepted)})"
        )
    target_group = LEGACY_GROUPS.get(group, group)
    for row in KINDS:
        if row.kind == kind and row.group == target_group:
            return row
    for row in KINDS:
        if row.kind == kind:
            raise ManifestError(
                f'{kind} is not in apiVersion "{api_version}"; use "{row.api_version}"'
            )
    raise ManifestError(
        f'unknown kind "{kind}" in apiVersion "{api_version}" (capstan does not serve it)'
    )


def _join(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def describe_document(doc: Mapping[str, Any]) -> str:
    """How errors name a document: Deployment "web"."""
    meta = doc.get("metadata")
    name = meta.get("name") or meta.get("generateName") if isinstance(meta, Mapping) else None
    kind = doc.get("kind") or "object"
    return f'{kind} "{name}"' if name else str(kind)


def load_documents(text: str, source: str = "") -> list[dict[str, Any]]:
    """Every object in a YAML/JSON text: `---` separated documents, and `kind: List` items
    flattened. Empty documents are skipped, like kubectl does."""
    prefix = f"{source}: " if source else ""
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise ManifestError(f"{prefix}invalid YAML: {e}") from e
    docs: list[dict[str, Any]] = []
    for i, doc in enumerate(raw):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"{prefix}document {i + 1} is not an object")
        if doc.get("kind") in LIST_KINDS or (
            isinstance(doc.get("kind"), str) and doc["kind"].endswith("List") and "items" in doc
        ):
            items = doc.get("items") or []
            if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
                raise ManifestError(f"{prefix}document {i + 1}: items must be a list of objects")
            docs.extend(items)
        else:
            docs.append(doc)
    return docs


def from_dict(doc: Mapping[str, Any], source: str = "") -> tuple[Kind, Message]:
    """Parse one manifest into its kind's message, naming any rejected field by path."""
    prefix = f"{source}: " if source else ""
    try:
        kind = resolve_kind(str(doc.get("apiVersion") or ""), str(doc.get("kind") or ""))
    except ManifestError as e:
        raise ManifestError(f"{prefix}{e}") from e
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    what = describe_document(doc)
    descriptor = kind.message.DESCRIPTOR
    assert isinstance(descriptor, Descriptor)
    problems = list(_check_message(body, descriptor, ""))
    if problems:
        raise ManifestError("\n".join(f"{prefix}{what}: {p}" for p in problems))
    message = kind.message()
    try:
        json_format.ParseDict(_normalise_message(body, descriptor), message)
    except json_format.ParseError as e:
        raise ManifestError(f"{prefix}{what}: {e}") from e
    return kind, message


def _path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _field_by_key(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    for f in descriptor.fields:
        if f.json_name == key or f.name == key:
            return f
    return None


def _check_message(obj: Any, descriptor: Descriptor, path: str) -> Iterator[str]:
    if obj is None:
        return
    if not isinstance(obj, Mapping):
        yield f'field "{path}": expected an object, got {_json_type(obj)}'
        return
    seen_oneofs: dict[str, str] = {}
    for key, value in obj.items():
        field = _field_by_key(descriptor, str(key))
        child = _path(path, str(key))
        if field is None:
            yield f'unknown field "{child}" (capstan does not support it)'
            continue
        oneof = field.containing_oneof
        if oneof is not None and value is not None and not _is_synthetic(field):
            if oneof.name in seen_oneofs:
                yield f'field "{child}" cannot be set together with "{seen_oneofs[oneof.name]}"'
            seen_oneofs[oneof.name] = child
        yield from _check_field(value, field, child)


def _is_synthetic(field: FieldDescriptor) -> bool:
    oneof = field.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == "_" + field.name


def _map_value(field: FieldDescriptor) -> FieldDescriptor:
    mt = field.message_type
    assert mt is not None
    return mt.fields_by_name["value"]


def _is_map(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return mt is not None and mt.GetOptions().map_entry


def _check_field(value: Any, field: FieldDescriptor, path: str) -> Iterator[str]:
    if value is None:
        return
    if _is_map(field):
        if not isinstance(value, Mapping):
            yield f'field "{path}": expected an object, got {_json_type(value)}'
            return
        value_field = _map_value(field)
        for k, v in value.items():
            yield from _check_single(v, value_field, f"{path}[{json.dumps(str(k))}]", field.name)
        return
    if field.is_repeated:
        if not isinstance(value, list):
            yield f'field "{path}": expected a list, got {_json_type(value)}'
            return
        for i, item in enumerate(value):
            yield from _check_single(item, field, f"{path}[{i}]", field.name)
        return
    yield from _check_single(value, field, path, field.name)


def _check_single(value: Any, field: FieldDescriptor, path: str, owner: str) -> Iterator[str]:
    mt = field.message_type
    if mt is not None:
        if mt.full_name.startswith("google.protobuf."):
            if mt.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration") and (
                not isinstance(value, str)
            ):
                yield f'field "{path}": expected a string, got {_json_type(value)}'
            return
        yield from _check_message(value, mt, path)
        return
    quantity = owner in _QUANTITY_MAPS or owner in _QUANTITY_SCALARS
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        ok = isinstance(value, str) or (
            quantity and isinstance(value, int | float) and not isinstance(value, bool)
        )
        expected = "a string"
    elif t == FieldDescriptor.TYPE_BYTES:
        ok = isinstance(value, str) and _is_base64(value)
        expected = "a base64 string"
    elif t == FieldDescriptor.TYPE_BOOL:
        ok = isinstance(value, bool)
        expected = "a boolean"
    elif t in _INT_TYPES:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
        expected = "an integer"
    elif t in _FLOAT_TYPES:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        expected = "a number"
    else:
        return
    if not ok:
        yield f'field "{path}": expected {expected}, got {_json_type(value)} {_short(value)}'


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def quantity_text(value: int | float) -> str:
    """A YAML number as Kubernetes' Quantity would print it (1 -> "1", 0.5 -> "0.5")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _normalise_message(obj: Any, descriptor: Descriptor) -> Any:
    """Quantities given as numbers become strings; integral floats become ints."""
    if not isinstance(obj, Mapping):
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = _field_by_key(descriptor, str(key))
        if field is None or value is None:
            continue
        if _is_map(field):
            vf = _map_value(field)
            out[key] = {k: _normalise_single(v, vf, field.name) for k, v in value.items()}
        elif field.is_repeated:
            out[key] = [_normalise_single(v, field, field.name) for v in value]
        else:
            out[key] = _normalise_single(value, field, field.name)
    return out


def _normalise_single(value: Any, field: FieldDescriptor, owner: str) -> Any:
    mt = field.message_type
    if mt is not None:
        if mt.full_name.startswith("google.protobuf."):
            return value
        return _normalise_message(value, mt)
    quantity = owner in _QUANTITY_MAPS or owner in _QUANTITY_SCALARS
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if field.type == FieldDescriptor.TYPE_STRING and number and quantity:
        return quantity_text(value)
    if field.type in _INT_TYPES and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- printing -------------------------------------------------------------------------------


def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    return value


def _field_as_kubernetes(value: Any, field: FieldDescriptor) -> Any:
    if field.type in _INT64_TYPES:
        return int(value)
    message_type = field.message_type
    if message_type is None:
        return value
    if message_type.full_name in _DYNAMIC_JSON:
        return _integral_floats_as_ints(value)
    if message_type.full_name.startswith("google.protobuf."):
        return value  # Timestamp, Duration: already Kubernetes' RFC 3339 strings
    return as_kubernetes(value, message_type)


def as_kubernetes(obj: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    """Undo proto3 JSON's two departures from Kubernetes JSON, guided by the descriptor:
    int64 as strings, and google.protobuf.Value numbers as floats."""
    out = dict(obj)
    for field in descriptor.fields:
        if field.json_name not in out:
            continue
        value = out[field.json_name]
        if _is_map(field):
            value_field = _map_value(field)
            out[field.json_name] = {
                k: _field_as_kubernetes(v, value_field) for k, v in value.items()
            }
        elif field.is_repeated:
            out[field.json_name] = [_field_as_kubernetes(v, field) for v in value]
        else:
            out[field.json_name] = _field_as_kubernetes(value, field)
    return out


def to_dict(message: Message, kind: Kind | None = None) -> dict[str, Any]:
    """The Kubernetes-shaped dict of an object: apiVersion and kind first."""
    descriptor = message.DESCRIPTOR
    assert isinstance(descriptor, Descriptor)
    body = as_kubernetes(json_format.MessageToDict(message), descriptor)
    if kind is None:
        return body
    return {"apiVersion": kind.api_version, "kind": kind.kind, **body}


def list_dict(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as one document, the way kubectl prints them."""
    return {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {}}


class _Dumper(yaml.SafeDumper):
    """Block-style YAML, multi-line strings as literal blocks, keys in the given order."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def dump_yaml_documents(objs: Iterable[Any]) -> str:
    return "---\n".join(dump_yaml(o) for o in objs)


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"

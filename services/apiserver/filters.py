"""Selection of objects for List and Watch: namespace, label selector, field selector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capstan.apierrors import BadRequestError
from capstan.machinery.fields import FieldSelector, FieldSelectorError, parse_field_selector
from capstan.machinery.kinds import FieldGetter, Kind
from capstan.machinery.labels import Selector, SelectorError, parse_selector

_META_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: o.metadata.name,
    "metadata.namespace": lambda o: o.metadata.namespace,
}


def field_getters(kind: Kind) -> dict[str, FieldGetter]:
    return {**_META_FIELDS, **kind.fields}


@dataclass(frozen=True, slots=True)
class Filter:
    namespace: str
    labels: Selector
    fields: FieldSelector
    getters: dict[str, FieldGetter]

    @property
    def everything(self) -> bool:
        return not self.namespace and self.labels.empty and self.fields.empty

    def matches(self, obj: Any) -> bool:
        meta = obj.metadata
        if self.namespace and meta.namespace != self.namespace:
            return False
        if not self.labels.empty and not self.labels.matches(meta.labels):
            return False
        if not self.fields.empty:
            getters = self.getters
            return self.fields.matches(lambda f: getters[f](obj))
        return True


def build_filter(kind: Kind, namespace: str, label_selector: str, field_selector: str) -> Filter:
    """Parse the request's selectors; a bad selector is INVALID_ARGUMENT naming the problem."""
    try:
        labels = parse_selector(label_selector)
    except SelectorError as e:
        raise BadRequestError(f"unable to parse label selector {label_selector!r}: {e}") from e
    getters = field_getters(kind)
    try:
        fields = parse_field_selector(field_selector)
        fields.check_supported(getters.keys())
    except FieldSelectorError as e:
        raise BadRequestError(f"invalid field selector for {kind.resource}: {e}") from e
    return Filter(namespace if kind.namespaced else "", labels, fields, getters)

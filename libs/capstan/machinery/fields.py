"""Kubernetes field selectors (`metadata.name=x,spec.nodeName!=y`).

Semantics of k8s.io/apimachinery/pkg/fields: terms are ANDed; `=`/`==` and `!=` compare the
field's string value; a field the object does not have reads as the empty string (so
`spec.nodeName=` selects unscheduled pods). In values, `\\,`, `\\=` and `\\\\` escape a comma, an
equals sign and a backslash; any other backslash sequence and any bare ',' or '=' is an error.

Which field names exist is per kind: the apiserver calls `check_supported` with its own list,
and can use `exact` to serve `spec.nodeName=node-1` from an index.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class FieldSelectorError(ValueError):
    pass


class FieldOperator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="


@dataclass(frozen=True, slots=True, order=True)
class FieldRequirement:
    field: str
    operator: FieldOperator
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator.value}{escape_value(self.value)}"


FieldGetter = Callable[[str], "str | None"]

_ESCAPES: Final = {"\\": "\\\\", ",": "\\,", "=": "\\="}


def escape_value(value: str) -> str:
    """The inverse of `unescape_value`: makes any string safe inside a selector term."""
    if not any(c in value for c in "\\,="):
        return value
    return "".join(_ESCAPES.get(c, c) for c in value)


def unescape_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for c in value:
        if escaped:
            if c not in _ESCAPES:
                raise FieldSelectorError(
                    f"invalid field selector: invalid escape sequence: \\{c} in {value!r}"
                )
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            raise FieldSelectorError(
                f"invalid field selector: unescaped character in value: {c!r} in {value!r}"
            )
        else:
            out.append(c)
    if escaped:
        raise FieldSelectorError(
            f"invalid field selector: invalid escape sequence: \\ in {value!r}"
        )
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped by a backslash."""
    terms: list[str] = []
    start = 0
    escaped = False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


# Longest first, so "a!=b" is not read as field "a!" equal to "b".
_TERM_OPERATORS: Final = (
    ("!=", FieldOperator.NOT_EQUALS),
    ("==", FieldOperator.EQUALS),
    ("=", FieldOperator.EQUALS),
)


def _split_term(text: str, term: str) -> FieldRequirement:
    for i in range(len(term)):
        for symbol, operator in _TERM_OPERATORS:
            if term.startswith(symbol, i):
                # Field names never contain spaces; tolerate "a = b"-style spacing around them.
                field = term[:i].strip()
                if not field:
                    raise FieldSelectorError(
                        f"invalid field selector: {text!r}; missing field name in {term!r}"
                    )
                return FieldRequirement(field, operator, unescape_value(term[i + len(symbol) :]))
    raise FieldSelectorError(f"invalid field selector: {text!r}; can't understand {term!r}")


class FieldSelector:
    """An immutable AND of field requirements, kept in canonical (sorted) order."""

    __slots__ = ("_requirements",)

    def __init__(self, requirements: Collection[FieldRequirement] = ()) -> None:
        self._requirements = tuple(sorted(set(requirements)))

    @property
    def requirements(self) -> tuple[FieldRequirement, ...]:
        return self._requirements

    @property
    def empty(self) -> bool:
        return not self._requirements

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(r.field for r in self._requirements)

    def matches(self, fields: Mapping[str, str] | FieldGetter) -> bool:
        """`fields` is a mapping of field values or a getter; a missing field reads as ""."""
        get: FieldGetter = fields.get if isinstance(fields, Mapping) else fields
        for r in self._requirements:
            actual = get(r.field) or ""
            if (actual == r.value) != (r.operator is FieldOperator.EQUALS):
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value an `=` term pins `field` to (for index lookups), or None."""
        for r in self._requirements:
            if r.field == field and r.operator is FieldOperator.EQUALS:
                return r.value
        return None

    def check_supported(self, supported: Collection[str]) -> None:
        """Raise with the list of supported names if any term uses another field."""
        unknown = sorted(self.fields.difference(supported))
        if unknown:
            names = ", ".join(repr(f) for f in unknown)
            raise FieldSelectorError(
                f"field label not supported: {names} (supported field labels: "
                f"{', '.join(sorted(supported))})"
            )

    def __iter__(self) -> Iterator[FieldRequirement]:
        return iter(self._requirements)

    def __len__(self) -> int:
        return len(self._requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash(self._requirements)


EVERYTHING: Final = FieldSelector()


@functools.lru_cache(maxsize=1024)
def parse_field_selector(text: str) -> FieldSelector:
    """Parse `f=v,f!=v,...`; empty terms are skipped, so "" selects everything."""
    requirements = [_split_term(text, term) for term in _split_terms(text) if term.strip()]
    return FieldSelector(requirements)

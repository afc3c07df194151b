"""Kubernetes label selectors: the string syntax, the structured (proto) form, and matching.

Selectors are immutable and compiled once into a flat tuple of checks, because the apiserver runs
`Selector.matches` against every object on every watch event. Parsing is memoised for the same
reason: clients send the same few selector strings over and over.

The semantics are those of k8s.io/apimachinery/pkg/labels:
  - requirements are ANDed; an empty selector matches everything;
  - `k=v`, `k==v`, `k in (...)` need the label to be present with one of the values;
  - `k!=v`, `k notin (...)` also match objects without the label;
  - `k` (exists) and `!k` (does not exist) test presence only;
  - `k>N`, `k<N` compare the label as an integer (node-affinity style; absent or non-integer
    labels never match).

Kubernetes' "a nil LabelSelector matches nothing" cannot be expressed by a proto message (an
unset message field reads as an empty one), so it is the caller's concern: check `HasField` before
calling `selector_from_proto`, which treats an empty selector as matching everything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from capstan.machinery.validation import is_label_value, is_qualified_name

if TYPE_CHECKING:
    from capstan.api.meta.v1.meta_pb2 import LabelSelector


class SelectorError(ValueError):
    """An unparsable or invalid selector; `position` is the 0-based offset into the text, if any."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class Operator(StrEnum):
    # Values are Kubernetes' selection.Operator strings.
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_SET_OPERATORS: Final = frozenset({Operator.IN, Operator.NOT_IN})
_SINGLE_VALUE_OPERATORS: Final = frozenset(
    {Operator.EQUALS, Operator.NOT_EQUALS, Operator.GREATER_THAN, Operator.LESS_THAN}
)
_INT64_RE: Final = re.compile(r"[+-]?[0-9]+\Z")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's strconv.ParseInt(s, 10, 64): no whitespace or underscores, unlike Python's int()."""
    if not _INT64_RE.match(text):
        return None
    n = int(text)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


def _requirement_errors(key: str, operator: Operator, values: tuple[str, ...]) -> list[str]:
    errs: list[str] = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(f"invalid label key {key!r}: " + "; ".join(key_errs))
    if operator in _SET_OPERATORS:
        if not values:
            errs.append("for 'in', 'notin' operators, values set can't be empty")
    elif operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        if len(values) != 1:
            errs.append("exact-match compatibility requires one single value")
    elif operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if values:
            errs.append("values set must be empty for exists and does not exist")
    else:  # GREATER_THAN, LESS_THAN
        if len(values) != 1:
            errs.append("for 'Gt', 'Lt' operators, exactly one value is required")
        errs.extend(
            f"for 'Gt', 'Lt' operators, the value must be an integer, got {v!r}"
            for v in values
            if _parse_int64(v) is None
        )
    for value in values:
        value_errs = is_label_value(value)
        if value_errs:
            errs.append(f"invalid label value {value!r} at key {key!r}: " + "; ".join(value_errs))
    return errs


class Requirement:
    """One validated selector term. Set-operator values are kept sorted and de-duplicated."""

    __slots__ = ("_set", "key", "operator", "values")

    key: str
    operator: Operator
    values: tuple[str, ...]
    _set: frozenset[str]

    def __init__(self, key: str, operator: Operator | str, values: Iterable[str] = ()) -> None:
        try:
            op = Operator(operator)
        except ValueError:
            raise SelectorError(f"{operator!r} is not a valid selector operator") from None
        vals = tuple(sorted(set(values))) if op in _SET_OPERATORS else tuple(values)
        errs = _requirement_errors(key, op, vals)
        if errs:
            raise SelectorError("; ".join(errs))
        # Frozen: selectors compile their requirements once and share them.
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "operator", op)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "_set", frozenset(vals))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Requirement is immutable; cannot set {name!r}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        return _check(self.operator, self.key, self._arg(), labels)

    def _arg(self) -> Any:
        op = self.operator
        if op in _SET_OPERATORS:
            return self._set
        if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
            return _parse_int64(self.values[0])
        if op in (Operator.EQUALS, Operator.NOT_EQUALS):
            return self.values[0]
        return None

    def _sort_key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.key, self.operator.value, self.values)

    def __str__(self) -> str:
        op, key = self.operator, self.key
        if op is Operator.EXISTS:
            return key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + key
        if op in _SET_OPERATORS:
            return f"{key} {op.value} ({','.join(self.values)})"
        symbol = {
            Operator.EQUALS: "=",
            Operator.NOT_EQUALS: "!=",
            Operator.GREATER_THAN: ">",
            Operator.LESS_THAN: "<",
        }[op]
        return f"{key}{symbol}{self.values[0]}"

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator.name}, {list(self.values)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Requirement):
            return NotImplemented
        return self._sort_key() == other._sort_key()

    def __hash__(self) -> int:
        return hash(self._sort_key())


# Opcodes of the compiled form; small ints compare faster than enum members.
_EQ, _NE, _IN, _NOTIN, _EXISTS, _NOT_EXISTS, _GT, _LT = range(8)
_OPCODES: Final = {
    Operator.EQUALS: _EQ,
    Operator.NOT_EQUALS: _NE,
    Operator.IN: _IN,
    Operator.NOT_IN: _NOTIN,
    Operator.EXISTS: _EXISTS,
    Operator.DOES_NOT_EXIST: _NOT_EXISTS,
    Operator.GREATER_THAN: _GT,
    Operator.LESS_THAN: _LT,
}


def _check(operator: Operator, key: str, arg: Any, labels: Mapping[str, str]) -> bool:
    return _run(((_OPCODES[operator], key, arg),), labels)


def _run(checks: tuple[tuple[int, str, Any], ...], labels: Mapping[str, str]) -> bool:
    get = labels.get
    for op, key, arg in checks:
        if op == _EQ:
            if get(key) != arg:
                return False
        elif op == _IN:
            if get(key) not in arg:
                return False
        elif op == _NE:
            if get(key) == arg:
                return False
        elif op == _NOTIN:
            if get(key) in arg:
                return False
        elif op == _EXISTS:
            if key not in labels:
                return False
        elif op == _NOT_EXISTS:
            if key in labels:
                return False
        else:
            value = get(key)
            number = None if value is None else _parse_int64(value)
            if number is None:
                return False
            if op == _GT and not number > arg:
                return False
            if op == _LT and not number < arg:
                return False
    return True


class Selector:
    """An immutable AND of requirements, kept in canonical (sorted, de-duplicated) order."""

    __slots__ = ("_checks", "_requirements")

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        self._requirements = tuple(sorted(set(requirements), key=Requirement._sort_key))
        self._checks = tuple((_OPCODES[r.operator], r.key, r._arg()) for r in self._requirements)

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return self._requirements

    @property
    def empty(self) -> bool:
        """True when the selector has no requirements, i.e. it matches everything."""
        return not self._requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return _run(self._checks, labels)

    def add(self, *requirements: Requirement) -> Selector:
        return Selector((*self._requirements, *requirements))

    def equality_requirements(self) -> dict[str, str]:
        """Pairs every matching object must carry: `k=v` and single-valued `k in (v)`.

        An index keyed by (label, value) can look candidates up by any one pair; callers must
        still call `matches` on them (the other requirements are not reflected here).
        """
        out: dict[str, str] = {}
        for r in self._requirements:
            if r.operator is Operator.EQUALS or (r.operator is Operator.IN and len(r.values) == 1):
                out.setdefault(r.key, r.values[0])
        return out

    def exact(self, key: str) -> str | None:
        """The value a requirement pins `key` to, if any (Kubernetes' RequiresExactMatch)."""
        return self.equality_requirements().get(key)

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self._requirements)

    def __len__(self) -> int:
        return len(self._requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        return f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash(self._requirements)


EVERYTHING: Final = Selector()


# ---------------------------------------------------------------------------------------------
# String syntax

_WHITESPACE: Final = " \t\r\n"
_SPECIAL: Final = "=!(),<>"
_EOS: Final = ""  # token kind of the end of the text
_IDENT: Final = "identifier"
_KEYWORDS: Final = {"in": Operator.IN, "notin": Operator.NOT_IN}
_BINARY_OPERATORS: Final = {
    "=": Operator.EQUALS,
    "==": Operator.EQUALS,
    "!=": Operator.NOT_EQUALS,
    ">": Operator.GREATER_THAN,
    "<": Operator.LESS_THAN,
}

_Token = tuple[str, str, int]  # (kind, literal, position); kind is _IDENT, _EOS or the symbol


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _WHITESPACE:
            i += 1
        elif c in _SPECIAL:
            two = text[i : i + 2]
            symbol = two if two in ("==", "!=") else c
            tokens.append((symbol, symbol, i))
            i += len(symbol)
        else:
            start = i
            while i < n and text[i] not in _WHITESPACE and text[i] not in _SPECIAL:
                i += 1
            tokens.append((_IDENT, text[start:i], start))
    tokens.append((_EOS, "", n))
    return tokens


def _describe(token: _Token) -> str:
    return "end of string" if token[0] == _EOS else f"'{token[1]}'"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token[0] != _EOS:
            self.pos += 1
        return token

    def fail(self, message: str, position: int, requirement: bool = False) -> SelectorError:
        prefix = "unable to parse requirement: " if requirement else ""
        return SelectorError(
            f"{prefix}{message} (at column {position + 1} of {self.text!r})", position
        )

    def starts_requirement(self, token: _Token) -> bool:
        return token[0] == "!" or (token[0] == _IDENT and token[1] not in _KEYWORDS)

    def parse(self) -> Selector:
        requirements: list[Requirement] = []
        token = self.peek()
        if token[0] == _EOS:
            return EVERYTHING
        if not self.starts_requirement(token):
            raise self.fail(
                f"found {_describe(token)}, expected: !, identifier, or 'end of string'", token[2]
            )
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token[0] == _EOS:
                return Selector(requirements)
            if token[0] != ",":
                raise self.fail(
                    f"found {_describe(token)}, expected: ',' or 'end of string'", token[2]
                )
            token = self.peek()
            if not self.starts_requirement(token):
                raise self.fail(
                    f"found {_describe(token)}, expected: identifier after ','", token[2]
                )

    def requirement(self) -> Requirement:
        start = self.peek()[2]
        negated = self.peek()[0] == "!"
        if negated:
            self.take()
        token = self.take()
        if token[0] != _IDENT or token[1] in _KEYWORDS:
            raise self.fail(f"found {_describe(token)}, expected: identifier", token[2], True)
        key = token[1]
        key_errs = is_qualified_name(key)
        if key_errs:
            raise self.fail(f"invalid label key {key!r}: " + "; ".join(key_errs), token[2], True)
        values: list[tuple[str, int]] = []
        if negated:
            operator = Operator.DOES_NOT_EXIST
        elif self.peek()[0] in (_EOS, ","):
            operator = Operator.EXISTS
        else:
            operator = self.operator()
            values = self.values_list() if operator in _SET_OPERATORS else [self.exact_value()]
        for value, position in values:
            errs = is_label_value(value)
            if errs:
                raise self.fail(
                    f"invalid label value {value!r}: " + "; ".join(errs), position, True
                )
        try:
            return Requirement(key, operator, (value for value, _ in values))
        except SelectorError as err:
            raise self.fail(str(err), start, True) from None

    def operator(self) -> Operator:
        token = self.take()
        if token[0] == _IDENT and token[1] in _KEYWORDS:
            return _KEYWORDS[token[1]]
        if token[0] in _BINARY_OPERATORS:
            return _BINARY_OPERATORS[token[0]]
        raise self.fail(
            f"found {_describe(token)}, expected: '=', '==', '!=', 'in', 'notin', '>' or '<'",
            token[2],
            True,
        )

    def exact_value(self) -> tuple[str, int]:
        # `k=` (nothing before the next comma or the end) means the empty value.
        token = self.peek()
        if token[0] in (_EOS, ","):
            return "", token[2]
        self.take()
        if token[0] != _IDENT:
            raise self.fail(f"found {_describe(token)}, expected: identifier", token[2], True)
        return token[1], token[2]

    def values_list(self) -> list[tuple[str, int]]:
        token = self.take()
        if token[0] != "(":
            raise self.fail(f"found {_describe(token)}, expected: '('", token[2], True)
        values: list[tuple[str, int]] = []
        expect_value = True
        while True:
            token = self.take()
            kind = token[0]
            if expect_value and kind == _IDENT:
                values.append((token[1], token[2]))
                expect_value = False
            elif kind == ",":
                if expect_value:  # "(,", ",," : an empty value, as in Kubernetes
                    values.append(("", token[2]))
                expect_value = True
            elif kind == ")":
                if expect_value:  # "()" and ",)" : an empty value
                    values.append(("", token[2]))
                return values
            else:
                expected = "',', ')' or identifier" if expect_value else "',' or ')'"
                raise self.fail(f"found {_describe(token)}, expected: {expected}", token[2], True)


@functools.lru_cache(maxsize=1024)
def parse_selector(text: str) -> Selector:
    """Parse Kubernetes' label selector string syntax; the empty string selects everything."""
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# Structured forms

_PROTO_OPERATORS: Final = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def selector_from_map(labels: Mapping[str, str]) -> Selector:
    """The legacy equality-only form (ReplicationController and Service selectors)."""
    return Selector(_equals_requirements(labels, "matchLabels"))


def _equals_requirements(labels: Mapping[str, str], path: str) -> list[Requirement]:
    out: list[Requirement] = []
    for key in sorted(labels):
        try:
            out.append(Requirement(key, Operator.EQUALS, (labels[key],)))
        except SelectorError as err:
            raise SelectorError(f"{path}: {err}") from None
    return out


def selector_from_proto(selector: LabelSelector) -> Selector:
    """meta.v1.LabelSelector -> Selector. An empty message matches everything (see module doc)."""
    requirements = _equals_requirements(selector.match_labels, "matchLabels")
    for i, expr in enumerate(selector.match_expressions):
        path = f"matchExpressions[{i}]"
        operator = _PROTO_OPERATORS.get(expr.operator)
        if operator is None:
            raise SelectorError(
                f"{path}.operator: {expr.operator!r} is not a valid label selector operator "
                f"(supported: {', '.join(_PROTO_OPERATORS)})"
            )
        try:
            requirements.append(Requirement(expr.key, operator, expr.values))
        except SelectorError as err:
            raise SelectorError(f"{path}: {err}") from None
    return Selector(requirements)


def format_labels(labels: Mapping[str, str]) -> str:
    """ "a=b,c=d" with keys sorted: Kubernetes' labels.Set.String()."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def parse_labels(text: str) -> dict[str, str]:
    """ "a=b,c=d" -> a label map (kubectl's --labels); only equality terms are allowed."""
    out: dict[str, str] = {}
    for r in parse_selector(text):
        if r.operator is not Operator.EQUALS:
            raise SelectorError(f"labels must be key=value pairs, found {str(r)!r}")
        if out.get(r.key, r.values[0]) != r.values[0]:
            raise SelectorError(f"label {r.key!r} is given two different values")
        out[r.key] = r.values[0]
    return out

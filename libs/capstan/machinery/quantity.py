"""Kubernetes resource quantities ("100m", "1.5", "128Mi", "1e3"), held as exact fractions.

Semantics of k8s.io/apimachinery/pkg/api/resource:
  - grammar: an optionally signed decimal number, then a binary-SI suffix (Ki Mi Gi Ti Pi Ei),
    a decimal-SI suffix (n u m "" k M G T P E) or a decimal exponent (e3, E-2);
  - anything finer than 1n is rounded up (away from zero) to the next nano unit, so asking for a
    tiny non-zero amount never becomes zero;
  - `milli_value` and `int_value` round up (ceil), as Kubernetes' MilliValue() and Value() do;
  - the canonical string keeps the parsed format family and picks the largest exact suffix:
    "0.5" -> "500m", "1536Mi" stays "1536Mi", "1000" -> "1k".
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Final

from capstan.machinery.validation import invalid
from capstan.machinery.violations import FieldViolation


class QuantityError(ValueError):
    pass


class QuantityFormat(StrEnum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


# The message Kubernetes returns for any malformed quantity.
QUANTITY_ERR_MSG: Final = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

_QUANTITY_RE: Final = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[A-Za-z][-+0-9A-Za-z]*)?\Z"
)
_EXPONENT_RE: Final = re.compile(r"[eE](?P<exp>[+-]?[0-9]+)\Z")
# The quantities people write ("250m", "512Mi", "1.5", "2"): parseable and never negative.
_PLAIN_NON_NEGATIVE_RE: Final = re.compile(
    r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[numkMGTPE]|[KMGTPE]i)?\Z"
)
_MAX_EXPONENT: Final = 1000  # far beyond any real quantity; bounds the work a hostile input causes
_BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES: Final = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_BY_EXPONENT: Final = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER: Final = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO: Final = 10**9
_MAX_INT64: Final = 2**63 - 1


def _round_up_to_nano(value: Fraction) -> Fraction:
    scaled = value * _NANO
    if scaled.denominator == 1:
        return value
    # Away from zero, like inf.RoundUp.
    rounded = math.ceil(scaled) if scaled > 0 else math.floor(scaled)
    return Fraction(rounded, _NANO)


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """An exact amount; equality and ordering look at the value only, never the format."""

    value: Fraction
    format: QuantityFormat = field(default=QuantityFormat.DECIMAL_SI, compare=False)

    def milli_value(self) -> int:
        return math.ceil(self.value * 1000)

    def int_value(self) -> int:
        return math.ceil(self.value)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def __str__(self) -> str:
        return _canonical(self.value, self.format)


def _canonical(value: Fraction, fmt: QuantityFormat) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt is QuantityFormat.BINARY_SI and magnitude >= 1024 and magnitude.denominator == 1:
        number, power = magnitude.numerator, 0
        while number % 1024 == 0 and power < len(_BINARY_BY_POWER) - 1:
            number //= 1024
            power += 1
        return f"{sign}{number}{_BINARY_BY_POWER[power]}"
    # Decimal: the shortest integer mantissa whose exponent is a multiple of three.
    # Parsed values are whole nanos; a hand-built finer value is rounded up like a parsed one.
    mantissa, exponent = math.ceil(magnitude * _NANO), -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    mantissa *= 10**shift
    exponent -= shift
    if fmt is QuantityFormat.DECIMAL_EXPONENT or exponent not in _DECIMAL_BY_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


@functools.lru_cache(maxsize=4096)
def plain_non_negative_quantity(text: str) -> bool:
    """A fast path for validation: True only for a quantity that parses and is not negative
    (and for the usual spellings of one), with no parse and no fraction arithmetic."""
    return _PLAIN_NON_NEGATIVE_RE.match(text) is not None


@functools.lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Quantity:
    match = _QUANTITY_RE.match(text)
    if match is None:
        raise QuantityError(f"{text!r}: {QUANTITY_ERR_MSG}")
    suffix = match["suffix"] or ""
    number = Fraction(match["number"])
    if suffix in _DECIMAL_SUFFIXES:
        fmt, value = QuantityFormat.DECIMAL_SI, number * Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        fmt, value = QuantityFormat.BINARY_SI, number * 2 ** _BINARY_SUFFIXES[suffix]
    else:
        exp_match = _EXPONENT_RE.match(suffix)
        if exp_match is None:
            raise QuantityError(f"{text!r}: unable to parse quantity's suffix {suffix!r}")
        exponent = int(exp_match["exp"])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent out of range")
        fmt, value = QuantityFormat.DECIMAL_EXPONENT, number * Fraction(10) ** exponent
    value = _round_up_to_nano(value)
    if fmt is QuantityFormat.BINARY_SI:
        value = min(value, Fraction(_MAX_INT64))  # Kubernetes caps binary quantities at int64
        if 0 < value < 1:
            fmt = QuantityFormat.DECIMAL_SI  # "0.5Ki" reads better as "512" than as a fraction
    if match["sign"] == "-":
        value = -value
    return Quantity(value, fmt)


def _quantity(q: str | Quantity) -> Quantity:
    return q if isinstance(q, Quantity) else parse_quantity(q)


def cpu_millis(q: str | Quantity) -> int:
    """Millicores, rounded up: "100m" -> 100, "0.5" -> 500, "1" -> 1000, "0.1m" -> 1."""
    return _quantity(q).milli_value()


def to_bytes(q: str | Quantity) -> int:
    """Whole units, rounded up: "128Mi" -> 134217728, "1k" -> 1000."""
    return _quantity(q).int_value()


def format_cpu_millis(millis: int) -> str:
    """Canonical CPU form: 500 -> "500m", 2000 -> "2", 1500 -> "1500m"."""
    return str(Quantity(Fraction(millis, 1000), QuantityFormat.DECIMAL_SI))


def format_bytes(n: int) -> str:
    """Binary suffix when exact (134217728 -> "128Mi"), else decimal SI (500000000 -> "500M")."""
    fmt = QuantityFormat.BINARY_SI if n % 1024 == 0 else QuantityFormat.DECIMAL_SI
    return str(Quantity(Fraction(n), fmt))


def compare_quantities(a: str | Quantity, b: str | Quantity) -> int:
    """-1, 0 or 1 like Kubernetes' Quantity.Cmp; "1Ki" equals "1024"."""
    x, y = _quantity(a).value, _quantity(b).value
    return (x > y) - (x < y)


@functools.lru_cache(maxsize=4096)
def compare_quantity_text(a: str, b: str) -> int:
    """compare_quantities for two quantity strings, memoised: request/limit pairs repeat across
    every pod of a workload. Raises QuantityError like parse_quantity."""
    return compare_quantities(parse_quantity(a), parse_quantity(b))


def validate_quantity(value: str, path: str, *, non_negative: bool = False) -> list[FieldViolation]:
    if plain_non_negative_quantity(value):
        return []
    try:
        quantity = parse_quantity(value)
    except QuantityError:
        return [invalid(path, value, QUANTITY_ERR_MSG)]
    if non_negative and quantity.value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []

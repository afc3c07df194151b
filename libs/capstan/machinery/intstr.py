"""Kubernetes IntOrString fields (targetPort, maxSurge, maxUnavailable, probe ports).

Our protos carry them as google.protobuf.Value so that their JSON form is Kubernetes' own
(`targetPort: 8080` or `targetPort: http`, `maxSurge: 25%`). JSON numbers arrive as doubles, so
every reader goes through `int_or_str`, which refuses fractions instead of truncating them.
An unset field and an explicit JSON null both read as None, as in Kubernetes.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Value

from capstan.machinery.validation import (
    format_value,
    invalid,
    is_port_name,
    is_port_number,
    port_name_ok,
    regex_error,
    required,
    validate_non_negative,
)
from capstan.machinery.violations import FieldViolation


class IntOrStringError(ValueError):
    pass


IntOrStr = int | str

_MAX_EXACT_DOUBLE: Final = 2**53
_ATOI_RE: Final = re.compile(r"[+-]?[0-9]+\Z")  # Go's strconv.Atoi: no spaces, no underscores
PERCENT_FMT: Final = "[0-9]+%"
PERCENT_ERR_MSG: Final = "a valid percent string must be a numeric string followed by an ending '%'"
_PERCENT_RE: Final = re.compile(PERCENT_FMT + r"\Z")


class _Json:
    """A bad value shown as the JSON the user wrote, unquoted (as Go prints a struct)."""

    def __init__(self, v: Value) -> None:
        self.text = json_format.MessageToJson(v, indent=None)

    def __str__(self) -> str:
        return self.text


def _decode(v: Value | None) -> tuple[IntOrStr | None, str, object]:
    """(value, "", None) when readable, else (None, why, the bad value as Kubernetes shows it)."""
    kind = None if v is None else v.WhichOneof("kind")
    if v is None or kind is None or kind == "null_value":
        return None, "", None
    if kind == "string_value":
        return v.string_value, "", None
    if kind == "number_value":
        number = v.number_value
        if not number.is_integer():
            return None, "must be an integer", number
        return int(number), "", None
    if kind == "bool_value":
        return None, "must be an integer or a string", v.bool_value
    return None, "must be an integer or a string", _Json(v)


def int_or_str(v: Value | None) -> IntOrStr | None:
    """The int or string a Value holds; None if unset or null; raises on fractions, bools etc."""
    x, why, bad = _decode(v)
    if why:
        raise IntOrStringError(f"{why}, got {format_value(bad)}")
    return x


def make_int_or_str(x: IntOrStr) -> Value:
    if isinstance(x, bool) or not isinstance(x, int | str):
        raise IntOrStringError(f"must be an integer or a string, got {x!r}")
    if isinstance(x, str):
        return Value(string_value=x)
    if abs(x) > _MAX_EXACT_DOUBLE:
        raise IntOrStringError(f"{x} cannot be represented exactly")
    return Value(number_value=float(x))


def _percent(s: str) -> int | None:
    body = s.removesuffix("%")
    if body == s or not _ATOI_RE.match(body):
        return None
    return int(body)


def resolve_int_or_percent(v: Value | IntOrStr | None, total: int, round_up: bool) -> int:
    """Kubernetes' GetScaledValueFromIntOrPercent: a number as is, "N%" of `total` rounded up
    (maxSurge) or down (maxUnavailable)."""
    x = v if isinstance(v, int | str) else int_or_str(v)
    if x is None:
        raise IntOrStringError("nil value for IntOrString")
    if isinstance(x, int):
        return x
    percent = _percent(x)
    if percent is None:
        raise IntOrStringError(
            f"invalid value for IntOrString: {x!r} is neither an integer nor a percentage"
        )
    scaled = percent * total
    return -(-scaled // 100) if round_up else scaled // 100


def _read(v: Value, path: str) -> tuple[IntOrStr | None, list[FieldViolation]]:
    """The held value, or the violation explaining why it cannot be read."""
    x, why, bad = _decode(v)
    return x, ([invalid(path, bad, why)] if why else [])


@functools.lru_cache(maxsize=256)
def _percent_within_100(text: str) -> int | None:
    if not _PERCENT_RE.match(text):
        return None
    percent = int(text[:-1])
    return percent if percent <= 100 else None


def int_or_percent_within_100(v: Value) -> int | None:
    """A fast path for rolling-update bounds: the number (a percentage's number) when `v` holds
    a non-negative integer or an "N%" of at most 100%, i.e. when neither
    validate_int_or_percent nor validate_not_more_than_100_percent has anything to report;
    None otherwise (unset included)."""
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return _percent_within_100(v.string_value)
    if kind == "number_value":
        number = v.number_value
        if number.is_integer() and number >= 0:
            return int(number)
    return None


def validate_int_or_percent(v: Value, path: str) -> list[FieldViolation]:
    """Kubernetes' ValidatePositiveIntOrPercent: a non-negative integer or "N%". Unset is fine."""
    x, errs = _read(v, path)
    if errs or x is None:
        return errs
    if isinstance(x, int):
        return validate_non_negative(x, path)
    if not _PERCENT_RE.match(x):
        return [invalid(path, x, regex_error(PERCENT_ERR_MSG, PERCENT_FMT, "1%", "93%"))]
    return []


def validate_not_more_than_100_percent(v: Value, path: str) -> list[FieldViolation]:
    """Kubernetes' IsNotMoreThan100Percent (maxUnavailable); numbers are not limited."""
    x, errs = _read(v, path)
    if errs or not isinstance(x, str):
        return []
    percent = _percent(x)
    if percent is not None and percent > 100:
        return [invalid(path, x, "must not be greater than 100%")]
    return []


def port_ok(v: Value) -> bool:
    """True exactly when validate_int_or_str_port has nothing to say (no paths, no lists)."""
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        number = v.number_value
        return number.is_integer() and 1 <= number <= 65535
    if kind == "string_value":
        return port_name_ok(v.string_value)
    return False


def validate_int_or_str_port(v: Value, path: str) -> list[FieldViolation]:
    """Kubernetes' ValidatePortNumOrName: 1-65535 or an IANA_SVC_NAME. Unset is required."""
    if port_ok(v):
        return []
    x, errs = _read(v, path)
    if errs:
        return errs
    if x is None:
        return [required(path)]
    messages = is_port_number(x) if isinstance(x, int) else is_port_name(x)
    return [invalid(path, x, m) for m in messages]

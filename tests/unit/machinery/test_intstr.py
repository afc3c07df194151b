from __future__ import annotations

import pytest
from capstan.machinery.intstr import (
    IntOrStringError,
    int_or_str,
    make_int_or_str,
    resolve_int_or_percent,
    validate_int_or_percent,
    validate_int_or_str_port,
    validate_not_more_than_100_percent,
)
from capstan.machinery.violations import FieldViolation
from google.protobuf import json_format
from google.protobuf.struct_pb2 import ListValue, NullValue, Struct, Value

pytestmark = pytest.mark.unit

PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%', regex used for validation is '[0-9]+%')"
)


RANGE_MSG = "must be between 1 and 65535, inclusive"


def from_json(text: str) -> Value:
    return json_format.Parse(text, Value())


def test_int_or_str_reads_json_forms() -> None:
    assert int_or_str(from_json("8080")) == 8080
    assert isinstance(int_or_str(from_json("8080")), int)
    assert int_or_str(from_json("8080.0")) == 8080
    assert int_or_str(from_json('"http"')) == "http"
    assert int_or_str(from_json('"25%"')) == "25%"
    assert int_or_str(from_json("-3")) == -3
    assert int_or_str(from_json("null")) is None
    assert int_or_str(Value()) is None
    assert int_or_str(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Value(number_value=1.5), "must be an integer, got 1.5"),
        (Value(bool_value=True), "must be an integer or a string, got true"),
        (Value(struct_value=Struct()), "must be an integer or a string, got {}"),
        (Value(list_value=ListValue()), r"must be an integer or a string, got \[\]"),
    ],
)
def test_int_or_str_rejects_other_kinds(value: Value, message: str) -> None:
    with pytest.raises(IntOrStringError, match=message):
        int_or_str(value)


def test_make_int_or_str_round_trips() -> None:
    assert json_format.MessageToJson(make_int_or_str(8080)) == "8080.0"
    assert int_or_str(make_int_or_str(8080)) == 8080
    assert int_or_str(make_int_or_str("http")) == "http"
    assert int_or_str(make_int_or_str(0)) == 0
    assert make_int_or_str(0).WhichOneof("kind") == "number_value"  # zero is set, not unset
    with pytest.raises(IntOrStringError):
        make_int_or_str(True)
    with pytest.raises(IntOrStringError, match="exactly"):
        make_int_or_str(2**60)


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        ("25%", 10, True, 3),  # maxSurge rounds up
        ("25%", 10, False, 2),  # maxUnavailable rounds down
        ("25%", 4, True, 1),
        ("25%", 4, False, 1),
        ("0%", 10, True, 0),
        ("100%", 7, False, 7),
        ("33%", 3, True, 1),
        ("33%", 3, False, 0),
        ("1%", 1, True, 1),
        ("1%", 1, False, 0),
        ("150%", 10, True, 15),
        ("25%", 0, True, 0),
        (5, 10, True, 5),
        (5, 10, False, 5),
        (0, 10, True, 0),
    ],
)
def test_resolve_int_or_percent(
    value: int | str, total: int, round_up: bool, expected: int
) -> None:
    assert resolve_int_or_percent(value, total, round_up) == expected
    assert resolve_int_or_percent(make_int_or_str(value), total, round_up) == expected


@pytest.mark.parametrize("value", ["25", "abc%", "%", "2 5%", "1.5%", Value()])
def test_resolve_int_or_percent_errors(value: str | Value) -> None:
    with pytest.raises(IntOrStringError):
        resolve_int_or_percent(value, 10, True)


@pytest.mark.parametrize(
    ("json", "expected"),
    [
        ("1", []),
        ("0", []),
        ('"25%"', []),
        ('"0%"', []),
        ('"150%"', []),  # only maxUnavailable is limited to 100%
        ("null", []),
        ("-1", ["Invalid value: -1: must be greater than or equal to 0"]),
        ('"25"', [f'Invalid value: "25": {PERCENT_MSG}']),
        ('"-5%"', [f'Invalid value: "-5%": {PERCENT_MSG}']),
        ('"5.5%"', [f'Invalid value: "5.5%": {PERCENT_MSG}']),
        ("1.5", ["Invalid value: 1.5: must be an integer"]),
        ("true", ["Invalid value: true: must be an integer or a string"]),
        ('{"a": 1}', ['Invalid value: {"a": 1.0}: must be an integer or a string']),
    ],
)
def test_validate_int_or_percent(json: str, expected: list[str]) -> None:
    violations = validate_int_or_percent(from_json(json), "spec.strategy.rollingUpdate.maxSurge")
    assert [x.description for x in violations] == expected
    assert all(x.field == "spec.strategy.rollingUpdate.maxSurge" for x in violations)


def test_validate_not_more_than_100_percent() -> None:
    path = "spec.strategy.rollingUpdate.maxUnavailable"
    assert validate_not_more_than_100_percent(from_json('"100%"'), path) == []
    assert validate_not_more_than_100_percent(from_json("500"), path) == []
    assert validate_not_more_than_100_percent(from_json('"101%"'), path) == [
        FieldViolation(path, 'Invalid value: "101%": must not be greater than 100%')
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Value(number_value=8080), []),
        (Value(string_value="http"), []),
        (Value(number_value=0), [f"Invalid value: 0: {RANGE_MSG}"]),
        (Value(number_value=70000), [f"Invalid value: 70000: {RANGE_MSG}"]),
        (Value(number_value=80.5), ["Invalid value: 80.5: must be an integer"]),
        (
            Value(string_value="a--b"),
            ['Invalid value: "a--b": must not contain consecutive hyphens'],
        ),
        (
            Value(string_value="8080"),
            ['Invalid value: "8080": must contain at least one letter (a-z)'],
        ),
        (Value(bool_value=False), ["Invalid value: false: must be an integer or a string"]),
        (Value(list_value=ListValue()), ["Invalid value: []: must be an integer or a string"]),
        (Value(), ["Required value"]),
        (Value(null_value=NullValue.NULL_VALUE), ["Required value"]),
    ],
)
def test_validate_int_or_str_port(value: Value, expected: list[str]) -> None:
    violations = validate_int_or_str_port(value, "spec.ports[0].targetPort")
    assert [x.description for x in violations] == expected

from __future__ import annotations

from fractions import Fraction

import pytest
from capstan.machinery.quantity import (
    QUANTITY_ERR_MSG,
    Quantity,
    QuantityError,
    QuantityFormat,
    compare_quantities,
    cpu_millis,
    format_bytes,
    format_cpu_millis,
    parse_quantity,
    to_bytes,
    validate_quantity,
)
from capstan.machinery.violations import FieldViolation

pytestmark = pytest.mark.unit

DEC = QuantityFormat.DECIMAL_SI
BIN = QuantityFormat.BINARY_SI
EXP = QuantityFormat.DECIMAL_EXPONENT


@pytest.mark.parametrize(
    ("text", "value", "fmt", "canonical"),
    [
        ("0", Fraction(0), DEC, "0"),
        ("0Mi", Fraction(0), BIN, "0"),
        ("2", Fraction(2), DEC, "2"),
        ("+3", Fraction(3), DEC, "3"),
        ("-1.5", Fraction(-3, 2), DEC, "-1500m"),
        ("100m", Fraction(1, 10), DEC, "100m"),
        ("0.5", Fraction(1, 2), DEC, "500m"),
        (".5", Fraction(1, 2), DEC, "500m"),
        ("5.", Fraction(5), DEC, "5"),
        ("1.5", Fraction(3, 2), DEC, "1500m"),
        ("1000", Fraction(1000), DEC, "1k"),
        ("1500", Fraction(1500), DEC, "1500"),
        ("1k", Fraction(1000), DEC, "1k"),
        ("500M", Fraction(500_000_000), DEC, "500M"),
        ("1G", Fraction(10**9), DEC, "1G"),
        ("2T", Fraction(2 * 10**12), DEC, "2T"),
        ("3P", Fraction(3 * 10**15), DEC, "3P"),
        ("1E", Fraction(10**18), DEC, "1E"),
        ("250u", Fraction(250, 10**6), DEC, "250u"),
        ("7n", Fraction(7, 10**9), DEC, "7n"),
        ("0.1n", Fraction(1, 10**9), DEC, "1n"),  # finer than nano rounds up
        ("-0.1n", Fraction(-1, 10**9), DEC, "-1n"),  # ... away from zero
        ("1.0000000001", Fraction(1_000_000_001, 10**9), DEC, "1000000001n"),
        ("1Ki", Fraction(1024), BIN, "1Ki"),
        ("128Mi", Fraction(128 * 2**20), BIN, "128Mi"),
        ("1Gi", Fraction(2**30), BIN, "1Gi"),
        ("1.5Gi", Fraction(3 * 2**29), BIN, "1536Mi"),
        ("1024Mi", Fraction(2**30), BIN, "1Gi"),
        ("2Ti", Fraction(2 * 2**40), BIN, "2Ti"),
        ("1Pi", Fraction(2**50), BIN, "1Pi"),
        ("1Ei", Fraction(2**60), BIN, "1Ei"),
        ("0.5Ki", Fraction(512), BIN, "512"),  # binary below 1024 prints as decimal
        ("1025Ki", Fraction(1025 * 1024), BIN, "1025Ki"),
        ("0.5Mi", Fraction(2**19), BIN, "512Ki"),
        ("0.0001Ki", Fraction(1024, 10**4), DEC, "102400u"),  # binary below 1 becomes decimal
        ("16Ei", Fraction(2**63 - 1), BIN, "9223372036854775807"),  # capped at int64
        ("1e3", Fraction(1000), EXP, "1e3"),
        ("1E3", Fraction(1000), EXP, "1e3"),
        ("12e2", Fraction(1200), EXP, "1200"),
        ("1.5e3", Fraction(1500), EXP, "1500"),
        ("1e-3", Fraction(1, 1000), EXP, "1e-3"),
        ("1e+6", Fraction(10**6), EXP, "1e6"),
    ],
)
def test_parse_and_canonical_form(
    text: str, value: Fraction, fmt: QuantityFormat, canonical: str
) -> None:
    q = parse_quantity(text)
    assert q.value == value
    assert q.format is fmt
    assert str(q) == canonical
    assert parse_quantity(canonical).value == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "abc",
        "Mi",
        ".",
        "1.2.3",
        "--1",
        "1 Mi",
        "1KI",
        "1ki",
        "1K",
        "1e",
        "1e1.5",
        "1m3",
        "1Mi3",
        "1,5",
        "0x10",
        "1_000",
        "\u0661",
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)
    assert validate_quantity(text, "resources.limits.cpu") == [
        FieldViolation("resources.limits.cpu", f'Invalid value: "{text}": {QUANTITY_ERR_MSG}')
    ]


def test_exponent_bound_prevents_huge_work() -> None:
    with pytest.raises(QuantityError, match="exponent out of range"):
        parse_quantity("1e100000000")


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("100m", 100),
        ("0.5", 500),
        ("1", 1000),
        ("2", 2000),
        ("1.5", 1500),
        ("0.1m", 1),
        ("1n", 1),
        ("250m", 250),
        ("1e-3", 1),
        ("1k", 1_000_000),
        ("0", 0),
        ("-0.5m", 0),
    ],
)
def test_cpu_millis_rounds_up(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis
    assert cpu_millis(parse_quantity(text)) == millis


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("128Mi", 134_217_728),
        ("1Gi", 1_073_741_824),
        ("500M", 500_000_000),
        ("1k", 1000),
        ("1Ki", 1024),
        ("1", 1),
        ("100m", 1),
        ("1.5", 2),
        ("0", 0),
    ],
)
def test_to_bytes_rounds_up(text: str, n: int) -> None:
    assert to_bytes(text) == n


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (500, "500m"),
        (2000, "2"),
        (1500, "1500m"),
        (0, "0"),
        (100, "100m"),
        (1, "1m"),
        (1_000_000, "1k"),
        (-250, "-250m"),
    ],
)
def test_format_cpu_millis(millis: int, text: str) -> None:
    assert format_cpu_millis(millis) == text
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (134_217_728, "128Mi"),
        (2**30, "1Gi"),
        (1024, "1Ki"),
        (1536 * 2**20, "1536Mi"),
        (500_000_000, "500M"),
        (1000, "1k"),
        (1536, "1536"),
        (1, "1"),
        (0, "0"),
        (1023, "1023"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
    assert to_bytes(text) == n


def test_comparisons() -> None:
    assert compare_quantities("1Ki", "1024") == 0
    assert compare_quantities("1k", "1Ki") == -1
    assert compare_quantities("1", "999m") == 1
    assert compare_quantities(parse_quantity("2Gi"), "2048Mi") == 0
    assert parse_quantity("1Ki") == parse_quantity("1024")  # equality ignores the format
    assert parse_quantity("100m") < parse_quantity("0.2") <= parse_quantity("200m")
    assert max(parse_quantity(x) for x in ["1Gi", "1G", "900Mi"]) == parse_quantity("1Gi")
    assert hash(parse_quantity("1Ki")) == hash(parse_quantity("1024"))


def test_arithmetic_keeps_left_format() -> None:
    total = parse_quantity("1Gi") + parse_quantity("512Mi")
    assert str(total) == "1536Mi"
    assert str(parse_quantity("1") - parse_quantity("250m")) == "750m"
    assert str(-parse_quantity("1Ki")) == "-1Ki"
    assert Quantity(Fraction(1, 3)).milli_value() == 334


def test_validate_quantity() -> None:
    assert validate_quantity("100m", "cpu") == []
    assert validate_quantity("-1", "cpu") == []
    assert validate_quantity("-1", "cpu", non_negative=True) == [
        FieldViolation("cpu", 'Invalid value: "-1": must be greater than or equal to 0')
    ]
    assert validate_quantity("0", "cpu", non_negative=True) == []

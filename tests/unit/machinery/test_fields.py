from __future__ import annotations

import pytest
from capstan.machinery.fields import (
    EVERYTHING,
    FieldOperator,
    FieldRequirement,
    FieldSelector,
    FieldSelectorError,
    escape_value,
    parse_field_selector,
    unescape_value,
)

pytestmark = pytest.mark.unit

POD = {"metadata.name": "web-1", "metadata.namespace": "default", "spec.nodeName": "node-1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name=web-2", False),
        ("metadata.name!=web-2", True),
        ("metadata.name!=web-1", False),
        ("metadata.name=web-1,spec.nodeName=node-1", True),
        ("metadata.name=web-1,spec.nodeName=node-2", False),
        ("status.phase=", True),  # a missing field reads as ""
        ("status.phase!=", False),
        ("spec.nodeName=", False),
        ("spec.nodeName!=", True),
        ("status.phase!=Running", True),
    ],
)
def test_matches_mapping(text: str, expected: bool) -> None:
    assert parse_field_selector(text).matches(POD) is expected


def test_matches_getter() -> None:
    calls: list[str] = []

    def get(field: str) -> str | None:
        calls.append(field)
        return POD.get(field)

    selector = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed")
    assert selector.matches(get)
    assert sorted(calls) == ["spec.nodeName", "status.phase"]
    assert not parse_field_selector("spec.nodeName=other").matches(get)


@pytest.mark.parametrize(
    ("text", "field", "operator", "value"),
    [
        ("a=b", "a", FieldOperator.EQUALS, "b"),
        ("a==b", "a", FieldOperator.EQUALS, "b"),
        ("a!=b", "a", FieldOperator.NOT_EQUALS, "b"),
        ("a=", "a", FieldOperator.EQUALS, ""),
        (r"a=x\,y", "a", FieldOperator.EQUALS, "x,y"),
        (r"a=x\=y", "a", FieldOperator.EQUALS, "x=y"),
        (r"a=x\\y", "a", FieldOperator.EQUALS, "x\\y"),
        (r"a=\\\,\=", "a", FieldOperator.EQUALS, "\\,="),
        (" a =b", "a", FieldOperator.EQUALS, "b"),
        ("a= b ", "a", FieldOperator.EQUALS, " b "),  # values are taken verbatim
        ("a=b!c", "a", FieldOperator.EQUALS, "b!c"),
    ],
)
def test_parse_single_term(text: str, field: str, operator: FieldOperator, value: str) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == (FieldRequirement(field, operator, value),)


def test_escaped_comma_does_not_split_terms() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b,spec.nodeName=n")
    assert [r.value for r in selector.requirements] == ["a,b", "n"]
    assert selector.matches({"metadata.name": "a,b", "spec.nodeName": "n"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid field selector: 'a'; can't understand 'a'"),
        ("a=b,c", "can't understand 'c'"),
        ("=b", "missing field name in '=b'"),
        ("a=b=c", "unescaped character in value: '='"),
        (r"a=b\c", "invalid escape sequence: \\c"),
        ("a=b\\", "invalid escape sequence: \\ in"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(FieldSelectorError) as info:
        parse_field_selector(text)
    assert message in str(info.value)


@pytest.mark.parametrize("value", ["", "plain", "a,b", "a=b", "back\\slash", "\\,=\\", "x!=y"])
def test_escape_round_trip(value: str) -> None:
    assert unescape_value(escape_value(value)) == value
    selector = FieldSelector([FieldRequirement("f", FieldOperator.EQUALS, value)])
    assert parse_field_selector(str(selector)) == selector
    assert parse_field_selector(str(selector)).matches({"f": value})


def test_canonical_string_is_sorted() -> None:
    selector = parse_field_selector("spec.nodeName!=x,metadata.name==a,,")
    assert str(selector) == "metadata.name=a,spec.nodeName!=x"
    assert repr(selector) == "FieldSelector('metadata.name=a,spec.nodeName!=x')"
    assert len(selector) == 2
    assert list(selector) == list(selector.requirements)


def test_empty_selector() -> None:
    assert parse_field_selector("").empty
    assert parse_field_selector(" , ").empty
    assert parse_field_selector("") == EVERYTHING
    assert EVERYTHING.matches({})
    assert not parse_field_selector("a=b").empty


def test_exact_pins_equality_only() -> None:
    selector = parse_field_selector("spec.nodeName=node-1,metadata.name!=x")
    assert selector.exact("spec.nodeName") == "node-1"
    assert selector.exact("metadata.name") is None
    assert selector.exact("status.phase") is None
    assert parse_field_selector("spec.nodeName=").exact("spec.nodeName") == ""


def test_check_supported_lists_supported_fields() -> None:
    supported = ["spec.nodeName", "metadata.name", "status.phase"]
    parse_field_selector("metadata.name=a,spec.nodeName=b").check_supported(supported)
    with pytest.raises(FieldSelectorError) as info:
        parse_field_selector("spec.bogus=1,metadata.name=a,spec.zzz=2").check_supported(supported)
    assert str(info.value) == (
        "field label not supported: 'spec.bogus', 'spec.zzz' "
        "(supported field labels: metadata.name, spec.nodeName, status.phase)"
    )
    assert parse_field_selector("a=1,b!=2,a=3").fields == frozenset({"a", "b"})

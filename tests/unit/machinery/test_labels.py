from __future__ import annotations

import pytest
from capstan.api.meta.v1.meta_pb2 import LabelSelector, LabelSelectorRequirement, ObjectMeta
from capstan.machinery.labels import (
    EVERYTHING,
    Operator,
    Requirement,
    Selector,
    SelectorError,
    format_labels,
    parse_labels,
    parse_selector,
    selector_from_map,
    selector_from_proto,
)

pytestmark = pytest.mark.unit

PROD_WEB = {"app": "web", "env": "prod", "tier": "frontend"}
QA_API = {"app": "api", "env": "qa"}
NUMERIC = {"gpus": "4"}
UNLABELLED: dict[str, str] = {}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", UNLABELLED, True),
        ("", PROD_WEB, True),
        ("app=web", PROD_WEB, True),
        ("app=web", QA_API, False),
        ("app=web", UNLABELLED, False),
        ("app==web", PROD_WEB, True),
        ("app==web", QA_API, False),
        ("app!=web", PROD_WEB, False),
        ("app!=web", QA_API, True),
        ("app!=web", UNLABELLED, True),  # != also matches objects without the label
        ("env in (prod,qa)", PROD_WEB, True),
        ("env in (prod,qa)", QA_API, True),
        ("env in (prod)", QA_API, False),
        ("env in (prod,qa)", UNLABELLED, False),
        ("env notin (prod)", PROD_WEB, False),
        ("env notin (prod)", QA_API, True),
        ("env notin (prod)", UNLABELLED, True),  # notin also matches absent labels
        ("tier", PROD_WEB, True),
        ("tier", QA_API, False),
        ("!tier", PROD_WEB, False),
        ("!tier", QA_API, True),
        ("!tier", UNLABELLED, True),
        ("app=web,env=prod", PROD_WEB, True),
        ("app=web,env=qa", PROD_WEB, False),
        ("app,!tier", QA_API, True),
        ("app,!tier", PROD_WEB, False),
        ("gpus>2", NUMERIC, True),
        ("gpus>4", NUMERIC, False),
        ("gpus<5", NUMERIC, True),
        ("gpus<4", NUMERIC, False),
        ("gpus>2", UNLABELLED, False),
        ("app>2", PROD_WEB, False),  # non-integer label never matches a numeric comparison
        ("env=", {"env": ""}, True),
        ("env=", UNLABELLED, False),
        ("env in ()", {"env": ""}, True),
        ("env in (,prod)", {"env": ""}, True),
        ("env in (,prod)", PROD_WEB, True),
        ("app=web,app=api", PROD_WEB, False),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a=b"),
        ("  a  =  b  ", "a=b"),
        ("\ta!=b\n", "a!=b"),
        ("b=2,a=1", "a=1,b=2"),
        ("env in (qa, prod ,qa)", "env in (prod,qa)"),
        ("env notin(prod)", "env notin (prod)"),
        ("app , ! canary", "app,!canary"),
        ("x>5,y<3", "x>5,y<3"),
        ("a=", "a="),
        ("a=,b=c", "a=,b=c"),
        ("a in ()", "a in ()"),
        ("a in (,x)", "a in (,x)"),
        ("a in (x,)", "a in (,x)"),
        ("a in (x,,y)", "a in (,x,y)"),
        ("a in (in, notin)", "a in (in,notin)"),
        ("example.com/app=v1.2_x-y", "example.com/app=v1.2_x-y"),
        ("a=b,a=b", "a=b"),
    ],
)
def test_canonical_string_round_trips(text: str, canonical: str) -> None:
    selector = parse_selector(text)
    assert str(selector) == canonical
    assert parse_selector(canonical) == selector
    assert parse_selector(str(selector)).matches(PROD_WEB) == selector.matches(PROD_WEB)


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("a in", "unable to parse requirement: found end of string, expected: '('", 4),
        ("a notin x", "unable to parse requirement: found 'x', expected: '('", 8),
        ("a in (x", "unable to parse requirement: found end of string, expected: ',' or ')'", 7),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'", 8),
        ("a in (=)", "found '=', expected: ',', ')' or identifier", 6),
        ("a=b c", "found 'c', expected: ',' or 'end of string'", 4),
        (",a", "found ',', expected: !, identifier, or 'end of string'", 0),
        ("a,", "found end of string, expected: identifier after ','", 2),
        ("a,,b", "found ',', expected: identifier after ','", 2),
        ("!", "unable to parse requirement: found end of string, expected: identifier", 1),
        ("!!a", "unable to parse requirement: found '!', expected: identifier", 1),
        ("!a=b", "found '=', expected: ',' or 'end of string'", 2),
        ("in=x", "found 'in', expected: !, identifier, or 'end of string'", 0),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier", 2),
        ("a b", "found 'b', expected: '=', '==', '!=', 'in', 'notin', '>' or '<'", 2),
        ("a=b)", "found ')', expected: ',' or 'end of string'", 3),
        ("Bad_Key_=x", "invalid label key 'Bad_Key_': name part must consist of", 0),
        ("-a=x", "invalid label key '-a'", 0),
        ("a/b/c=x", "invalid label key 'a/b/c': a qualified name must consist of", 0),
        ("UPPER.com/a=x", "invalid label key 'UPPER.com/a': prefix part a lowercase RFC 1123", 0),
        ("a=-x", "invalid label value '-x': a valid label must be an empty string", 2),
        ("a in (ok, -bad)", "invalid label value '-bad'", 10),
        ("a=" + "v" * 64, "must be no more than 63 characters", 2),
        ("a>x", "for 'Gt', 'Lt' operators, the value must be an integer", 0),
        ("a<", "for 'Gt', 'Lt' operators, the value must be an integer", 0),
    ],
)
def test_parse_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert message in str(info.value)
    assert info.value.position == position
    assert f"(at column {position + 1} of {text!r})" in str(info.value)


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unable to parse requirement"):
        parse_selector("a in")


def test_empty_selector() -> None:
    assert parse_selector("").empty
    assert parse_selector("   ").empty
    assert parse_selector("") == EVERYTHING
    assert not parse_selector("a").empty
    assert len(parse_selector("a,b=c")) == 2


def test_requirements_are_exposed_in_canonical_order() -> None:
    selector = parse_selector("z=1, a notin (y,x), m")
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == [
        ("a", Operator.NOT_IN, ("x", "y")),
        ("m", Operator.EXISTS, ()),
        ("z", Operator.EQUALS, ("1",)),
    ]
    assert list(selector) == list(selector.requirements)


def test_equality_requirements_for_index_lookup() -> None:
    selector = parse_selector("app=web,env in (prod),tier in (a,b),!canary,x!=y,zone")
    assert selector.equality_requirements() == {"app": "web", "env": "prod"}
    assert selector.exact("app") == "web"
    assert selector.exact("tier") is None
    assert selector.exact("missing") is None
    assert EVERYTHING.equality_requirements() == {}


def test_matches_protobuf_label_maps_without_mutating_them() -> None:
    meta = ObjectMeta(labels={"app": "web"})
    assert parse_selector("app=web,!canary,env notin (x)").matches(meta.labels)
    assert not parse_selector("env in (x)").matches(meta.labels)
    assert dict(meta.labels) == {"app": "web"}


def test_requirement_construction_and_validation() -> None:
    r = Requirement("env", Operator.IN, ["qa", "prod", "qa"])
    assert r.values == ("prod", "qa")
    assert r.matches({"env": "qa"})
    assert not r.matches({"env": "dev"})
    assert Requirement("env", "notin", ["x"]).operator is Operator.NOT_IN
    assert str(Requirement("a", Operator.DOES_NOT_EXIST)) == "!a"
    assert r == Requirement("env", Operator.IN, ["prod", "qa"])
    assert hash(r) == hash(Requirement("env", Operator.IN, ["prod", "qa"]))
    with pytest.raises(AttributeError, match="immutable"):
        r.key = "other"
    for key, op, values, message in [
        ("a", Operator.IN, [], "values set can't be empty"),
        ("a", Operator.EQUALS, ["x", "y"], "requires one single value"),
        ("a", Operator.EXISTS, ["x"], "values set must be empty"),
        ("a", Operator.GREATER_THAN, ["1", "2"], "exactly one value is required"),
        ("a", "In", ["x"], "'In' is not a valid selector operator"),
        ("", Operator.EXISTS, [], "name part must be non-empty"),
    ]:
        with pytest.raises(SelectorError, match=message):
            Requirement(key, op, values)


def test_add_returns_a_new_selector() -> None:
    base = parse_selector("app=web")
    extended = base.add(Requirement("env", Operator.EQUALS, ["prod"]))
    assert str(base) == "app=web"
    assert str(extended) == "app=web,env=prod"
    assert extended.matches(PROD_WEB)
    assert not extended.matches({"app": "web"})


def test_selector_equality_and_hash_ignore_input_order() -> None:
    a = parse_selector("a=1,b in (x,y)")
    b = Selector(
        [Requirement("b", Operator.IN, ["y", "x"]), Requirement("a", Operator.EQUALS, ["1"])]
    )
    assert a == b
    assert hash(a) == hash(b)
    assert a != parse_selector("a=1")
    assert repr(a) == "Selector('a=1,b in (x,y)')"


def test_selector_from_map() -> None:
    selector = selector_from_map({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert not selector.matches({"a": "1"})
    assert selector_from_map({}).empty
    with pytest.raises(SelectorError, match="matchLabels: invalid label value '-x'"):
        selector_from_map({"a": "-x"})


def test_selector_from_proto() -> None:
    proto = LabelSelector(
        match_labels={"app": "web"},
        match_expressions=[
            LabelSelectorRequirement(key="env", operator="In", values=["prod", "qa"]),
            LabelSelectorRequirement(key="tier", operator="NotIn", values=["db"]),
            LabelSelectorRequirement(key="zone", operator="Exists"),
            LabelSelectorRequirement(key="canary", operator="DoesNotExist"),
        ],
    )
    selector = selector_from_proto(proto)
    assert str(selector) == "app=web,!canary,env in (prod,qa),tier notin (db),zone"
    assert selector.matches({"app": "web", "env": "qa", "tier": "fe", "zone": "a"})
    assert not selector.matches({"app": "web", "env": "qa", "zone": "a", "canary": "1"})
    assert not selector.matches({"app": "web", "env": "qa", "tier": "db", "zone": "a"})
    assert parse_selector(str(selector)) == selector


def test_empty_proto_selector_matches_everything() -> None:
    selector = selector_from_proto(LabelSelector())
    assert selector.empty
    assert selector.matches(PROD_WEB)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            LabelSelectorRequirement(key="a", operator="In"),
            "matchExpressions[0]: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            LabelSelectorRequirement(key="a", operator="NotIn"),
            "matchExpressions[0]: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            LabelSelectorRequirement(key="a", operator="Exists", values=["x"]),
            "values set must be empty for exists and does not exist",
        ),
        (
            LabelSelectorRequirement(key="a", operator="DoesNotExist", values=["x"]),
            "values set must be empty for exists and does not exist",
        ),
        (
            LabelSelectorRequirement(key="a", operator="Gt", values=["1"]),
            "matchExpressions[0].operator: 'Gt' is not a valid label selector operator",
        ),
        (
            LabelSelectorRequirement(key="a", operator="in", values=["x"]),
            "'in' is not a valid label selector operator",
        ),
        (
            LabelSelectorRequirement(key="bad key", operator="Exists"),
            "invalid label key 'bad key'",
        ),
        (
            LabelSelectorRequirement(key="a", operator="In", values=["bad value"]),
            "invalid label value 'bad value'",
        ),
    ],
)
def test_selector_from_proto_errors(expression: LabelSelectorRequirement, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        selector_from_proto(LabelSelector(match_expressions=[expression]))
    assert message in str(info.value)


def test_format_labels_is_sorted() -> None:
    assert format_labels({"b": "2", "a": "1", "c": ""}) == "a=1,b=2,c="
    assert format_labels({}) == ""


def test_parse_labels() -> None:
    assert parse_labels("run=nginx, tier=fe") == {"run": "nginx", "tier": "fe"}
    assert parse_labels("") == {}
    assert parse_labels(format_labels(PROD_WEB)) == PROD_WEB
    with pytest.raises(SelectorError, match="key=value pairs, found 'env in \\(a\\)'"):
        parse_labels("env in (a)")
    with pytest.raises(SelectorError, match="two different values"):
        parse_labels("a=1,a=2")

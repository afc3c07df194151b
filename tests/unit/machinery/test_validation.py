from __future__ import annotations

import random

import pytest
from capstan.api.meta.v1.meta_pb2 import LabelSelector, LabelSelectorRequirement
from capstan.machinery import validation as v
from capstan.machinery.violations import FieldViolation

pytestmark = pytest.mark.unit

StringValidator = v.StringValidator

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
ENV_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)


def descriptions(violations: list[FieldViolation]) -> list[str]:
    return [x.description for x in violations]


# (validator, value, expected descriptions); [] means valid.
STRING_CASES: list[tuple[StringValidator, str, list[str]]] = [
    (v.validate_dns1123_subdomain, "example.com", []),
    (v.validate_dns1123_subdomain, "a", []),
    (v.validate_dns1123_subdomain, "a-b.c-d.e", []),
    (v.validate_dns1123_subdomain, "1.2.3", []),
    (v.validate_dns1123_subdomain, "a" * 253, []),
    (v.validate_dns1123_subdomain, "", [f'Invalid value: "": {SUBDOMAIN_MSG}']),
    (v.validate_dns1123_subdomain, "Foo_Bar", [f'Invalid value: "Foo_Bar": {SUBDOMAIN_MSG}']),
    (v.validate_dns1123_subdomain, "a..b", [f'Invalid value: "a..b": {SUBDOMAIN_MSG}']),
    (v.validate_dns1123_subdomain, "-a", [f'Invalid value: "-a": {SUBDOMAIN_MSG}']),
    (v.validate_dns1123_subdomain, "a.", [f'Invalid value: "a.": {SUBDOMAIN_MSG}']),
    (v.validate_dns1123_subdomain, "a\n", [f'Invalid value: "a\\n": {SUBDOMAIN_MSG}']),
    (
        v.validate_dns1123_subdomain,
        "a" * 254,
        [f'Invalid value: "{"a" * 254}": must be no more than 253 characters'],
    ),
    (v.validate_dns1123_label, "my-name", []),
    (v.validate_dns1123_label, "123-abc", []),
    (v.validate_dns1123_label, "a" * 63, []),
    (v.validate_dns1123_label, "a.b", ['Invalid value: "a.b": must not contain dots']),
    (v.validate_dns1123_label, "My-Name", [f'Invalid value: "My-Name": {LABEL_MSG}']),
    (v.validate_dns1123_label, "a-", [f'Invalid value: "a-": {LABEL_MSG}']),
    (
        v.validate_dns1123_label,
        "a" * 64,
        [f'Invalid value: "{"a" * 64}": must be no more than 63 characters'],
    ),
    (v.validate_dns1035_label, "my-svc", []),
    (v.validate_dns1035_label, "a1", []),
    (v.validate_dns1035_label, "1abc", [f'Invalid value: "1abc": {DNS1035_MSG}']),
    (v.validate_dns1035_label, "a.b", [f'Invalid value: "a.b": {DNS1035_MSG}']),
    (v.validate_label_key, "app", []),
    (v.validate_label_key, "acme.com/app-version", []),
    (v.validate_label_key, "appVersion", []),
    (v.validate_label_key, "app.version", []),
    (v.validate_label_key, "kubernetes.io/cluster-service", []),
    (v.validate_label_key, "A_b.C-9", []),
    (v.validate_label_key, "a" * 63, []),
    (
        v.validate_label_key,
        "",
        [
            'Invalid value: "": name part must be non-empty',
            *[f'Invalid value: "": {NAME_PART_MSG}'],
        ],
    ),
    (v.validate_label_key, "_a", [f'Invalid value: "_a": {NAME_PART_MSG}']),
    (v.validate_label_key, "a b", [f'Invalid value: "a b": {NAME_PART_MSG}']),
    (
        v.validate_label_key,
        "a" * 64,
        [f'Invalid value: "{"a" * 64}": name part must be no more than 63 characters'],
    ),
    (
        v.validate_label_key,
        "/a",
        ['Invalid value: "/a": prefix part must be non-empty'],
    ),
    (
        v.validate_label_key,
        "Acme.com/a",
        [f'Invalid value: "Acme.com/a": prefix part {SUBDOMAIN_MSG}'],
    ),
    (
        v.validate_label_key,
        "a/b/c",
        [
            'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ],
    ),
    (v.validate_label_value, "", []),
    (v.validate_label_value, "v1.2_x-Y", []),
    (v.validate_label_value, "a" * 63, []),
    (v.validate_label_value, "-v", [f'Invalid value: "-v": {LABEL_VALUE_MSG}']),
    (v.validate_label_value, "a/b", [f'Invalid value: "a/b": {LABEL_VALUE_MSG}']),
    (
        v.validate_label_value,
        "a" * 64,
        [f'Invalid value: "{"a" * 64}": must be no more than 63 characters'],
    ),
    (v.validate_config_map_key, ".auth_token", []),
    (v.validate_config_map_key, "Key.pem", []),
    (v.validate_config_map_key, "config_file", []),
    (v.validate_config_map_key, "_password.txt", []),
    (v.validate_config_map_key, "a" * 253, []),
    (
        v.validate_config_map_key,
        "auth file.json",
        [f'Invalid value: "auth file.json": {CONFIG_KEY_MSG}'],
    ),
    (v.validate_config_map_key, "", [f'Invalid value: "": {CONFIG_KEY_MSG}']),
    (v.validate_config_map_key, ".", ["Invalid value: \".\": must not be '.'"]),
    (v.validate_config_map_key, "..", ["Invalid value: \"..\": must not be '..'"]),
    (v.validate_config_map_key, "..data", ["Invalid value: \"..data\": must not start with '..'"]),
    (
        v.validate_config_map_key,
        "a" * 254,
        [f'Invalid value: "{"a" * 254}": must be no more than 253 characters'],
    ),
    (v.validate_env_var_name, "HOME", []),
    (v.validate_env_var_name, "my.env-name", []),
    (v.validate_env_var_name, "_X1", []),
    (v.validate_env_var_name, "1X", [f'Invalid value: "1X": {ENV_MSG}']),
    (v.validate_env_var_name, "A B", [f'Invalid value: "A B": {ENV_MSG}']),
    (v.validate_env_var_name, "", [f'Invalid value: "": {ENV_MSG}']),
    (v.validate_env_var_name, "..", ["Invalid value: \"..\": must not be '..'"]),
    (v.validate_port_name, "http", []),
    (v.validate_port_name, "http-alt2", []),
    (v.validate_port_name, "a" * 15, []),
    (
        v.validate_port_name,
        "a" * 16,
        [f'Invalid value: "{"a" * 16}": must be no more than 15 characters'],
    ),
    (
        v.validate_port_name,
        "HTTP",
        [
            'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and '
            "hyphens (-)",
            'Invalid value: "HTTP": must contain at least one letter (a-z)',
        ],
    ),
    (
        v.validate_port_name,
        "8080",
        ['Invalid value: "8080": must contain at least one letter (a-z)'],
    ),
    (v.validate_port_name, "a--b", ['Invalid value: "a--b": must not contain consecutive hyphens']),
    (v.validate_port_name, "-ab", ['Invalid value: "-ab": must not begin or end with a hyphen']),
    (v.validate_port_name, "ab-", ['Invalid value: "ab-": must not begin or end with a hyphen']),
    (v.validate_ip, "10.9.8.7", []),
    (v.validate_ip, "2001:db8::ffff", []),
    (v.validate_ip, "::ffff:1.2.3.4", []),
    (
        v.validate_ip,
        "10.9.8",
        ['Invalid value: "10.9.8": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'],
    ),
    (
        v.validate_ip,
        "fe80::1%eth0",
        [
            'Invalid value: "fe80::1%eth0": must be a valid IP address, (e.g. 10.9.8.7 or '
            "2001:db8::ffff)"
        ],
    ),
    (
        v.validate_ip,
        "010.1.1.1",
        [
            'Invalid value: "010.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or '
            "2001:db8::ffff)"
        ],
    ),
    (v.validate_ipv4, "127.0.0.1", []),
    (v.validate_ipv4, "::1", ['Invalid value: "::1": must be a valid IPv4 address']),
    (v.validate_ipv4, "256.0.0.1", ['Invalid value: "256.0.0.1": must be a valid IPv4 address']),
    (v.validate_ipv6, "::1", []),
    (v.validate_ipv6, "127.0.0.1", ['Invalid value: "127.0.0.1": must be a valid IPv6 address']),
    (v.validate_cidr, "10.96.0.0/12", []),
    (v.validate_cidr, "10.96.0.1/12", []),  # host bits allowed, as in Go's net.ParseCIDR
    (v.validate_cidr, "2001:db8::/64", []),
    (v.validate_cidr, "0.0.0.0/0", []),
    *[
        (
            v.validate_cidr,
            bad,
            [
                f'Invalid value: "{bad}": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
                "2001:db8::/64)"
            ],
        )
        for bad in [
            "10.0.0.1",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "a/8",
            "1.2.3.4/+8",
        ]
    ],
    (v.validate_absolute_path, "/data", []),
    (v.validate_absolute_path, "data", ['Invalid value: "data": must be an absolute path']),
    (v.validate_absolute_path, "", ["Required value"]),
    (v.validate_required, "x", []),
    (v.validate_required, "", ["Required value"]),
    (v.validate_protocol, "TCP", []),
    (v.validate_protocol, "UDP", []),
    (v.validate_protocol, "SCTP", []),
    (v.validate_protocol, "", ["Required value"]),
    (
        v.validate_protocol,
        "tcp",
        ['Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"'],
    ),
]


@pytest.mark.parametrize(
    ("validator", "value", "expected"),
    STRING_CASES,
    ids=[f"{c[0].__name__}-{c[1][:20]!r}" for c in STRING_CASES],
)
def test_string_validators(validator: StringValidator, value: str, expected: list[str]) -> None:
    violations = validator(value, "spec.x")
    assert descriptions(violations) == expected
    assert all(x.field == "spec.x" for x in violations)


@pytest.mark.parametrize(
    ("port", "ok"), [(1, True), (80, True), (65535, True), (0, False), (65536, False), (-1, False)]
)
def test_port_number(port: int, ok: bool) -> None:
    expected = (
        []
        if ok
        else [
            FieldViolation(
                "ports[0].containerPort",
                f"Invalid value: {port}: must be between 1 and 65535, inclusive",
            )
        ]
    )
    assert v.validate_port_number(port, "ports[0].containerPort") == expected


def test_non_negative() -> None:
    assert v.validate_non_negative(0, "spec.replicas") == []
    assert v.validate_non_negative(5, "spec.replicas") == []
    assert v.validate_non_negative(-1, "spec.replicas") == [
        FieldViolation("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")
    ]


def test_one_of() -> None:
    allowed = ("Always", "OnFailure", "Never")
    assert v.one_of("Never", allowed, "spec.restartPolicy") == []
    assert v.one_of("", allowed, "spec.restartPolicy") == [
        FieldViolation("spec.restartPolicy", "Required value")
    ]
    assert v.one_of("Sometimes", allowed, "spec.restartPolicy") == [
        FieldViolation(
            "spec.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"',
        )
    ]


def test_error_constructors_render_like_kubernetes() -> None:
    assert str(v.invalid("a.b", "x", "bad")) == 'a.b: Invalid value: "x": bad'
    assert str(v.invalid("a.b", 3, "bad")) == "a.b: Invalid value: 3: bad"
    assert str(v.invalid("a.b", 2.0, "bad")) == "a.b: Invalid value: 2: bad"
    assert str(v.invalid("a.b", True, "bad")) == "a.b: Invalid value: true: bad"
    assert str(v.required("a.b")) == "a.b: Required value"
    assert str(v.required("a.b", "must be set")) == "a.b: Required value: must be set"
    assert str(v.forbidden("a.b", "not allowed")) == "a.b: Forbidden: not allowed"
    assert str(v.duplicate("a[1]", "x")) == 'a[1]: Duplicate value: "x"'
    assert str(v.too_long("a", 10)) == "a: Too long: must have at most 10 bytes"
    assert v.child("", "spec") == "spec"
    assert v.child("spec", "selector") == "spec.selector"
    assert v.index("spec.containers", 2) == "spec.containers[2]"


def test_validate_labels() -> None:
    assert v.validate_labels({"app": "web", "example.com/tier": ""}, "metadata.labels") == []
    violations = v.validate_labels({"bad key": "ok", "good": "-bad"}, "metadata.labels")
    assert violations == [
        FieldViolation("metadata.labels", f'Invalid value: "bad key": {NAME_PART_MSG}'),
        FieldViolation("metadata.labels", f'Invalid value: "-bad": {LABEL_VALUE_MSG}'),
    ]


def test_validate_annotations() -> None:
    path = "metadata.annotations"
    # Values are free-form; keys are qualified names in which case does not matter.
    assert v.validate_annotations({"Example.COM/Icon-URL": "{ any json }"}, path) == []
    assert v.validate_annotations({"bad key": "x"}, path) == [
        FieldViolation(path, f'Invalid value: "bad key": {NAME_PART_MSG}')
    ]
    limit = v.TOTAL_ANNOTATION_SIZE_LIMIT_BYTES
    assert v.validate_annotations({"k": "x" * (limit - 1)}, path) == []
    assert v.validate_annotations({"k": "x" * limit}, path) == [
        FieldViolation(path, f"Too long: must have at most {limit} bytes")
    ]
    # The limit is in bytes, not characters.
    assert v.validate_annotations({"k": "\u00e9" * (limit // 2)}, path) == [
        FieldViolation(path, f"Too long: must have at most {limit} bytes")
    ]


def test_validate_label_selector_valid() -> None:
    selector = LabelSelector(
        match_labels={"app": "web"},
        match_expressions=[
            LabelSelectorRequirement(key="env", operator="In", values=["prod"]),
            LabelSelectorRequirement(key="canary", operator="DoesNotExist"),
        ],
    )
    assert v.validate_label_selector(selector, "spec.selector") == []
    assert v.validate_label_selector(LabelSelector(), "spec.selector") == []


def test_validate_label_selector_reports_every_problem_at_its_path() -> None:
    selector = LabelSelector(
        match_labels={"app": "-web"},
        match_expressions=[
            LabelSelectorRequirement(key="env", operator="In"),
            LabelSelectorRequirement(key="zone", operator="Exists", values=["a"]),
            LabelSelectorRequirement(key="bad key", operator="Gt", values=["1", "-x"]),
        ],
    )
    assert v.validate_label_selector(selector, "spec.selector") == [
        FieldViolation("spec.selector.matchLabels", f'Invalid value: "-web": {LABEL_VALUE_MSG}'),
        FieldViolation(
            "spec.selector.matchExpressions[0].values",
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        FieldViolation(
            "spec.selector.matchExpressions[1].values",
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        FieldViolation(
            "spec.selector.matchExpressions[2].operator",
            'Invalid value: "Gt": not a valid selector operator',
        ),
        FieldViolation(
            "spec.selector.matchExpressions[2].key",
            f'Invalid value: "bad key": {NAME_PART_MSG}',
        ),
        FieldViolation(
            "spec.selector.matchExpressions[2].values[1]",
            f'Invalid value: "-x": {LABEL_VALUE_MSG}',
        ),
    ]


def test_generate_name() -> None:
    rng = random.Random(7)
    name = v.generate_name("web-", rng)
    assert name.startswith("web-")
    assert len(name) == len("web-") + 5
    assert set(name[4:]) <= set(v.NAME_ALPHABET)
    assert v.validate_dns1123_label(name, "metadata.name") == []
    assert v.generate_name("web-", random.Random(7)) == name  # the rng is the only randomness
    names = {v.generate_name("x-") for _ in range(50)}
    assert len(names) > 45


def test_generate_name_truncates_long_prefixes() -> None:
    name = v.generate_name("p" * 100)
    assert len(name) == 63
    assert name.startswith("p" * 58)
    assert v.generate_name("") != ""

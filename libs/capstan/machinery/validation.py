"""Validation primitives with Kubernetes' exact rules and messages.

Each `is_*` function returns bare messages (like k8s.io/apimachinery/pkg/util/validation) so
other rule sets (the label selector parser, quantity parsing) can embed them; each `validate_*`
function wraps them into FieldViolations at a path. Descriptions use Kubernetes' field error
bodies (`Invalid value: "x": ...`, `Required value`, `Unsupported value: ...`) so that messages
read exactly like the ones users know from kubectl.

Paths are Kubernetes-style JSON paths in lowerCamelCase ("spec.selector.matchLabels"), because
that is what a user wrote in the manifest.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import random
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Final, Protocol

from capstan.machinery.violations import FieldViolation

# ---------------------------------------------------------------------------------------------
# Field error constructors (k8s.io/apimachinery/pkg/util/validation/field)


def format_value(value: object) -> str:
    """Render a bad value the way Go's field.Error does: strings quoted, numbers and bools bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def invalid(path: str, value: object, detail: str) -> FieldViolation:
    return FieldViolation(path, _with_detail(f"Invalid value: {format_value(value)}", detail))


def required(path: str, detail: str = "") -> FieldViolation:
    return FieldViolation(path, _with_detail("Required value", detail))


def forbidden(path: str, detail: str) -> FieldViolation:
    return FieldViolation(path, _with_detail("Forbidden", detail))


def duplicate(path: str, value: object) -> FieldViolation:
    return FieldViolation(path, f"Duplicate value: {format_value(value)}")


def not_supported(path: str, value: object, allowed: Iterable[str]) -> FieldViolation:
    quoted = ", ".join(format_value(a) for a in allowed)
    return FieldViolation(
        path, f"Unsupported value: {format_value(value)}: supported values: {quoted}"
    )


def too_long(path: str, max_length: int, unit: str = "bytes") -> FieldViolation:
    return FieldViolation(path, f"Too long: must have at most {max_length} {unit}")


def child(path: str, name: str) -> str:
    """Join a field name onto a path; an empty path means the top level."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int | str) -> str:
    return f"{path}[{i}]"


# ---------------------------------------------------------------------------------------------
# Message builders (k8s.io/apimachinery/pkg/util/validation)


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Kubernetes' RegexError, byte for byte (including its doubled space before 'or')."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{example}', "
    return out + f"regex used for validation is '{fmt}')"


def _full(fmt: str) -> re.Pattern[str]:
    # \Z rather than $ so a trailing newline never sneaks through.
    return re.compile(f"(?:{fmt})\\Z")


def utf8_len(value: str) -> int:
    """Go's len() of a string: UTF-8 bytes, the unit of Kubernetes' limits (no copy for ASCII)."""
    return len(value) if value.isascii() else len(value.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# DNS names

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_ERR_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_ERR_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_ERR_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
DNS1035_LABEL_MAX_LENGTH = 63

_dns1123_label_re = _full(DNS1123_LABEL_FMT)
_dns1123_subdomain_re = _full(DNS1123_SUBDOMAIN_FMT)
_dns1035_label_re = _full(DNS1035_LABEL_FMT)

# Fast paths. Validation runs on every API write and almost every value is valid, so each
# `is_*` first asks a `*_ok` predicate: one regex that holds exactly for valid values, length
# included (every character these accept is ASCII, so characters are bytes), memoised because
# the same names, label keys and values come back in object after object (a cache hit costs a
# tenth of the match). Messages are spelled out only for a value that fails.
_MEMO_SIZE: Final = 4096


def _memo_ok(pattern: str) -> Callable[[str], bool]:
    match = re.compile(pattern).match

    @functools.lru_cache(maxsize=_MEMO_SIZE)
    def ok(value: str) -> bool:
        return match(value) is not None

    return ok


_LABEL_BODY = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
dns1123_label_ok = _memo_ok(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\Z")
dns1123_subdomain_ok = _memo_ok(rf"(?=[-a-z0-9.]{{1,253}}\Z){_LABEL_BODY}(?:\.{_LABEL_BODY})*\Z")
dns1035_label_ok = _memo_ok(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?\Z")


def is_dns1123_label(value: str) -> list[str]:
    return [] if dns1123_label_ok(value) else _dns1123_label_errors(value)


def _dns1123_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if utf8_len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _dns1123_label_re.match(value):
        if _dns1123_subdomain_re.match(value):
            # A valid subdomain that is not a valid label can only be failing on its dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(DNS1123_LABEL_ERR_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    return [] if dns1123_subdomain_ok(value) else _dns1123_subdomain_errors(value)


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs: list[str] = []
    if utf8_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _dns1123_subdomain_re.match(value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_ERR_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    return [] if dns1035_label_ok(value) else _dns1035_label_errors(value)


def _dns1035_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if utf8_len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _dns1035_label_re.match(value):
        errs.append(regex_error(DNS1035_LABEL_ERR_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


# ---------------------------------------------------------------------------------------------
# Qualified names (label and annotation keys) and label values

QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_ERR_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_ERR_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
LABEL_VALUE_MAX_LENGTH = 63

_qualified_name_re = _full(QUALIFIED_NAME_FMT)
_label_value_re = _full(LABEL_VALUE_FMT)

_QUALIFIED_BODY = "[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
qualified_name_ok = _memo_ok(
    rf"(?:(?=[-a-z0-9.]{{1,253}}/){_LABEL_BODY}(?:\.{_LABEL_BODY})*/)?{_QUALIFIED_BODY}\Z"
)
label_value_ok = _memo_ok(rf"(?:{_QUALIFIED_BODY})?\Z")


def is_qualified_name(value: str) -> list[str]:
    """Label keys: an optional DNS-1123 subdomain prefix and '/', then a name of up to 63."""
    return [] if qualified_name_ok(value) else _qualified_name_errors(value)


def _qualified_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(
                QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif utf8_len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _qualified_name_re.match(name):
        errs.append(
            "name part "
            + regex_error(
                QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"
            )
        )
    return errs


is_label_key = is_qualified_name


def is_label_value(value: str) -> list[str]:
    return [] if label_value_ok(value) else _label_value_errors(value)


def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if utf8_len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _label_value_re.match(value):
        errs.append(
            regex_error(LABEL_VALUE_ERR_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


# ---------------------------------------------------------------------------------------------
# ConfigMap/Secret keys and environment variable names

CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_ERR_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
)
ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
ENV_VAR_NAME_ERR_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit"
)

_config_map_key_re = _full(CONFIG_MAP_KEY_FMT)
_env_var_name_re = _full(ENV_VAR_NAME_FMT)
# Valid keys and names also must not be ".", ".." or start with "..".
config_map_key_ok = _memo_ok(r"(?!\.\.)(?!\.\Z)[-._a-zA-Z0-9]{1,253}\Z")
env_var_name_ok = _memo_ok(r"(?!\.\.)(?!\.\Z)[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


def _chdir_prefix_errors(value: str) -> list[str]:
    # Keys become file names in volumes: "." and ".." would escape or alias the directory.
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    return [] if config_map_key_ok(value) else _config_map_key_errors(value)


def _config_map_key_errors(value: str) -> list[str]:
    errs: list[str] = []
    if utf8_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _config_map_key_re.match(value):
        errs.append(
            regex_error(
                CONFIG_MAP_KEY_ERR_MSG, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"
            )
        )
    errs.extend(_chdir_prefix_errors(value))
    return errs


def is_env_var_name(value: str) -> list[str]:
    return [] if env_var_name_ok(value) else _env_var_name_errors(value)


def _env_var_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    if not _env_var_name_re.match(value):
        errs.append(
            regex_error(
                ENV_VAR_NAME_ERR_MSG, ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"
            )
        )
    errs.extend(_chdir_prefix_errors(value))
    return errs


# ---------------------------------------------------------------------------------------------
# Ports and protocols

PORT_NAME_MAX_LENGTH = 15
_port_name_charset_re = re.compile(r"[-a-z0-9]+\Z")
_port_name_one_letter_re = re.compile(r"[a-z]")
SUPPORTED_PROTOCOLS = ("SCTP", "TCP", "UDP")
# At most 15 of [-a-z0-9], a letter somewhere, no "--", no hyphen at either end.
port_name_ok = _memo_ok(
    r"(?=[-a-z0-9]{1,15}\Z)(?=[-0-9]*[a-z])(?!.*--)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?\Z"
)


def is_port_number(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_port_name(name: str) -> list[str]:
    """IANA_SVC_NAME (RFC 6335), the only names a named port may have."""
    return [] if port_name_ok(name) else _port_name_errors(name)


def _port_name_errors(name: str) -> list[str]:
    errs: list[str] = []
    if utf8_len(name) > PORT_NAME_MAX_LENGTH:
        errs.append(max_len_error(PORT_NAME_MAX_LENGTH))
    if not _port_name_charset_re.match(name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _port_name_one_letter_re.search(name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


# ---------------------------------------------------------------------------------------------
# IP addresses


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Go's net.ParseIP has no zone ("%eth0") support; Python's does, so refuse it here.
    if "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=_MEMO_SIZE)
def ip_ok(value: str) -> bool:
    """is_ip without messages, memoised (cluster, pod and host IPs come back on every write)."""
    return _parse_ip(value) is not None


def is_ip(value: str) -> list[str]:
    if not ip_ok(value):
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def is_ipv4(value: str) -> list[str]:
    if not isinstance(_parse_ip(value), ipaddress.IPv4Address):
        return ["must be a valid IPv4 address"]
    return []


def is_ipv6(value: str) -> list[str]:
    if not isinstance(_parse_ip(value), ipaddress.IPv6Address):
        return ["must be a valid IPv6 address"]
    return []


def is_cidr(value: str) -> list[str]:
    """Like Go's net.ParseCIDR: an address, '/', a prefix length; host bits may be set."""
    msg = ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    addr, sep, prefix = value.partition("/")
    if not sep or _parse_ip(addr) is None or not prefix.isascii() or not prefix.isdigit():
        return msg
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return msg
    return []


# ---------------------------------------------------------------------------------------------
# Wrapping bare messages into field violations


def _invalid_each(messages: list[str], path: str, value: object) -> list[FieldViolation]:
    return [invalid(path, value, m) for m in messages]


class StringValidator(Protocol):
    __name__: str

    def __call__(self, value: str, path: str) -> list[FieldViolation]: ...


def _string_validator(check: Callable[[str], list[str]]) -> StringValidator:
    """validate_x(value, path) from is_x(value): every message becomes an Invalid value."""

    def validate(value: str, path: str) -> list[FieldViolation]:
        return _invalid_each(check(value), path, value)

    validate.__name__ = validate.__qualname__ = "validate_" + check.__name__.removeprefix("is_")
    validate.__doc__ = check.__doc__
    return validate


validate_dns1123_label = _string_validator(is_dns1123_label)
validate_dns1123_subdomain = _string_validator(is_dns1123_subdomain)
validate_dns1035_label = _string_validator(is_dns1035_label)
validate_qualified_name = _string_validator(is_qualified_name)
validate_label_key = validate_qualified_name
validate_label_value = _string_validator(is_label_value)
validate_config_map_key = _string_validator(is_config_map_key)
validate_env_var_name = _string_validator(is_env_var_name)
validate_port_name = _string_validator(is_port_name)
validate_ip = _string_validator(is_ip)
validate_ipv4 = _string_validator(is_ipv4)
validate_ipv6 = _string_validator(is_ipv6)
validate_cidr = _string_validator(is_cidr)


def validate_port_number(port: int, path: str) -> list[FieldViolation]:
    return _invalid_each(is_port_number(port), path, port)


def validate_required(value: str, path: str) -> list[FieldViolation]:
    return [] if value else [required(path)]


def validate_non_negative(value: int, path: str) -> list[FieldViolation]:
    return [] if value >= 0 else [invalid(path, value, "must be greater than or equal to 0")]


def one_of(value: str, allowed: Collection[str], path: str) -> list[FieldViolation]:
    """An enum field: empty is "Required value", anything else outside `allowed` is listed."""
    if not value:
        return [required(path)]
    if value not in allowed:
        return [not_supported(path, value, sorted(allowed))]
    return []


def validate_protocol(value: str, path: str) -> list[FieldViolation]:
    return one_of(value, SUPPORTED_PROTOCOLS, path)


def validate_absolute_path(value: str, path: str) -> list[FieldViolation]:
    if not value:
        return [required(path)]
    if not value.startswith("/"):
        return [invalid(path, value, "must be an absolute path")]
    return []


# ---------------------------------------------------------------------------------------------
# Labels, annotations and label selectors (k8s.io/apimachinery/pkg/apis/meta/v1/validation)

TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * 1024


def labels_ok(labels: Mapping[str, str]) -> bool:
    """Every key a qualified name and every value a label value (the common case, no sorting)."""
    # Keys and indexing: a proto map's items() goes through the slow generic Mapping view.
    for key in labels:  # noqa: SIM110 - a plain loop, not all(generator): this is hot
        if not (qualified_name_ok(key) and label_value_ok(labels[key])):
            return False
    return True


def validate_labels(labels: Mapping[str, str], path: str) -> list[FieldViolation]:
    """Kubernetes reports label errors at the map's path; the bad key or value is in the text."""
    if not labels or labels_ok(labels):
        return []
    out: list[FieldViolation] = []
    for key in sorted(labels):
        out.extend(_invalid_each(is_qualified_name(key), path, key))
        value = labels[key]
        out.extend(_invalid_each(is_label_value(value), path, value))
    return out


def validate_annotations(annotations: Mapping[str, str], path: str) -> list[FieldViolation]:
    if not annotations:
        return []
    out: list[FieldViolation] = []
    total = 0
    for key in sorted(annotations):
        # Annotation keys are qualified names in which case does not matter.
        lowered = key.lower()
        if not qualified_name_ok(lowered):
            out.extend(_invalid_each(_qualified_name_errors(lowered), path, key))
        total += utf8_len(key) + utf8_len(annotations[key])
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES:
        out.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES))
    return out


class LabelSelectorRequirementLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def operator(self) -> str: ...
    @property
    def values(self) -> Collection[str]: ...


class LabelSelectorLike(Protocol):
    """Structural view of meta.v1.LabelSelector, so this module stays free of generated code."""

    @property
    def match_labels(self) -> Mapping[str, str]: ...
    @property
    def match_expressions(self) -> Iterable[LabelSelectorRequirementLike]: ...


LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector_requirement(
    req: LabelSelectorRequirementLike, path: str
) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    values_path = child(path, "values")
    if req.operator in ("In", "NotIn"):
        if not req.values:
            out.append(
                required(values_path, "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif req.operator in ("Exists", "DoesNotExist"):
        if req.values:
            out.append(
                forbidden(
                    values_path,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    else:
        out.append(invalid(child(path, "operator"), req.operator, "not a valid selector operator"))
    out.extend(_invalid_each(is_qualified_name(req.key), child(path, "key"), req.key))
    for i, value in enumerate(req.values):
        out.extend(_invalid_each(is_label_value(value), index(values_path, i), value))
    return out


def validate_label_selector(selector: LabelSelectorLike, path: str) -> list[FieldViolation]:
    """Validate a meta.v1.LabelSelector. An unset selector is the caller's business."""
    match_labels = selector.match_labels
    out = validate_labels(match_labels, child(path, "matchLabels")) if match_labels else []
    expressions = selector.match_expressions
    if expressions:
        expressions_path = child(path, "matchExpressions")
        for i, req in enumerate(expressions):
            out.extend(validate_label_selector_requirement(req, index(expressions_path, i)))
    return out


# ---------------------------------------------------------------------------------------------
# Name generation (k8s.io/apiserver/pkg/storage/names.SimpleNameGenerator)

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: no accidental words; no 0/1/3 lookalikes
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATED_PREFIX_LENGTH = DNS1123_LABEL_MAX_LENGTH - GENERATED_SUFFIX_LENGTH

_system_random = random.SystemRandom()


def generate_name(prefix: str, rng: random.Random | None = None) -> str:
    """metadata.generateName: the prefix (cut to 58) plus 5 random characters."""
    source = rng if rng is not None else _system_random
    suffix = "".join(source.choices(NAME_ALPHABET, k=GENERATED_SUFFIX_LENGTH))
    return prefix[:MAX_GENERATED_PREFIX_LENGTH] + suffix

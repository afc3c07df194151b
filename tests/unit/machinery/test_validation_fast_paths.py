"""The one-regex fast paths of the string validators must accept exactly the valid values.

Each `is_*` answers `[]` from its fast regex alone, so a fast path that accepted an invalid
value would silently drop a violation. These tests hold every fast regex against the
message-building rules it short-cuts, on boundary values and on many random strings.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.machinery import validate_apps as va
from capstan.machinery import validate_core as vc
from capstan.machinery import validate_pod as vp
from capstan.machinery import validation as v
from capstan.machinery.defaulting import default_object
from capstan.machinery.intstr import (
    int_or_percent_within_100,
    port_ok,
    resolve_int_or_percent,
    validate_int_or_percent,
    validate_int_or_str_port,
    validate_not_more_than_100_percent,
)
from capstan.machinery.labels import selector_from_proto
from capstan.machinery.quantity import (
    parse_quantity,
    plain_non_negative_quantity,
    validate_quantity,
)
from capstan.machinery.validate_meta import Errors
from capstan.machinery.validation import validate_label_selector
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Value

pytestmark = pytest.mark.unit

M = TypeVar("M", bound=Message)

FastPath = tuple[str, Callable[[str], object], Callable[[str], list[str]]]

FAST_PATHS: list[FastPath] = [
    ("dns1123_label", v.dns1123_label_ok, v._dns1123_label_errors),
    ("dns1123_subdomain", v.dns1123_subdomain_ok, v._dns1123_subdomain_errors),
    ("dns1035_label", v.dns1035_label_ok, v._dns1035_label_errors),
    ("qualified_name", v.qualified_name_ok, v._qualified_name_errors),
    ("label_value", v.label_value_ok, v._label_value_errors),
    ("config_map_key", v.config_map_key_ok, v._config_map_key_errors),
    ("env_var_name", v.env_var_name_ok, v._env_var_name_errors),
    ("port_name", v.port_name_ok, v._port_name_errors),
]

BOUNDARY = [
    "",
    "a",
    "A",
    "0",
    "-",
    ".",
    "..",
    "..a",
    ".a",
    "a.",
    "a-",
    "-a",
    "a--b",
    "a/b",
    "/a",
    "a/",
    "a/b/c",
    "Example.com/a",
    "example.com/A_b.c",
    "a\n",
    "a b",
    "ü",
    "aü",
    "9",
    "http",
    "_a",
    "a_",
    "1abc",
    *("a" * n for n in (14, 15, 16, 62, 63, 64, 252, 253, 254)),
    *("a" * n + "/b" for n in (252, 253, 254)),
    *("b/" + "a" * n for n in (62, 63, 64)),
    *("a." * n + "a" for n in (30, 126, 127)),
]
ALPHABET = "aZ09-._/:%ü \n"


def _random_strings(seed: str, count: int) -> list[str]:
    rng = random.Random(seed)  # a str seed is deterministic, unlike hash()
    out = []
    for _ in range(count):
        length = rng.choice([0, 1, 2, 3, 5, 8, 14, 15, 16, 30, 62, 63, 64, 65])
        # Mostly "nice" characters, so that long valid strings occur too.
        nice = rng.random() < 0.5
        chars = "ab9-." if nice else ALPHABET
        out.append("".join(rng.choice(chars) for _ in range(length)))
    return out


@pytest.mark.parametrize(("name", "ok", "errors"), FAST_PATHS, ids=[f[0] for f in FAST_PATHS])
def test_fast_path_accepts_exactly_the_valid_values(
    name: str, ok: Callable[[str], object], errors: Callable[[str], list[str]]
) -> None:
    for value in [*BOUNDARY, *_random_strings(name, 4000)]:
        assert bool(ok(value)) == (errors(value) == []), (name, value)


def test_fast_paths_accept_typical_values() -> None:
    assert v.is_qualified_name("app.kubernetes.io/name") == []
    assert v.is_label_value("5d8f7c9b6d") == []
    assert v.is_port_name("metrics") == []
    assert v.is_dns1123_subdomain("registry.local") == []
    assert v.is_config_map_key("config.yaml") == []
    assert v.is_env_var_name("POD_NAME") == []


# ---------------------------------------------------------------------------------------------
# Quantities and int-or-string values


def test_plain_quantities_parse_and_are_not_negative() -> None:
    rng = random.Random("quantity")
    samples = ["", "0", "1", "+1", "-1", "1.", ".5", ".", "1.5Gi", "250m", "1e3", "1Ki", "1k"]
    for _ in range(4000):
        length = rng.randrange(1, 7)
        samples.append("".join(rng.choice("+-.0159eEkKmMGiu") for _ in range(length)))
    for text in samples:
        if plain_non_negative_quantity(text):
            assert parse_quantity(text).value >= 0, text
            assert validate_quantity(text, "q", non_negative=True) == []


def _values() -> list[Value]:
    out = [Value(), Value(null_value=struct_pb2.NULL_VALUE), Value(bool_value=True)]
    out += [Value(number_value=n) for n in (0, 1, -1, 1.5, 80, 100, 101, 65535, 65536, 1e300)]
    texts = ["", "0%", "25%", "100%", "101%", "-1%", "+5%", "5", "http", "a--b", "x" * 16, "1%%"]
    out += [Value(string_value=t) for t in texts]
    listed = Value()
    listed.list_value.values.add().number_value = 1
    return [*out, listed]


@pytest.mark.parametrize("value", _values(), ids=str)
def test_int_or_string_fast_paths(value: Value) -> None:
    assert port_ok(value) == (validate_int_or_str_port(value, "p") == [])
    number = int_or_percent_within_100(value)
    if number is not None:
        assert validate_int_or_percent(value, "p") == []
        assert validate_not_more_than_100_percent(value, "p") == []
        assert resolve_int_or_percent(value, 100, round_up=False) == number


# ---------------------------------------------------------------------------------------------
# Pod spec predicates, held against their validators on fuzzed pod specs

STRINGS = [
    *BOUNDARY[:24],
    "TCP",
    "tcp",
    "Always",
    "IfNotPresent",
    "File",
    "HTTP",
    "HTTPS",
    "None",
    "cpu",
    "memory",
    "hugepages-2Mi",
    "example.com/gpu",
    "100m",
    "2",
    "1Gi",
    "-1",
    "1e3",
    "/etc/web",
    "/var/cache/web",
    "rel/../x",
    "metadata.name",
    "status.podIP",
    "metadata.labels['a']",
    "v1",
    "cache",
    "config",
    "web",
    "http",
    "Bidirectional",
    "X-Header",
]
INTS = [0, 1, -1, 2, 10, 80, 511, 512, 8080, 65535, 65536, 2**31 - 1, -(2**31)]
VALUES = [
    Value(),
    Value(null_value=struct_pb2.NULL_VALUE),
    Value(bool_value=True),
    *(Value(number_value=n) for n in (0, 1, 1.5, 8080, 65536, -1)),
    *(Value(string_value=t) for t in ("", "http", "25%", "101%", "a--b", "x" * 16)),
]

Step = tuple[str, int | str | None]  # a field, and the index or map key inside it (if any)


def _sites(msg: Message, path: tuple[Step, ...] = ()) -> Iterator[tuple[tuple[Step, ...], Any]]:
    """Every (path to a message, field of it) below `msg`, through set messages only."""
    for field in msg.DESCRIPTOR.fields:
        yield path, field
        entry, value = field.message_type, getattr(msg, field.name)
        if entry is None or entry.GetOptions().map_entry or entry.full_name.startswith("google."):
            continue
        if field.is_repeated:
            for i, item in enumerate(value):
                yield from _sites(item, (*path, (field.name, i)))
        elif msg.HasField(field.name):
            yield from _sites(value, (*path, (field.name, None)))


def _at(msg: Message, path: tuple[Step, ...]) -> Any:
    node: Any = msg
    for name, position in path:
        node = getattr(node, name)
        if position is not None:
            node = node[position]
    return node


Edit = Callable[[Any], None]


def _set(name: str, x: object) -> Edit:
    return lambda m: setattr(m, name, x)


def _append(name: str, x: object) -> Edit:
    return lambda m: getattr(m, name).append(x)


def _put(name: str, k: str, x: str) -> Edit:
    return lambda m: getattr(m, name).__setitem__(k, x)


def _copy_in(name: str, x: Value) -> Edit:
    return lambda m: getattr(m, name).CopyFrom(x)


def _clear(name: str) -> Edit:
    return lambda m: m.ClearField(name)


def _duplicate_first(name: str) -> Edit:
    def edit(m: Any) -> None:
        items = getattr(m, name)
        if len(items):
            items.add().CopyFrom(items[0])

    return edit


def _edits(field: Any) -> list[Edit]:
    """Every single change this test makes to `field` of a message."""
    name, entry = field.name, field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if entry.fields_by_name["value"].message_type is not None:
            return []
        puts = [_put(name, t, "x") for t in STRINGS] + [_put(name, "cpu", t) for t in STRINGS]
        return [_clear(name), *puts]
    if field.is_repeated:
        if entry is not None:
            return [_clear(name), lambda m: getattr(m, name).add(), _duplicate_first(name)]
        pool: list[object] = [*STRINGS] if field.type == FieldDescriptor.TYPE_STRING else [*INTS]
        return [_clear(name), *(_append(name, x) for x in pool)]
    if entry is not None and entry.full_name == "google.protobuf.Value":
        return [_copy_in(name, v) for v in VALUES]
    if entry is not None:
        return [lambda m: getattr(m, name).SetInParent(), _clear(name)]
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        pool = [*STRINGS]
    elif kind == FieldDescriptor.TYPE_BOOL:
        pool = [True, False]
    elif kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        pool = [0.0, 1.5, -1.0]
    elif kind == FieldDescriptor.TYPE_BYTES:
        pool = [b"", b"x"]
    else:
        pool = [*INTS]
    edits = [_set(name, x) for x in pool]
    return [_clear(name), *edits] if field.has_presence else edits


def single_edits(base: M) -> Iterator[M]:
    """Copies of `base`, each with exactly one field changed: every field of every set message
    below it, to each value of a pool of valid, invalid and boundary values. One change from a
    valid object is what finds a fast path that misses a rule."""
    for path, field in list(_sites(base)):
        for edit in _edits(field):
            copy = type(base)()
            copy.CopyFrom(base)
            try:
                edit(_at(copy, path))
            except (ValueError, TypeError):
                continue  # a value this field cannot hold
            yield copy


def _valid_specs() -> list[core_pb2.PodSpec]:
    """A minimal pod, a typical one and one using the rarer fields the fast paths accept."""
    pod = core_pb2.Pod()
    pod.spec.containers.add(name="web", image="nginx:1.25")
    typical = core_pb2.Pod()
    typical.spec.volumes.add(name="cache").empty_dir.size_limit = "256Mi"
    typical.spec.volumes.add(name="config").config_map.name = "web-config"
    typical.spec.node_selector["kubernetes.io/os"] = "linux"
    web = typical.spec.containers.add(name="web", image="registry.local/web:1.24.3")
    web.ports.add(name="http", container_port=8080, protocol="TCP")
    web.ports.add(name="metrics", container_port=9102)
    web.env.add(name="MODE", value="production")
    web.env.add(name="POD_NAME").value_from.field_ref.field_path = "metadata.name"
    web.resources.requests.update({"cpu": "250m", "memory": "256Mi"})
    web.resources.limits.update({"cpu": "1", "memory": "512Mi"})
    web.volume_mounts.add(name="config", mount_path="/etc/web", read_only=True)
    web.volume_mounts.add(name="cache", mount_path="/var/cache/web")
    web.liveness_probe.http_get.path = "/healthz"
    web.liveness_probe.http_get.port.string_value = "http"
    web.readiness_probe.tcp_socket.port.number_value = 8080
    side = typical.spec.containers.add(name="log-shipper", image="registry.local/log:3")
    side.resources.limits.update({"cpu": "200m", "memory": "128Mi"})
    side.volume_mounts.add(name="cache", mount_path="/var/cache/web", read_only=True)
    full = core_pb2.Pod()
    ctr = full.spec.containers.add(name="app", image="app:1")
    ctr.env.add(name="A").value_from.secret_key_ref.name = "creds"
    ctr.env[0].value_from.secret_key_ref.key = "password"
    ctr.env_from.add(prefix="P_").config_map_ref.name = "cfg"
    ctr.volume_mounts.add(name="data", mount_path="/data", sub_path="sub")
    ctr.lifecycle.pre_stop.exec.command.append("stop")
    ctr.startup_probe.exec.command.append("ok")
    ctr.security_context.run_as_user = 1000
    ctr.resources.limits["memory"] = "1Gi"
    full.spec.volumes.add(name="data").persistent_volume_claim.claim_name = "claim"
    full.spec.volumes.add(name="s").secret.secret_name = "s"
    specs = []
    for p in (typical, pod, full):
        default_object("Pod", p)
        specs.append(p.spec)
    return specs


def _check_spec(spec: core_pb2.PodSpec) -> None:
    errors, volumes = vp.validate_volumes(spec.volumes, "v")
    names = vp._volume_names_if_ok(spec.volumes)
    if names is not None:
        assert (errors, volumes) == ([], names)
    for ctr in spec.containers:
        # Asked twice: the second answer comes from the memo of valid containers.
        assert vp._container_ok_memoised(ctr, volumes) == vp._container_ok(ctr, volumes)
        assert vp._container_ok_memoised(ctr, volumes) == vp._container_ok(ctr, volumes)
        if vp._container_ok(ctr, volumes):
            assert vp._validate_container(ctr, volumes, "c", init=False) == []
            assert all(port.host_port == 0 for port in ctr.ports)
        pairs: list[tuple[bool, Errors]] = [
            (vp._ports_ok(ctr.ports), vp._validate_ports(ctr.ports, "p")),
            (vp._env_ok(ctr.env), vp._validate_env(ctr.env, "e")),
            (vp._env_from_ok(ctr.env_from), vp._validate_env_from(ctr.env_from, "f")),
            (
                vp._mounts_ok(ctr.volume_mounts, volumes),
                vp._validate_volume_mounts(ctr.volume_mounts, volumes, "m"),
            ),
            (
                vp._resources_ok(ctr.resources),
                vp.validate_resource_requirements(ctr.resources, "r"),
            ),
        ]
        for probe, must_be_one in (
            (ctr.liveness_probe, True),
            (ctr.readiness_probe, False),
            (ctr.startup_probe, True),
        ):
            ok = vp._probe_ok(probe, must_be_one)
            pairs.append((ok, vp._validate_probe(probe, "p", success_must_be_one=must_be_one)))
        for handler in (ctr.lifecycle.post_start, ctr.lifecycle.pre_stop):
            pairs.append((vp._handler_ok(handler), vp._validate_handler(handler, "h")))
        for ok, found in pairs:
            assert not ok or found == [], found
    # The memo of valid specs never changes an answer.
    assert vp.validate_pod_spec(spec, "spec") == vp._validate_pod_spec(spec, "spec")


def test_pod_spec_fast_paths_never_hide_a_violation() -> None:
    for base in _valid_specs():
        assert vp.validate_pod_spec(base, "spec") == []
        count = 0
        for spec in single_edits(base):
            _check_spec(spec)
            count += 1
        assert count > 1000  # the walk reached deep into the spec


def test_valid_spec_memo_does_not_outlive_a_change() -> None:
    spec = _valid_specs()[0]
    assert vp.validate_pod_spec(spec, "spec") == []  # now remembered
    spec.containers[0].ports[0].container_port = 0
    assert [v.field for v in vp.validate_pod_spec(spec, "spec")] == [
        "spec.containers[0].ports[0].containerPort"
    ]


def test_equality_selector_fast_path_matches_the_parser() -> None:
    rng = random.Random("selector")
    template_labels = {"app": "web", "tier": "front"}
    for _ in range(500):
        selector = meta_pb2.LabelSelector()
        for _ in range(rng.randrange(3)):
            selector.match_labels[rng.choice(["app", "tier", "x/y", "-bad"])] = rng.choice(
                ["web", "front", "", "bad value"]
            )
        if rng.random() < 0.2:
            selector.match_expressions.add(key="app", operator="Exists")
        if not va._equality_selector_ok(selector):
            continue
        assert validate_label_selector(selector, "s") == []
        subset = all(template_labels.get(k) == val for k, val in selector.match_labels.items())
        assert selector_from_proto(selector).matches(template_labels) == subset


def test_service_port_and_config_key_fast_paths_never_hide_a_violation() -> None:
    service = core_pb2.Service()
    http = service.spec.ports.add(name="http", port=80, protocol="TCP", node_port=30080)
    http.target_port.string_value = "http"
    service.spec.ports.add(name="metrics", port=9102, protocol="TCP").target_port.number_value = 1
    for edited in single_edits(service):
        for require_name in (True, False):
            names: set[str] = set()
            for port in edited.spec.ports:
                expected = vc._validate_service_port(port, require_name, set(names), "p")
                if vc._service_port_ok(port, require_name, names):
                    assert expected == []
                else:
                    names.add(port.name)
    config_map = core_pb2.ConfigMap()
    config_map.data.update({"config.yaml": "a: 1", "LOG": "json"})
    config_map.binary_data["blob.bin"] = b"\x00"
    for edited_map in single_edits(config_map):
        if vc._data_keys_ok(edited_map.data, edited_map.binary_data):
            assert vc.validate_config_map(edited_map, None) == []

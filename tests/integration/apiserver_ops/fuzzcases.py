"""The malformed-request corpus for the apiserver fuzz test.

Every case names the status code the server must answer with. Random input (garbage,
truncations) is kept only when a plain protobuf parse already proves it malformed, so the
expected code is exact, never "one of several". The corpus is deterministic (seeded).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.machinery.kinds import KINDS, Kind
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from tests.integration.apiserver_ops import ops

Code = grpc.StatusCode
# Kubernetes' (etcd's) object size limit, which the apiserver enforces on requests.
MAX_OBJECT_BYTES = 1536 * 1024
FAR_FUTURE_RV = "99999999999"


@dataclass(frozen=True)
class Call:
    label: str
    method: str
    request: bytes
    expected: grpc.StatusCode
    stream: bool = False
    # A substring the status message must contain (tells a server answer from, say, a
    # client-side deadline).
    detail: str = ""


@dataclass(frozen=True)
class Seed:
    """What the fuzz target holds before the storm (created by the test)."""

    namespace: str
    pods: dict[str, core_pb2.Pod]
    service: core_pb2.Service
    stale_pod_rv: str


def has_unknown_fields(msg: Message) -> bool:
    if len(UnknownFieldSet(msg)):
        return True
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            subs: Iterable[Any] = value.values() if value_field.message_type else ()
        elif field.is_repeated:
            subs = value
        else:
            subs = (value,)
        if any(has_unknown_fields(s) for s in subs):
            return True
    return False


def malformed(cls: type[Message], data: bytes) -> bool:
    """True when data cannot be a cls: too large, undecodable, or carrying fields that
    cls does not define (at any depth)."""
    if len(data) > MAX_OBJECT_BYTES:
        return True
    try:
        msg = cls.FromString(data)
    except DecodeError:
        return True
    return has_unknown_fields(msg)


def _kind(name: str) -> Kind:
    return next(k for k in KINDS if k.kind == name)


def _methods(kind: Kind) -> Iterator[tuple[str, type[Message], bool]]:
    """(method path, request type, is server-streaming) of a kind's standard methods."""
    svc = f"/{kind.service}/"
    yield svc + "Create", kind.message, False
    yield svc + "Update", kind.message, False
    if kind.has_status:
        yield svc + "UpdateStatus", kind.message, False
    yield svc + "Get", meta_pb2.GetRequest, False
    yield svc + "List", meta_pb2.ListOptions, False
    yield svc + "Delete", meta_pb2.DeleteRequest, False
    yield svc + "Watch", meta_pb2.ListOptions, True
    if kind.kind == "Pod":
        yield svc + "Bind", core_pb2.Binding, False
        yield svc + "Evict", core_pb2.Eviction, False


def _garbage(rng: random.Random, cls: type[Message]) -> bytes:
    while True:
        size = rng.choice((1, 2, 3, 5, 8, 16, 40, 120, 700))
        data = rng.randbytes(size)
        if malformed(cls, data):
            return data


def garbage_calls(rng: random.Random, per_method: int) -> Iterator[Call]:
    for kind in KINDS:
        for method, cls, stream in _methods(kind):
            for _ in range(per_method):
                data = _garbage(rng, cls)
                yield Call("garbage", method, data, Code.INVALID_ARGUMENT, stream)


def _truncations(
    rng: random.Random, cls: type[Message], data: bytes, count: int
) -> Iterator[bytes]:
    cuts = [n for n in range(1, len(data)) if malformed(cls, data[:n])]
    for n in rng.sample(cuts, min(count, len(cuts))):
        yield data[:n]


def truncated_calls(rng: random.Random, seed: Seed, count: int) -> Iterator[Call]:
    ns = seed.namespace
    pods = "/capstan.core.v1.Pods/"
    fresh = ops.pod(ns, "truncated", app="web", tier="x").SerializeToString()
    existing = seed.pods["web-1"].SerializeToString()
    svc = ops.service(ns, "truncated").SerializeToString()
    get = meta_pb2.GetRequest(namespace=ns, name="web-1").SerializeToString()
    delete = meta_pb2.DeleteRequest(
        namespace=ns, name="web-1", propagation_policy="Background"
    ).SerializeToString()
    opts = meta_pb2.ListOptions(
        namespace=ns, label_selector="app=web", resource_version="1"
    ).SerializeToString()
    table: list[tuple[str, type[Message], bytes, bool]] = [
        (pods + "Create", core_pb2.Pod, fresh, False),
        (pods + "Update", core_pb2.Pod, existing, False),
        (pods + "UpdateStatus", core_pb2.Pod, existing, False),
        ("/capstan.core.v1.Services/Create", core_pb2.Service, svc, False),
        (pods + "Get", meta_pb2.GetRequest, get, False),
        (pods + "Delete", meta_pb2.DeleteRequest, delete, False),
        (pods + "List", meta_pb2.ListOptions, opts, False),
        (pods + "Watch", meta_pb2.ListOptions, opts, True),
    ]
    for method, cls, data, stream in table:
        for cut in _truncations(rng, cls, data, count):
            yield Call("truncated", method, cut, Code.INVALID_ARGUMENT, stream)


def _on_wire(label: str, method: str, cls: type[Message], data: bytes, otherwise: Code) -> Call:
    """A message of another type: INVALID_ARGUMENT when the bytes cannot be a cls, else
    what the request they happen to spell must get."""
    return Call(label, method, data, Code.INVALID_ARGUMENT if malformed(cls, data) else otherwise)


def wrong_type_calls(seed: Seed) -> Iterator[Call]:
    ns = seed.namespace
    pods = "/capstan.core.v1.Pods/"
    pod = seed.pods["web-1"].SerializeToString()
    svc = seed.service.SerializeToString()
    dep = _kind("Deployment").message()
    dep.metadata.name = "web-1"  # type: ignore[attr-defined]
    dep.metadata.namespace = ns  # type: ignore[attr-defined]
    dep.spec.replicas = 2  # type: ignore[attr-defined]
    dep.spec.selector.match_labels["app"] = "web"  # type: ignore[attr-defined]
    dep.spec.template.metadata.labels["app"] = "web"  # type: ignore[attr-defined]
    dep.spec.template.spec.containers.add(name="c", image="nginx:1.25")  # type: ignore[attr-defined]
    deployment = dep.SerializeToString()
    opts = meta_pb2.ListOptions(namespace=ns, label_selector="app=web").SerializeToString()
    get = meta_pb2.GetRequest(namespace=ns, name="web-1").SerializeToString()
    namespace = ops.namespace_obj(ns).SerializeToString()
    yield Call("wrong-type", pods + "Create", svc, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", pods + "Create", opts, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", pods + "Create", get, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", pods + "Create", deployment, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", pods + "Update", get, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", pods + "Update", deployment, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", "/capstan.core.v1.Services/Update", pod, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", "/capstan.core.v1.Services/Create", pod, Code.INVALID_ARGUMENT)
    yield _on_wire("wrong-type", pods + "Update", core_pb2.Pod, namespace, Code.NOT_FOUND)
    yield _on_wire("wrong-type", pods + "Get", meta_pb2.GetRequest, pod, Code.NOT_FOUND)
    yield _on_wire("wrong-type", pods + "Delete", meta_pb2.DeleteRequest, pod, Code.NOT_FOUND)
    # Read as ListOptions, a Pod's spec bytes are a label selector: never a valid one.
    yield Call("wrong-type", pods + "List", pod, Code.INVALID_ARGUMENT)
    yield Call("wrong-type", pods + "Watch", pod, Code.INVALID_ARGUMENT, stream=True)
    yield Call("wrong-type", pods + "Bind", pod, Code.INVALID_ARGUMENT)


def _with_unknown_in_container(pod: core_pb2.Pod) -> bytes:
    """The pod with a field number no Container has, two levels below the top."""
    p = core_pb2.Pod()
    p.CopyFrom(pod)
    odd = core_pb2.Container.FromString(
        p.spec.containers[0].SerializeToString() + b"\xf8\x06\x01"  # field 111, varint 1
    )
    p.spec.containers[0].CopyFrom(odd)
    data = p.SerializeToString()
    assert has_unknown_fields(core_pb2.Pod.FromString(data))
    return data


def oversize_calls(seed: Seed) -> Iterator[Call]:
    ns = seed.namespace
    pods = "/capstan.core.v1.Pods/"
    big = ops.pod(ns, "big")
    big.metadata.annotations["blob"] = "x" * (MAX_OBJECT_BYTES + 100 * 1024)
    yield Call("oversize", pods + "Create", big.SerializeToString(), Code.INVALID_ARGUMENT)
    grown = core_pb2.Pod()
    grown.CopyFrom(seed.pods["web-1"])
    grown.metadata.annotations["blob"] = "x" * (MAX_OBJECT_BYTES + 1)
    yield Call("oversize", pods + "Update", grown.SerializeToString(), Code.INVALID_ARGUMENT)
    # Just under the request limit: the fields the server adds (uid, timestamps) push
    # the stored object over it, which must not reach the store either.
    # (Container args: annotations have their own, smaller limit.)
    edge = ops.pod(ns, "edge")
    edge.spec.containers[0].args.append("")
    pad = MAX_OBJECT_BYTES - 16 - len(edge.SerializeToString())
    edge.spec.containers[0].args[0] = "x" * pad
    assert MAX_OBJECT_BYTES - 20 < len(edge.SerializeToString()) <= MAX_OBJECT_BYTES
    yield Call("oversize", pods + "Create", edge.SerializeToString(), Code.INVALID_ARGUMENT)
    cm = _kind("ConfigMap").message()
    cm.metadata.name = "big"  # type: ignore[attr-defined]
    cm.metadata.namespace = ns  # type: ignore[attr-defined]
    cm.data["k"] = "v" * (2 * MAX_OBJECT_BYTES)  # type: ignore[attr-defined]
    yield Call(
        "oversize",
        "/capstan.core.v1.ConfigMaps/Create",
        cm.SerializeToString(),
        Code.INVALID_ARGUMENT,
    )
    opts = meta_pb2.ListOptions(label_selector="a in (" + ",".join(["x"] * 800_000) + ")")
    yield Call("oversize", pods + "List", opts.SerializeToString(), Code.INVALID_ARGUMENT)
    yield Call(
        "unknown-field", pods + "Create", _with_unknown_in_container(ops.pod(ns, "odd")),
        Code.INVALID_ARGUMENT,
    )  # fmt: skip
    yield Call(
        "unknown-field", pods + "Update", _with_unknown_in_container(seed.pods["web-1"]),
        Code.INVALID_ARGUMENT,
    )  # fmt: skip


INVALID_NAMES = ["Bad_Name", "a/b", "UPPER", "-lead", "trail-", "a b", "..", "x" * 254, "a\x00b"]
INVALID_LABEL_SELECTORS = [
    "a in (b",
    "a notin",
    "!",
    "a b",
    "x/y/z=1",
    "a=" + "v" * 64,
    "a in b",
    "==a",
    "a,,b",
    "app=web,(",
]
INVALID_FIELD_SELECTORS = [
    "spec.unknownField=x",
    "metadata.name",
    "=x",
    "metadata.labels.app=web",
    "status.phase~Running",
]


def semantic_calls(seed: Seed) -> Iterator[Call]:
    """Well-formed requests that must be refused without touching the store."""
    ns = seed.namespace
    pods = "/capstan.core.v1.Pods/"
    web1 = seed.pods["web-1"]
    current_rv = web1.metadata.resource_version

    def pod_call(label: str, method: str, p: core_pb2.Pod, code: Code, detail: str = "") -> Call:
        return Call(label, pods + method, p.SerializeToString(), code, detail=detail)

    def list_opts(**kw: Any) -> bytes:
        return meta_pb2.ListOptions(**kw).SerializeToString()

    for name in INVALID_NAMES:
        yield pod_call("invalid-name", "Create", ops.pod(ns, name), Code.INVALID_ARGUMENT)
        get = meta_pb2.GetRequest(namespace=ns, name=name).SerializeToString()
        yield Call("invalid-name", pods + "Get", get, Code.NOT_FOUND)
        delete = meta_pb2.DeleteRequest(namespace=ns, name=name).SerializeToString()
        yield Call("invalid-name", pods + "Delete", delete, Code.NOT_FOUND)
    yield Call(
        "invalid-name",
        pods + "Get",
        meta_pb2.GetRequest(namespace=ns).SerializeToString(),
        Code.INVALID_ARGUMENT,
    )
    for sel in INVALID_LABEL_SELECTORS:
        for method, stream in (("List", False), ("Watch", True)):
            opts = list_opts(namespace=ns, label_selector=sel)
            yield Call("label-selector", pods + method, opts, Code.INVALID_ARGUMENT, stream)
    for sel in INVALID_FIELD_SELECTORS:
        for method, stream in (("List", False), ("Watch", True)):
            opts = list_opts(namespace=ns, field_selector=sel)
            yield Call("field-selector", pods + method, opts, Code.INVALID_ARGUMENT, stream)
    for rv in ("abc", "-5", "1.5", " 7", "+7", "1_0", "\u0667", "0x10"):
        for method, stream in (("List", False), ("Watch", True)):
            opts = list_opts(namespace=ns, resource_version=rv)
            yield Call("bogus-rv", pods + method, opts, Code.INVALID_ARGUMENT, stream)
        p = core_pb2.Pod()
        p.CopyFrom(web1)
        p.metadata.resource_version = rv
        p.metadata.labels["changed"] = "yes"
        yield pod_call("bogus-rv", "Update", p, Code.INVALID_ARGUMENT)
    for method, stream in (("List", False), ("Watch", True)):
        opts = list_opts(namespace=ns, resource_version=FAR_FUTURE_RV)
        yield Call(
            "future-rv", pods + method, opts, Code.DEADLINE_EXCEEDED, stream,
            detail="Too large resource version",
        )  # fmt: skip
    # The fuzz target's watch cache started after the seed writes: revision 1 is gone.
    yield Call(
        "expired-rv", pods + "Watch", list_opts(namespace=ns, resource_version="1"),
        Code.OUT_OF_RANGE, stream=True,
    )  # fmt: skip
    yield Call("list", pods + "List", list_opts(namespace=ns, limit=-1), Code.INVALID_ARGUMENT)
    for token in ("!!!", "e30", base64.urlsafe_b64encode(b'{"rv":5}').decode()):
        opts = list_opts(namespace=ns, limit=2, continue_token=token)
        yield Call("continue", pods + "List", opts, Code.INVALID_ARGUMENT)
    foreign = json.dumps({"rv": 5, "start": "/registry/core/secrets/kube-system/x"})
    opts = list_opts(
        namespace=ns, limit=2, continue_token=base64.urlsafe_b64encode(foreign.encode()).decode()
    )
    yield Call("continue", pods + "List", opts, Code.INVALID_ARGUMENT)

    # Optimistic concurrency: stale, future and zero resource versions never write.
    for method in ("Update", "UpdateStatus"):
        p = core_pb2.Pod()
        p.CopyFrom(web1)
        p.metadata.labels["changed"] = "yes"
        p.status.message = "changed"
        p.metadata.resource_version = seed.stale_pod_rv
        yield pod_call("stale-rv", method, p, Code.ABORTED)
        p.metadata.resource_version = FAR_FUTURE_RV
        yield pod_call("stale-rv", method, p, Code.ABORTED)
    zero = core_pb2.Pod()
    zero.CopyFrom(web1)
    zero.metadata.resource_version = "0"
    zero.metadata.labels["changed"] = "yes"
    yield pod_call("bogus-rv", "Update", zero, Code.INVALID_ARGUMENT)

    # Identity: an Update addresses the object by namespace/name; it cannot rename it,
    # move it, or swap its uid.
    renamed = core_pb2.Pod()
    renamed.CopyFrom(web1)
    renamed.metadata.name = "web-renamed"
    yield pod_call("identity", "Update", renamed, Code.NOT_FOUND)
    moved = core_pb2.Pod()
    moved.CopyFrom(web1)
    moved.metadata.namespace = f"{ns}-elsewhere"
    yield pod_call("identity", "Update", moved, Code.NOT_FOUND)
    other_uid = core_pb2.Pod()
    other_uid.CopyFrom(web1)
    other_uid.metadata.uid = "00000000-0000-0000-0000-000000000000"
    other_uid.metadata.labels["changed"] = "yes"
    other_uid.metadata.resource_version = current_rv
    yield pod_call("identity", "Update", other_uid, Code.INVALID_ARGUMENT, detail="uid")

    # Creates that must not write.
    yield pod_call("create", "Create", seed.pods["web-2"], Code.ALREADY_EXISTS)
    yield pod_call("create", "Create", ops.pod(f"{ns}-missing", "web"), Code.NOT_FOUND)
    # A taken name is AlreadyExists whether or not the request asks for the existing
    # Service's cluster IP, and allocates nothing on the way.
    svc = core_pb2.Service()
    svc.CopyFrom(seed.service)
    svcs = "/capstan.core.v1.Services/Create"
    yield Call("create", svcs, svc.SerializeToString(), Code.ALREADY_EXISTS)
    svc.spec.ClearField("cluster_ip")
    svc.spec.ClearField("cluster_ips")
    yield Call("create", svcs, svc.SerializeToString(), Code.ALREADY_EXISTS)

    # Deletes of what does not exist, and deletes whose preconditions fail.
    for kind_name in ("Pod", "Service", "ConfigMap", "Deployment", "Secret"):
        kind = _kind(kind_name)
        for where in (ns, f"{ns}-missing"):
            req = meta_pb2.DeleteRequest(namespace=where, name="does-not-exist")
            yield Call(
                "delete-missing", f"/{kind.service}/Delete", req.SerializeToString(),
                Code.NOT_FOUND,
            )  # fmt: skip
    for kind_name in ("Namespace", "Node", "PersistentVolume"):
        kind = _kind(kind_name)
        req = meta_pb2.DeleteRequest(name=f"{ns}-does-not-exist")
        yield Call(
            "delete-missing", f"/{kind.service}/Delete", req.SerializeToString(),
            Code.NOT_FOUND,
        )  # fmt: skip
    preconditions = [
        meta_pb2.Preconditions(uid="00000000-0000-0000-0000-000000000000"),
        meta_pb2.Preconditions(resource_version=seed.stale_pod_rv),
        meta_pb2.Preconditions(resource_version="abc"),
    ]
    for pre in preconditions:
        req = meta_pb2.DeleteRequest(namespace=ns, name="web-1", preconditions=pre)
        yield Call("delete-precondition", pods + "Delete", req.SerializeToString(), Code.ABORTED)
    bad_policy = meta_pb2.DeleteRequest(namespace=ns, name="web-1", propagation_policy="Sideways")
    yield Call(
        "delete-policy", pods + "Delete", bad_policy.SerializeToString(), Code.INVALID_ARGUMENT
    )

    # Subresources.
    binding = core_pb2.Binding()
    binding.metadata.name = "does-not-exist"
    binding.metadata.namespace = ns
    binding.target.kind = "Node"
    binding.target.name = "node-1"
    yield Call("bind", pods + "Bind", binding.SerializeToString(), Code.NOT_FOUND)
    binding.metadata.name = "web-1"
    binding.target.kind = "Service"
    yield Call("bind", pods + "Bind", binding.SerializeToString(), Code.INVALID_ARGUMENT)
    eviction = core_pb2.Eviction()
    eviction.metadata.name = "does-not-exist"
    eviction.metadata.namespace = ns
    yield Call("evict", pods + "Evict", eviction.SerializeToString(), Code.NOT_FOUND)
    yield Call("unknown-method", pods + "Frobnicate", b"", Code.UNIMPLEMENTED)


def corpus(seed: Seed, *, rng_seed: int = 1337) -> list[Call]:
    rng = random.Random(rng_seed)
    calls = [
        *garbage_calls(rng, per_method=12),
        *truncated_calls(rng, seed, count=60),
        *wrong_type_calls(seed),
        *oversize_calls(seed),
        *semantic_calls(seed),
    ]
    rng.shuffle(calls)
    return calls

"""List: label and field selectors, namespaces, and paging with continue tokens."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from capstan.api.meta.v1 import meta_pb2

from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    configmap,
    fails,
    pod,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LABELLED = {
    "a": {"app": "web", "tier": "fe"},
    "b": {"app": "web", "tier": "be"},
    "c": {"app": "db", "tier": "be", "env": "prod"},
    "d": {"app": "cache"},
    "e": {},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", "ab"),
        ("app==web", "ab"),
        ("app!=web", "cde"),
        ("tier in (fe,be)", "abc"),
        ("tier notin (fe)", "bcde"),
        ("env", "c"),
        ("!tier", "de"),
        ("app=web,tier=be", "b"),
        ("app in (web,db),!env", "ab"),
        ("", "abcde"),
    ],
)
async def test_label_selectors(api: Clients, ns: str, selector: str, expected: str) -> None:
    for name, labels in LABELLED.items():
        await api.pods.Create(pod(ns, name, labels=labels), timeout=RPC_TIMEOUT)
    listed = await api.pods.List(
        meta_pb2.ListOptions(namespace=ns, label_selector=selector), timeout=RPC_TIMEOUT
    )
    assert "".join(p.metadata.name for p in listed.items) == expected
    assert int(listed.metadata.resource_version) > 0
    assert listed.metadata.continue_token == ""


async def test_bad_label_selector(api: Clients, ns: str) -> None:
    err = await fails(
        api.pods.List(
            meta_pb2.ListOptions(namespace=ns, label_selector="a in b"), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "unable to parse label selector" in err.message


async def test_field_selectors(api: Clients, ns: str) -> None:
    for name in ("x", "y", "z"):
        await api.pods.Create(pod(ns, name), timeout=RPC_TIMEOUT)
    await api.bind(ns, "y", "node-1")
    z = await api.bind(ns, "z", "node-2")
    z.status.phase = "Running"
    await api.pods.UpdateStatus(z, timeout=RPC_TIMEOUT)

    async def names(selector: str, namespace: str = ns) -> list[str]:
        listed = await api.pods.List(
            meta_pb2.ListOptions(namespace=namespace, field_selector=selector),
            timeout=RPC_TIMEOUT,
        )
        return [p.metadata.name for p in listed.items if p.metadata.namespace == ns]

    assert await names("metadata.name=y") == ["y"]
    assert await names("metadata.name!=y") == ["x", "z"]
    assert await names(f"metadata.namespace={ns}", "") == ["x", "y", "z"]
    assert await names("metadata.namespace=elsewhere") == []
    assert await names("spec.nodeName=node-1") == ["y"]
    assert await names("spec.nodeName=") == ["x"]
    assert await names("spec.nodeName!=") == ["y", "z"]
    assert await names("status.phase=Running") == ["z"]
    assert await names("status.phase==Pending,spec.nodeName=node-1") == ["y"]


async def test_unsupported_field_selector(api: Clients, ns: str) -> None:
    err = await fails(
        api.pods.List(
            meta_pb2.ListOptions(namespace=ns, field_selector="spec.hostname=x"),
            timeout=RPC_TIMEOUT,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "field label not supported: 'spec.hostname'" in err.message
    for supported in ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"):
        assert supported in err.message
    err = await fails(
        api.configmaps.List(
            meta_pb2.ListOptions(field_selector="status.phase=x"), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "supported field labels: metadata.name, metadata.namespace" in err.message


async def test_across_namespaces_and_in_one(api: Clients, ns: str) -> None:
    other = f"{ns}-o"
    await api.create_namespace(other)
    mark = {"suite-mark": ns}
    await api.configmaps.Create(configmap(ns, "one", labels=mark), timeout=RPC_TIMEOUT)
    await api.configmaps.Create(configmap(other, "two", labels=mark), timeout=RPC_TIMEOUT)
    selector = f"suite-mark={ns}"
    everywhere = await api.configmaps.List(
        meta_pb2.ListOptions(namespace="", label_selector=selector), timeout=RPC_TIMEOUT
    )
    # Key order (/registry/core/configmaps/<namespace>/<name>): "<ns>-o/" sorts before "<ns>/".
    assert [(c.metadata.namespace, c.metadata.name) for c in everywhere.items] == [
        (other, "two"),
        (ns, "one"),
    ]
    only = await api.configmaps.List(
        meta_pb2.ListOptions(namespace=other, label_selector=selector), timeout=RPC_TIMEOUT
    )
    assert [c.metadata.name for c in only.items] == ["two"]


async def test_paging_returns_each_object_once_in_key_order(api: Clients, ns: str) -> None:
    expected = [f"cm-{i:02d}" for i in range(23)]
    for name in reversed(expected):
        await api.configmaps.Create(configmap(ns, name), timeout=RPC_TIMEOUT)
    for limit in (1, 5, 23, 100):
        opts = meta_pb2.ListOptions(namespace=ns, limit=limit)
        names: list[str] = []
        versions: set[str] = set()
        pages = 0
        while True:
            page = await api.configmaps.List(opts, timeout=RPC_TIMEOUT)
            pages += 1
            assert len(page.items) <= limit
            names.extend(c.metadata.name for c in page.items)
            versions.add(page.metadata.resource_version)
            if not page.metadata.continue_token:
                break
            opts.continue_token = page.metadata.continue_token
        assert names == expected, limit
        assert len(versions) == 1
        assert pages == -(-len(expected) // limit), limit


async def test_paging_with_selector(api: Clients, ns: str) -> None:
    for i in range(12):
        labels = {"parity": "even" if i % 2 == 0 else "odd"}
        await api.configmaps.Create(
            configmap(ns, f"cm-{i:02d}", labels=labels), timeout=RPC_TIMEOUT
        )
    opts = meta_pb2.ListOptions(namespace=ns, limit=4, label_selector="parity=odd")
    names: list[str] = []
    while True:
        page = await api.configmaps.List(opts, timeout=RPC_TIMEOUT)
        names.extend(c.metadata.name for c in page.items)
        if not page.metadata.continue_token:
            break
        assert len(page.items) == 4
        opts.continue_token = page.metadata.continue_token
    assert names == [f"cm-{i:02d}" for i in range(1, 12, 2)]


async def test_continue_is_a_snapshot(api: Clients, ns: str) -> None:
    for i in range(10):
        await api.configmaps.Create(configmap(ns, f"cm-{i:02d}", {"v": "old"}), timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(namespace=ns, limit=3)
    first = await api.configmaps.List(opts, timeout=RPC_TIMEOUT)
    snapshot_rv = first.metadata.resource_version
    # Concurrent writes: a new object before and after the cursor, a change, a delete.
    await api.configmaps.Create(configmap(ns, "cm-00a"), timeout=RPC_TIMEOUT)
    await api.configmaps.Create(configmap(ns, "cm-99"), timeout=RPC_TIMEOUT)
    await api.configmaps.Update(configmap(ns, "cm-05", {"v": "new"}), timeout=RPC_TIMEOUT)
    await api.configmaps.Delete(
        meta_pb2.DeleteRequest(namespace=ns, name="cm-07"), timeout=RPC_TIMEOUT
    )

    items = list(first.items)
    opts.continue_token = first.metadata.continue_token
    while opts.continue_token:
        page = await api.configmaps.List(opts, timeout=RPC_TIMEOUT)
        assert page.metadata.resource_version == snapshot_rv
        items.extend(page.items)
        opts.continue_token = page.metadata.continue_token
    assert [c.metadata.name for c in items] == [f"cm-{i:02d}" for i in range(10)]
    assert all(c.data["v"] == "old" for c in items)
    assert all(int(c.metadata.resource_version) <= int(snapshot_rv) for c in items)

    fresh = await api.configmaps.List(meta_pb2.ListOptions(namespace=ns), timeout=RPC_TIMEOUT)
    names = [c.metadata.name for c in fresh.items]
    assert "cm-00a" in names and "cm-99" in names and "cm-07" not in names


@pytest.mark.parametrize(
    "token",
    [
        "not-base64!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"rv": 5}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
        base64.urlsafe_b64encode(
            json.dumps({"rv": 5, "start": "/registry/core/secrets/x"}).encode()
        ).decode(),
        base64.urlsafe_b64encode(json.dumps({"rv": 0, "start": ""}).encode()).decode(),
    ],
    ids=["base64", "json", "fields", "shape", "other-list", "zero-rv"],
)
async def test_bad_continue_token(api: Clients, ns: str, token: str) -> None:
    err = await fails(
        api.configmaps.List(
            meta_pb2.ListOptions(namespace=ns, limit=2, continue_token=token), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "invalid continue token" in err.message


async def test_continue_token_from_the_future(api: Clients, ns: str) -> None:
    future = {"rv": 10**12, "start": f"/registry/core/configmaps/{ns}/a"}
    token = base64.urlsafe_b64encode(json.dumps(future).encode()).decode()
    err = await fails(
        api.configmaps.List(
            meta_pb2.ListOptions(namespace=ns, limit=2, continue_token=token), timeout=RPC_TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "invalid continue token" in err.message


async def test_negative_limit(api: Clients, ns: str) -> None:
    err = await fails(
        api.configmaps.List(meta_pb2.ListOptions(namespace=ns, limit=-1), timeout=RPC_TIMEOUT),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "limit" in err.message


async def test_continue_after_compaction_is_expired(small_api: Clients, small_ns: str) -> None:
    api, ns = small_api, small_ns
    for i in range(4):
        await api.configmaps.Create(configmap(ns, f"cm-{i}"), timeout=RPC_TIMEOUT)
    first = await api.configmaps.List(
        meta_pb2.ListOptions(namespace=ns, limit=2), timeout=RPC_TIMEOUT
    )
    assert first.metadata.continue_token
    await api.configmaps.Create(configmap(ns, "later"), timeout=RPC_TIMEOUT)
    server = api.running.server
    assert server is not None
    await server.store.compact(await server.store.current_revision())
    err = await fails(
        api.configmaps.List(
            meta_pb2.ListOptions(
                namespace=ns, limit=2, continue_token=first.metadata.continue_token
            ),
            timeout=RPC_TIMEOUT,
        ),
        grpc.StatusCode.OUT_OF_RANGE,
    )
    assert "continue parameter is too old" in err.message
    assert err.reason == "Expired"

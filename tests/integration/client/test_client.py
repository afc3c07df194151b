"""The typed client against a real apiserver: CRUD, typed errors, paging, watch,
subresources, and fail-over across a list of apiserver addresses."""

from __future__ import annotations

import asyncio
import time

import pytest
from capstan.api.apps.v1 import apps_pb2
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import (
    AlreadyExistsError,
    ConflictError,
    InvalidError,
    NotFoundError,
    NotImplementedError_,
    UnavailableError,
)
from capstan.client import ADDED, BOOKMARK, DELETED, MODIFIED, Client

from tests.integration.client.conftest import configmap, pod
from tests.support.apiserver import RunningApiserver
from tests.support.etcd import free_port

pytestmark = pytest.mark.integration


async def test_typed_crud_round_trip(client: Client, ns: str) -> None:
    created = await client.configmaps.create(configmap(ns, "a", k="v"))
    assert created.metadata.uid and created.metadata.resource_version
    got = await client.configmaps.get("a", ns)
    assert got == created

    got.data["k"] = "v2"
    updated = await client.configmaps.update(got)
    assert updated.data["k"] == "v2"
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    listed = await client.configmaps.list(ns)
    assert [c.metadata.name for c in listed.items] == ["a"]
    assert int(listed.metadata.resource_version) >= int(updated.metadata.resource_version)

    deleted = await client.configmaps.delete("a", ns)
    assert deleted.metadata.name == "a"
    with pytest.raises(NotFoundError):
        await client.configmaps.get("a", ns)


async def test_resource_lookup_by_any_name(client: Client) -> None:
    assert client.resource("pods") is client.pods
    assert client.resource("po") is client.pods
    assert client.resource("Pod") is client.pods
    assert client.resource("deployments.apps") is client.deployments
    with pytest.raises(KeyError):
        client.resource("widgets")


async def test_errors_are_typed(client: Client, ns: str) -> None:
    await client.configmaps.create(configmap(ns, "dup"))
    with pytest.raises(AlreadyExistsError):
        await client.configmaps.create(configmap(ns, "dup"))

    first = await client.configmaps.get("dup", ns)
    first.data["x"] = "1"
    await client.configmaps.update(first)
    first.data["x"] = "2"  # still carries the old resource_version
    with pytest.raises(ConflictError):
        await client.configmaps.update(first)

    with pytest.raises(InvalidError) as bad:
        await client.configmaps.create(configmap(ns, "Not_A_Valid_Name"))
    assert any(v.field == "metadata.name" for v in bad.value.violations)

    current = await client.configmaps.get("dup", ns)
    with pytest.raises(ConflictError):
        await client.configmaps.delete("dup", ns, preconditions_resource_version="1")
    with pytest.raises(ConflictError):
        await client.configmaps.delete("dup", ns, preconditions_uid="not-the-uid")
    await client.configmaps.delete(
        "dup", ns, preconditions_uid=current.metadata.uid,
        preconditions_resource_version=current.metadata.resource_version,
    )  # fmt: skip


async def test_update_status_and_subresource_checks(client: Client, ns: str) -> None:
    p = await client.pods.create(pod(ns, "p"))
    p.status.message = "hello"
    out = await client.pods.update_status(p)
    assert out.status.message == "hello"
    with pytest.raises(NotImplementedError_):
        await client.configmaps.update_status(configmap(ns, "x"))
    with pytest.raises(NotImplementedError_):
        await client.configmaps.get_scale("x", ns)
    with pytest.raises(NotImplementedError_):
        await client.deployments.bind(core_pb2.Binding())

    b = core_pb2.Binding()
    b.metadata.namespace, b.metadata.name = ns, "p"
    b.target.kind, b.target.name = "Node", "node-1"
    bound = await client.pods.bind(b)
    assert bound.spec.node_name == "node-1"


async def test_scale_subresource(client: Client, ns: str) -> None:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.namespace, rs.metadata.name = ns, "rs"
    rs.spec.replicas = 1
    rs.spec.selector.match_labels["app"] = "x"
    rs.spec.template.metadata.labels["app"] = "x"
    rs.spec.template.spec.containers.add(name="c", image="busybox")
    await client.replicasets.create(rs)
    scale = await client.replicasets.get_scale("rs", ns)
    assert scale.spec.replicas == 1
    scale.spec.replicas = 4
    scale = await client.replicasets.update_scale(scale)
    assert scale.spec.replicas == 4
    assert (await client.replicasets.get("rs", ns)).spec.replicas == 4


async def test_list_all_pages_through(client: Client, ns: str) -> None:
    await asyncio.gather(*(client.configmaps.create(configmap(ns, f"c{i:03}")) for i in range(23)))
    items, rv = await client.configmaps.list_all(ns, page_size=5)
    assert [c.metadata.name for c in items] == [f"c{i:03}" for i in range(23)]
    assert int(rv) > 0
    page = await client.configmaps.list(ns, limit=5)
    assert len(page.items) == 5 and page.metadata.continue_token


async def test_watch_events_and_selectors(client: Client, ns: str) -> None:
    start = (await client.configmaps.list(ns)).metadata.resource_version
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async for ev in client.configmaps.watch(
            ns, resource_version=start, label_selector="team=a"
        ):
            seen.append((ev.type, ev.object.metadata.name))
            if ev.type == DELETED:
                return

    task = asyncio.create_task(consume())
    a = configmap(ns, "a")
    a.metadata.labels["team"] = "a"
    a = await client.configmaps.create(a)
    await client.configmaps.create(configmap(ns, "other"))
    a.data["k"] = "v"
    await client.configmaps.update(a)
    await client.configmaps.delete("a", ns)
    await asyncio.wait_for(task, 10)
    assert seen == [(ADDED, "a"), (MODIFIED, "a"), (DELETED, "a")]


async def test_watch_initial_events_end_with_a_bookmark(client: Client, ns: str) -> None:
    await client.configmaps.create(configmap(ns, "x"))
    events = []
    async for ev in client.configmaps.watch(ns, send_initial_events=True, allow_bookmarks=True):
        events.append(ev)
        if ev.type == BOOKMARK:
            break
    assert [e.type for e in events] == [ADDED, BOOKMARK]
    assert events[1].object.metadata.annotations["k8s.io/initial-events-end"] == "true"


async def test_fail_over_from_a_dead_first_address(apiserver: RunningApiserver, ns: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with Client([dead, apiserver.address], default_timeout=5) as c:
        # Every call succeeds, including non-idempotent ones: a refused connection
        # means the request never left, so it is safe to send elsewhere.
        for i in range(6):
            await c.configmaps.create(configmap(ns, f"f{i}"))
            assert (await c.configmaps.get(f"f{i}", ns)).metadata.name == f"f{i}"
        await c.configmaps.delete("f0", ns)
        items, _ = await c.configmaps.list_all(ns)
        assert len(items) == 5
        ev = await anext(aiter(c.configmaps.watch(ns, send_initial_events=True)))
        assert ev.type == ADDED


async def test_all_servers_dead_fails_within_the_deadline() -> None:
    async with Client([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]) as c:
        start = time.monotonic()
        with pytest.raises(UnavailableError):
            await c.configmaps.get("x", "default", timeout=1.0)
        assert time.monotonic() - start < 3.0

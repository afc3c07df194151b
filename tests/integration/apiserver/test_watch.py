"""Watch: resume from a resource version, initial events, selectors, bookmarks, the
"too old" and "too new" errors, timeouts, and cutting off a watcher that cannot keep up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from capstan.api.core.v1 import core_pb2, core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2

from tests.integration.apiserver.conftest import SMALL_WATCH_CACHE_SIZE
from tests.integration.apiserver.helpers import (
    RPC_TIMEOUT,
    Clients,
    configmap,
    delete_request,
    fails,
    named,
    pod,
    watching,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _rv(event: Any) -> int:
    return int(event.object.metadata.resource_version)


def _summary(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.type, e.object.metadata.name) for e in events]


async def test_watch_replays_then_follows(api: Clients, ns: str) -> None:
    start = await api.configmaps.Create(configmap(ns, "a"), timeout=RPC_TIMEOUT)
    b = await api.configmaps.Create(configmap(ns, "b", {"v": "1"}), timeout=RPC_TIMEOUT)
    b.data["v"] = "2"
    b2 = await api.configmaps.Update(b, timeout=RPC_TIMEOUT)
    deleted = await api.configmaps.Delete(delete_request(ns, "a"), timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(namespace=ns, resource_version=start.metadata.resource_version)
    async with watching(api.configmaps, opts) as w:
        replayed = [await w.next() for _ in range(3)]
        assert _summary(replayed) == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")]
        assert [_rv(e) for e in replayed] == [
            int(b.metadata.resource_version),
            int(b2.metadata.resource_version),
            int(deleted.metadata.resource_version),
        ]
        assert replayed[1].object.data["v"] == "2"
        live = []
        for name in ("c", "d", "e"):
            live.append(await api.configmaps.Create(configmap(ns, name), timeout=RPC_TIMEOUT))
        followed = [await w.next() for _ in range(3)]
        assert _summary(followed) == [("ADDED", "c"), ("ADDED", "d"), ("ADDED", "e")]
        assert [_rv(e) for e in followed] == [int(c.metadata.resource_version) for c in live]
        revisions = [_rv(e) for e in replayed + followed]
        assert revisions == sorted(set(revisions))


async def test_watch_from_list_has_no_gap_under_concurrent_writes(api: Clients, ns: str) -> None:
    listed = await api.configmaps.List(meta_pb2.ListOptions(namespace=ns), timeout=RPC_TIMEOUT)

    async def writer() -> list[int]:
        revs = []
        for i in range(30):
            made = await api.configmaps.Create(configmap(ns, f"cm-{i:02d}"), timeout=RPC_TIMEOUT)
            revs.append(int(made.metadata.resource_version))
        return revs

    writing = asyncio.create_task(writer())
    opts = meta_pb2.ListOptions(namespace=ns, resource_version=listed.metadata.resource_version)
    async with watching(api.configmaps, opts) as w:
        events = [await w.next() for _ in range(30)]
    written = await writing
    assert [_rv(e) for e in events] == written
    assert _summary(events) == [("ADDED", f"cm-{i:02d}") for i in range(30)]


async def test_watch_from_now(api: Clients, ns: str) -> None:
    await api.configmaps.Create(configmap(ns, "before"), timeout=RPC_TIMEOUT)
    async with watching(api.configmaps, meta_pb2.ListOptions(namespace=ns)) as w:
        # The watch has no resource version to report back; give it time to register.
        await asyncio.sleep(0.5)
        await api.configmaps.Create(configmap(ns, "after"), timeout=RPC_TIMEOUT)
        event = await w.next()
        assert (event.type, event.object.metadata.name) == ("ADDED", "after")


async def test_send_initial_events(api: Clients, ns: str) -> None:
    for name in ("b", "a", "c"):
        await api.configmaps.Create(configmap(ns, name), timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(namespace=ns, send_initial_events=True, allow_watch_bookmarks=True)
    async with watching(api.configmaps, opts) as w:
        initial = [await w.next() for _ in range(4)]
        assert _summary(initial[:3]) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
        bookmark = initial[3]
        assert bookmark.type == "BOOKMARK"
        assert dict(bookmark.object.metadata.annotations) == {"k8s.io/initial-events-end": "true"}
        assert _rv(bookmark) >= max(_rv(e) for e in initial[:3])
        made = await api.configmaps.Create(configmap(ns, "d"), timeout=RPC_TIMEOUT)
        event = await w.next()
        assert (event.type, event.object.metadata.name) == ("ADDED", "d")
        assert _rv(event) == int(made.metadata.resource_version) > _rv(bookmark)


async def test_label_selector_watch_sees_objects_enter_and_leave(api: Clients, ns: str) -> None:
    inside = await api.pods.Create(pod(ns, "inside", labels={"app": "web"}), timeout=RPC_TIMEOUT)
    outside = await api.pods.Create(pod(ns, "outside", labels={"app": "db"}), timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(
        namespace=ns, label_selector="app=web", resource_version=outside.metadata.resource_version
    )
    async with watching(api.pods, opts) as w:
        inside.metadata.labels["app"] = "db"
        left = await api.pods.Update(inside, timeout=RPC_TIMEOUT)
        outside.metadata.labels["app"] = "web"
        entered = await api.pods.Update(outside, timeout=RPC_TIMEOUT)
        entered.metadata.annotations["touched"] = "yes"
        touched = await api.pods.Update(entered, timeout=RPC_TIMEOUT)
        await api.pods.Delete(delete_request(ns, "inside"), timeout=RPC_TIMEOUT)
        gone = await api.pods.Delete(delete_request(ns, "outside"), timeout=RPC_TIMEOUT)
        events = [await w.next() for _ in range(4)]
    assert _summary(events) == [
        ("DELETED", "inside"),
        ("ADDED", "outside"),
        ("MODIFIED", "outside"),
        ("DELETED", "outside"),
    ]
    assert _rv(events[3]) == int(gone.metadata.resource_version)
    # The object that left is delivered in its last state that matched.
    assert events[0].object.metadata.labels["app"] == "web"
    assert _rv(events[0]) == int(left.metadata.resource_version)
    assert _rv(events[1]) == int(entered.metadata.resource_version)
    assert _rv(events[2]) == int(touched.metadata.resource_version)


async def test_field_selector_watch_sees_binding(api: Clients, ns: str) -> None:
    node = f"node-{ns}"
    created = await api.pods.Create(pod(ns, "p"), timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(
        field_selector=f"spec.nodeName={node}", resource_version=created.metadata.resource_version
    )
    async with watching(api.pods, opts) as w:
        bound = await api.bind(ns, "p", node)
        event = await w.next()
    assert (event.type, event.object.metadata.name) == ("ADDED", "p")
    assert event.object.spec.node_name == node
    assert _rv(event) == int(bound.metadata.resource_version)


async def test_too_old_resource_version(small_api: Clients, small_ns: str) -> None:
    api, ns = small_api, small_ns
    first = await api.configmaps.Create(configmap(ns, "old"), timeout=RPC_TIMEOUT)
    churn = await api.configmaps.Create(configmap(ns, "churn", {"i": "0"}), timeout=RPC_TIMEOUT)
    for i in range(SMALL_WATCH_CACHE_SIZE + 5):
        churn.data["i"] = str(i + 1)
        churn = await api.configmaps.Update(churn, timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(namespace=ns, resource_version=first.metadata.resource_version)
    async with watching(api.configmaps, opts) as w:
        code, events = await w.status()
    assert code == grpc.StatusCode.OUT_OF_RANGE
    assert events == []
    # The same error, with its reason, for a client that rebuilds it.
    err = await fails(_first_event(api.configmaps, opts), grpc.StatusCode.OUT_OF_RANGE)
    assert "too old resource version" in err.message
    assert err.reason == "Expired"


async def _first_event(stub: Any, opts: meta_pb2.ListOptions) -> Any:
    call = stub.Watch(opts, timeout=RPC_TIMEOUT)
    try:
        return await call.read()
    finally:
        call.cancel()


async def test_future_resource_version_times_out(api: Clients, ns: str) -> None:
    listed = await api.configmaps.List(meta_pb2.ListOptions(namespace=ns), timeout=RPC_TIMEOUT)
    future = int(listed.metadata.resource_version) + 1_000_000
    opts = meta_pb2.ListOptions(namespace=ns, resource_version=str(future))
    started = time.monotonic()
    err = await fails(_first_event(api.configmaps, opts), grpc.StatusCode.DEADLINE_EXCEEDED)
    assert time.monotonic() - started >= 2.5
    assert f"Too large resource version: {future}" in err.message
    assert err.reason == "Timeout"


async def test_bookmarks(small_api: Clients, small_ns: str) -> None:
    api, ns = small_api, small_ns
    listed = await api.configmaps.List(meta_pb2.ListOptions(namespace=ns), timeout=RPC_TIMEOUT)
    rv = listed.metadata.resource_version
    with_bookmarks = meta_pb2.ListOptions(
        namespace=ns, resource_version=rv, allow_watch_bookmarks=True
    )
    without = meta_pb2.ListOptions(namespace=ns, resource_version=rv)
    async with (
        watching(api.configmaps, with_bookmarks) as w,
        watching(api.configmaps, without) as plain,
    ):
        bookmarks = [await w.next(within=3) for _ in range(3)]
        assert [b.type for b in bookmarks] == ["BOOKMARK"] * 3
        for b in bookmarks:
            assert _rv(b) >= int(rv)
            assert b.object.metadata.name == ""
            assert "k8s.io/initial-events-end" not in b.object.metadata.annotations
        assert [_rv(b) for b in bookmarks] == sorted(_rv(b) for b in bookmarks)
        made = await api.configmaps.Create(configmap(ns, "x"), timeout=RPC_TIMEOUT)
        seen = await w.until(named("x"), within=3)
        assert all(e.type == "BOOKMARK" for e in seen[:-1])
        # A watch that did not ask for bookmarks gets none.
        event = await plain.next()
        assert (event.type, event.object.metadata.name) == ("ADDED", "x")
        later = await w.until(lambda e: e.type == "BOOKMARK", within=3)
        assert _rv(later[-1]) >= int(made.metadata.resource_version)


async def test_timeout_seconds_ends_the_watch(api: Clients, ns: str) -> None:
    opts = meta_pb2.ListOptions(namespace=ns, timeout_seconds=1)
    started = time.monotonic()
    async with watching(api.configmaps, opts) as w:
        code, events = await w.status(within=5)
    assert code == grpc.StatusCode.OK
    assert events == []
    assert 0.9 <= time.monotonic() - started < 4


async def test_slow_watcher_is_cut_off_fast_one_is_not(small_api: Clients, small_ns: str) -> None:
    api, ns = small_api, small_ns
    server = api.running.server
    assert server is not None
    cache = server.caches["Secret"]
    secrets = core_pb2_grpc.SecretsStub(api.running.channel())
    slow_channel = api.running.channel()
    slow_stub = core_pb2_grpc.SecretsStub(slow_channel)
    secret = core_pb2.Secret()
    secret.metadata.namespace, secret.metadata.name = ns, "s"
    secret.data["v"] = b"0"
    created = await secrets.Create(secret, timeout=RPC_TIMEOUT)
    opts = meta_pb2.ListOptions(namespace=ns, resource_version=created.metadata.resource_version)
    # Events big enough that gRPC's flow-control window holds only a few of them, and
    # enough of them to overflow the slow watcher's backlog several times over.
    payload = b"x" * (256 * 1024)
    writes = 3 * (cache.max_backlog + len(cache.objects)) + 20

    fast_events: list[Any] = []

    async def fast_reader(w: Any) -> None:
        while len(fast_events) < writes:
            fast_events.append(await w.next())

    async with watching(slow_stub, opts) as slow, watching(secrets, opts) as fast:
        reading = asyncio.create_task(fast_reader(fast))
        written = []
        current = created
        for i in range(writes):
            current.data["v"] = payload + str(i).encode()
            current = await secrets.Update(current, timeout=RPC_TIMEOUT)
            written.append(int(current.metadata.resource_version))
        await asyncio.wait_for(reading, 20)
        code, slow_events = await slow.status(within=20)
    assert [_rv(e) for e in fast_events] == written
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # What the slow watcher did get is an in-order prefix, so it can resume from the last.
    assert 0 < len(slow_events) < writes
    assert [_rv(e) for e in slow_events] == written[: len(slow_events)]

"""Informers against a real apiserver: the cache and what handlers were told both end
equal to a fresh List, under churn, across a forced relist, and with shared informers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import (
    NODE_NAME_INDEX,
    Client,
    Informer,
    SharedInformerFactory,
    index_by_node_name,
    object_key,
)

from tests.integration.client.conftest import configmap, new_namespace, pod
from tests.support.apiserver import RunningApiserver, run_apiserver

pytestmark = pytest.mark.integration


class Mirror:
    """What the handlers were told, replayed into a dict: must equal the truth."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.errors: list[str] = []
        self.updates = 0

    def on_add(self, obj: Any) -> None:
        key = object_key(obj)
        if key in self.objects:
            self.errors.append(f"add of known {key}")
        self.objects[key] = obj.metadata.resource_version

    def on_update(self, old: Any, new: Any) -> None:
        key = object_key(new)
        self.updates += 1
        if self.objects.get(key) != old.metadata.resource_version:
            self.errors.append(f"update of {key} from unknown old state")
        self.objects[key] = new.metadata.resource_version

    def on_delete(self, obj: Any) -> None:
        if self.objects.pop(object_key(obj), None) is None:
            self.errors.append(f"delete of unknown {object_key(obj)}")


async def truth(client: Client, ns: str) -> dict[str, str]:
    listed = await client.configmaps.list(ns)
    return {object_key(c): c.metadata.resource_version for c in listed.items}


def cached(informer: Informer[Any]) -> dict[str, str]:
    return {k: o.metadata.resource_version for k, o in informer.indexer.items().items()}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def bounded(n: int, coros: list[Awaitable[Any]]) -> None:
    sem = asyncio.Semaphore(n)

    async def one(c: Awaitable[Any]) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


async def test_informer_consistent_under_churn(client: Client, ns: str) -> None:
    """5000 creates plus updates and deletes while the informer watches."""
    # Some objects exist before the informer's List.
    await bounded(32, [client.configmaps.create(configmap(ns, f"pre{i}")) for i in range(100)])
    informer = Informer(client.configmaps, namespace=ns)
    mirror = Mirror()
    informer.add_event_handler(mirror.on_add, mirror.on_update, mirror.on_delete)
    informer.start()
    try:
        assert await informer.wait_for_sync(10)
        rng = random.Random(7)
        names = [f"c{i}" for i in range(5000)]

        async def life(name: str) -> None:
            obj = await client.configmaps.create(configmap(ns, name, v="0"))
            r = rng.random()
            if r < 0.5:
                obj.data["v"] = "1"
                obj = await client.configmaps.update(obj)
            if r < 0.3:
                await client.configmaps.delete(name, ns)

        await bounded(48, [life(n) for n in names])
        await bounded(32, [client.configmaps.delete(f"pre{i}", ns) for i in range(0, 100, 2)])

        expected = await truth(client, ns)
        assert len(expected) > 3000

        async def converged() -> bool:
            return cached(informer) == expected

        await eventually(converged, 20)
        assert mirror.objects == expected
        assert mirror.errors == []
        assert mirror.updates > 1000
    finally:
        await informer.stop()


async def test_relist_after_the_watch_history_is_gone(tmp_path: Path) -> None:
    """A consumer pauses while writes race ahead: the apiserver cuts its watch (slow
    watcher), the history it would resume from has been dropped (tiny watch cache, store
    compacted), so the informer relists and tells handlers the difference."""
    url = f"sqlite://{tmp_path / 'state.db'}?retain_revisions=50&compaction_interval=0.2"
    async with (
        run_apiserver(url, watch_cache_size=50, watch_max_backlog=20) as api,
        Client([api.address], default_timeout=10) as client,
    ):
        ns = await new_namespace(client)
        for i in range(20):
            await client.configmaps.create(configmap(ns, f"c{i}", v="0"))
        informer = Informer(client.configmaps, namespace=ns)
        mirror = Mirror()
        paused = asyncio.Event()
        resume = asyncio.Event()

        async def on_update(old: Any, new: Any) -> None:
            mirror.on_update(old, new)
            if not resume.is_set():
                paused.set()
                await resume.wait()

        informer.add_event_handler(mirror.on_add, on_update, mirror.on_delete)
        informer.start()
        try:
            assert await informer.wait_for_sync(10)
            assert informer.lists == 1
            big = "x" * 4096  # fill the transport's flow-control windows quickly
            first = await client.configmaps.get("c0", ns)
            first.data["v"] = "1"
            await client.configmaps.update(first)
            await asyncio.wait_for(paused.wait(), 5)

            async def rewrite(name: str, value: str) -> None:
                cm = await client.configmaps.get(name, ns)
                cm.data["v"] = value
                await client.configmaps.update(cm)

            for round_ in range(80):
                await asyncio.gather(*(rewrite(f"c{i}", f"{round_}{big}") for i in range(20)))
            for i in range(10):
                await client.configmaps.delete(f"c{i}", ns)
            await client.configmaps.create(configmap(ns, "late"))
            resume.set()
            expected = await truth(client, ns)

            async def converged() -> bool:
                return cached(informer) == expected

            await eventually(converged, 20)
            assert informer.lists >= 2, "the informer should have relisted"
            assert mirror.objects == expected
            assert mirror.errors == []
        finally:
            await informer.stop()


async def test_resync_redelivers_cached_objects(client: Client, ns: str) -> None:
    await client.configmaps.create(configmap(ns, "a"))
    informer = Informer(client.configmaps, namespace=ns, resync_period=0.2)
    resynced: list[str] = []
    informer.add_event_handler(
        on_update=lambda old, new: resynced.append(new.metadata.name) if old is new else None
    )
    informer.start()
    try:
        await asyncio.sleep(0.7)
        assert resynced.count("a") >= 2
    finally:
        await informer.stop()


async def test_shared_factory_one_informer_per_kind_and_indexers(
    client: Client, apiserver: RunningApiserver
) -> None:
    ns = await new_namespace(client)
    factory = SharedInformerFactory(client, namespace=ns)
    a = factory.for_resource(client.pods, indexers={NODE_NAME_INDEX: index_by_node_name})
    b = factory.informer("pods")
    assert a is b
    assert factory.informer("pods", label_selector="app=x") is not a
    factory.start()
    try:
        assert await factory.wait_for_sync(10)
        for i in range(4):
            await client.pods.create(pod(ns, f"p{i}"))
        for i in range(2):
            binding = core_pb2.Binding()
            binding.metadata.namespace, binding.metadata.name = ns, f"p{i}"
            binding.target.name = "n1"
            await client.pods.bind(binding)
        # Made after start: starts at once.
        late = factory.informer("configmaps")
        assert await late.wait_for_sync(10)

        async def indexed() -> bool:
            return len(a.by_index(NODE_NAME_INDEX, "n1")) == 2

        await eventually(indexed, 10)
        assert sorted(p.metadata.name for p in a.by_index(NODE_NAME_INDEX, "")) == ["p2", "p3"]
        assert a.get("p0", ns) is not None
        assert len(a.list(ns)) == 4
    finally:
        await factory.stop()

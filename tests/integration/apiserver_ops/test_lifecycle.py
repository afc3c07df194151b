"""Process lifecycle: SIGTERM ends every watch cleanly and exits 0 with JSON logs; SIGKILL
loses nothing that was acknowledged (SQLite)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from capstan.api.core.v1 import core_pb2, core_pb2_grpc
from capstan.api.meta.v1 import meta_pb2

from tests.integration.apiserver_ops import ops
from tests.support.apiserver import apiserver_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# The apiserver's default shutdown grace period, plus process start-up slack.
GRACE = 5.0


async def _drain(call: grpc.aio.UnaryStreamCall[Any, Any]) -> grpc.StatusCode:
    try:
        while await call.read() is not grpc.aio.EOF:
            pass
    except grpc.aio.AioRpcError as e:
        return e.code()
    return await call.code()


async def test_sigterm_ends_watches_cleanly_and_exits_zero(tmp_path: Path, namespace: str) -> None:
    log = tmp_path / "apiserver.log"
    async with apiserver_process(f"sqlite://{tmp_path / 'state.db'}", log_path=log) as api:
        assert api.process is not None
        ch = api.channel()
        pods: Any = core_pb2_grpc.PodsStub(ch)
        await core_pb2_grpc.NamespacesStub(ch).Create(ops.namespace_obj(namespace), timeout=5)
        # Watch from a known revision, so the pod created next reaches every watch however
        # long each takes to register.
        start = (await pods.List(meta_pb2.ListOptions(namespace=namespace))).metadata
        variants = [
            meta_pb2.ListOptions(),
            meta_pb2.ListOptions(namespace=namespace, label_selector="app=web"),
            meta_pb2.ListOptions(namespace=namespace, field_selector="metadata.name=w"),
            meta_pb2.ListOptions(namespace=namespace, allow_watch_bookmarks=True),
        ]
        for v in variants:
            v.resource_version = start.resource_version
        watches = [pods.Watch(v) for v in variants]
        await pods.Create(ops.pod(namespace, "w"), timeout=5)
        for w in watches:
            event = await asyncio.wait_for(w.read(), 5)
            assert event.type == "ADDED" and event.object.metadata.name == "w"
        # Another kind's watch, established once its initial events arrived.
        ns_watch: Any = core_pb2_grpc.NamespacesStub(ch).Watch(
            meta_pb2.ListOptions(send_initial_events=True)
        )
        while (await asyncio.wait_for(ns_watch.read(), 5)).type != "BOOKMARK":
            pass

        loop = asyncio.get_running_loop()
        started = loop.time()
        api.process.send_signal(signal.SIGTERM)
        codes = await asyncio.wait_for(
            asyncio.gather(*(_drain(w) for w in [*watches, ns_watch])), GRACE + 2
        )
        assert codes == [grpc.StatusCode.OK] * len(codes)
        assert await asyncio.wait_for(api.process.wait(), GRACE + 3) == 0
        assert loop.time() - started < GRACE + 3

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all({"event", "level", "timestamp"} <= r.keys() for r in records)
    events = [r["event"] for r in records]
    assert "apiserver serving" in events
    assert not [r for r in records if r["level"] in ("error", "critical")], records


async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, namespace: str) -> None:
    store = f"sqlite://{tmp_path / 'state.db'}"
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    async with apiserver_process(store, log_path=tmp_path / "a.log") as api:
        assert api.process is not None
        ch = api.channel()
        pods = core_pb2_grpc.PodsStub(ch)
        await core_pb2_grpc.NamespacesStub(ch).Create(ops.namespace_obj(namespace), timeout=5)
        made = await asyncio.gather(
            *(pods.Create(ops.pod(namespace, f"p{i}"), timeout=10) for i in range(30))
        )
        svc = await core_pb2_grpc.ServicesStub(ch).Create(ops.service(namespace, "web"))
        changed = core_pb2.Pod()
        changed.CopyFrom(made[0])
        changed.metadata.labels["v"] = "2"
        made[0] = await pods.Update(changed, timeout=5)
        await pods.Delete(
            meta_pb2.DeleteRequest(namespace=namespace, name="p1", grace_period_seconds=0)
        )
        for obj in [*made[:1], *made[2:]]:
            seen[("Pod", obj.metadata.name)] = (obj.metadata.uid, obj.metadata.resource_version)
        seen[("Service", "web")] = (svc.metadata.uid, svc.metadata.resource_version)
        listed = await core_pb2_grpc.ServicesStub(ch).List(meta_pb2.ListOptions(), timeout=5)
        kubernetes = {(s.metadata.namespace, s.metadata.name): s for s in listed.items}[
            ("default", "kubernetes")
        ]
        api.process.kill()
        assert await api.process.wait() == -signal.SIGKILL

    async with apiserver_process(store, log_path=tmp_path / "b.log") as api:
        ch = api.channel()
        pods_list = await core_pb2_grpc.PodsStub(ch).List(
            meta_pb2.ListOptions(namespace=namespace), timeout=5
        )
        svcs = await core_pb2_grpc.ServicesStub(ch).List(meta_pb2.ListOptions(), timeout=5)
        found = {("Pod", p.metadata.name): (p.metadata.uid, p.metadata.resource_version)
                 for p in pods_list.items}  # fmt: skip
        ours = [s for s in svcs.items if s.metadata.namespace == namespace]
        found.update({("Service", s.metadata.name): (s.metadata.uid, s.metadata.resource_version)
                      for s in ours})  # fmt: skip
        assert found == seen
        again = {(s.metadata.namespace, s.metadata.name): s for s in svcs.items}
        assert again[("default", "kubernetes")] == kubernetes
        newer = await core_pb2_grpc.PodsStub(ch).Create(ops.pod(namespace, "after"), timeout=5)
        assert int(newer.metadata.resource_version) > max(int(rv) for _, rv in seen.values())

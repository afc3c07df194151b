"""A node that stops heartbeating goes Unknown, is tainted, its pods are marked not ready
and evicted (short grace flags); pods tolerating the taint stay; CIDRs are assigned."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from capstan.api.core.v1 import core_pb2
from capstan.client import Client

from tests.integration.controller_cluster.conftest import (
    cli,
    eventually,
    pod,
    running,
    set_pod_status,
)
from tests.support.apiserver import RunningApiserver

pytestmark = pytest.mark.integration

FLAGS = ["--node-monitor-grace-period", "1", "--pod-eviction-timeout", "1",
         "--allocate-node-cidrs", "--cluster-cidr", "10.250.0.0/16"]  # fmt: skip


async def make_node(client: Client) -> str:
    node = core_pb2.Node()
    node.metadata.name = f"n-{uuid.uuid4().hex[:8]}"
    cond = node.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
    cond.last_heartbeat_time.seconds = int(time.time())
    await client.nodes.create(node)
    return node.metadata.name


async def test_silent_node_is_tainted_and_drained(client: Client, ns: str) -> None:
    name = await make_node(client)
    doomed = pod("doomed", ns)
    doomed.spec.node_name = name
    await client.pods.create(doomed)
    patient = pod("patient", ns)
    patient.spec.node_name = name
    patient.spec.tolerations.add(key="node.kubernetes.io/unreachable", operator="Exists")
    await client.pods.create(patient)
    for p in ("doomed", "patient"):
        await set_pod_status(client, ns, p, ip="10.250.0.5", ready=True)
    async with running(client, "nodelifecycle", extra_args=FLAGS):

        async def unknown() -> bool:
            n = await client.nodes.get(name)
            ready = next(c for c in n.status.conditions if c.type == "Ready")
            taints = {(t.key, t.effect) for t in n.spec.taints}
            return (
                ready.status == "Unknown"
                and ready.reason == "NodeStatusUnknown"
                and ("node.kubernetes.io/unreachable", "NoExecute") in taints
                and ("node.kubernetes.io/unreachable", "NoSchedule") in taints
                and n.spec.pod_cidr.startswith("10.250.")
            )

        await eventually(unknown, timeout=10)

        async def evicted() -> bool:
            p = await client.pods.get("doomed", ns)
            return p.metadata.HasField("deletion_timestamp")

        await eventually(evicted, timeout=10)
        kept = await client.pods.get("patient", ns)
        assert not kept.metadata.HasField("deletion_timestamp")
        ready = next(c for c in kept.status.conditions if c.type == "Ready")
        assert ready.status == "False"


async def test_drain_evicts_pods_but_not_daemonset_pods(
    client: Client, ns: str, apiserver: RunningApiserver, tmp_path: Path
) -> None:
    name = await make_node(client)
    plain = pod("plain", ns)
    plain.spec.node_name = name
    await client.pods.create(plain)
    daemon = pod("daemon", ns)
    daemon.spec.node_name = name
    daemon.metadata.owner_references.add(
        api_version="apps/v1", kind="DaemonSet", name="ds", uid="ds-uid", controller=True
    )
    await client.pods.create(daemon)
    code, out, err = await cli(
        apiserver.address, tmp_path, "drain", name, "--force", "--ignore-daemonsets",
        "--grace-period", "0", "--timeout", "30",
    )  # fmt: skip
    assert code == 0, err + out
    assert f"node/{name} drained" in out
    node = await client.nodes.get(name)
    assert node.spec.unschedulable
    left = {p.metadata.name for p in (await client.pods.list(ns)).items}
    assert left == {"daemon"}
    async with running(client, "nodelifecycle", extra_args=FLAGS):

        async def cordon_taint() -> bool:
            n = await client.nodes.get(name)
            return ("node.kubernetes.io/unschedulable", "NoSchedule") in {
                (t.key, t.effect) for t in n.spec.taints
            }

        await eventually(cordon_taint, timeout=10)

"""The kubelet's real code over the hollow runtime against a real apiserver: registration,
heartbeat, pod status transitions, restart policies, deletion and adoption."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from capstan.apierrors import NotFoundError
from capstan.client import Client

from tests.integration.kubelet.conftest import eventually, pod_on

pytestmark = pytest.mark.integration

Start = Callable[..., Awaitable[Any]]


async def test_registers_node_with_labels_capacity_and_lease(client: Client, hollow: Start) -> None:
    k, _ = await hollow()
    node = await client.nodes.get(k.node_name)
    labels = node.metadata.labels
    assert labels["kubernetes.io/hostname"] == k.node_name
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"]
    assert labels["capstan.dev/hollow"] == "true"
    assert node.status.capacity["cpu"] == "4"
    assert node.status.capacity["pods"] == "110"
    assert node.status.allocatable["memory"] == "16Gi"
    assert node.status.node_info.container_runtime_version == "hollow://1.0.0"
    ready = {c.type: c for c in node.status.conditions}
    assert ready["Ready"].status == "True"
    assert ready["MemoryPressure"].status == "False"
    assert ready["DiskPressure"].status == "False"
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"

    lease = await client.leases.get(k.node_name, "kube-node-lease")
    assert lease.spec.holder_identity == k.node_name
    first = lease.spec.renew_time.ToNanoseconds()

    async def renewed() -> bool:
        again = await client.leases.get(k.node_name, "kube-node-lease")
        return again.spec.renew_time.ToNanoseconds() > first

    await eventually(renewed, timeout=5)


async def test_status_written_only_on_change(client: Client, hollow: Start) -> None:
    k, _ = await hollow()
    writes = k.agent.status_writes
    assert not await k.agent.update_status()
    assert k.agent.status_writes == writes


async def test_pod_runs_and_reports_status(client: Client, hollow: Start, ns: str) -> None:
    k, _ = await hollow()
    await client.pods.create(pod_on(k.node_name, ns, "web"))

    async def running() -> bool:
        p = await client.pods.get("web", ns)
        return p.status.phase == "Running" and any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions
        )

    await eventually(running)
    p = await client.pods.get("web", ns)
    assert p.status.pod_ip.startswith("10.")
    assert p.status.host_ip == "127.0.0.1"
    assert p.status.HasField("start_time")
    types = {c.type: c.status for c in p.status.conditions}
    assert types == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    (cs,) = p.status.container_statuses
    assert cs.name == "main" and cs.ready and cs.state.HasField("running")
    assert cs.container_id.startswith("hollow://")
    events = await client.events.list(ns)
    reasons = {e.reason for e in events.items}
    assert {"Created", "Started"} <= reasons


@pytest.mark.parametrize(
    ("policy", "code", "phase", "restarts"),
    [
        ("Never", 1, "Failed", 0),
        ("Never", 0, "Succeeded", 0),
        ("OnFailure", 0, "Succeeded", 0),
        ("OnFailure", 3, "Running", 1),
        ("Always", 0, "Running", 1),
    ],
)
async def test_restart_policy(
    client: Client, hollow: Start, ns: str, policy: str, code: int, phase: str, restarts: int
) -> None:
    k, rt = await hollow()
    await client.pods.create(pod_on(k.node_name, ns, "job", policy=policy))

    async def running() -> bool:
        p = await client.pods.get("job", ns)
        return p.status.phase == "Running"

    await eventually(running)
    p = await client.pods.get("job", ns)
    cid = p.status.container_statuses[0].container_id.split("://")[1]
    rt.exit(cid, code)

    async def settled() -> bool:
        q = await client.pods.get("job", ns)
        cs = q.status.container_statuses
        return (
            q.status.phase == phase
            and bool(cs)
            and cs[0].restart_count == restarts
            and (restarts == 0 or cs[0].state.HasField("running"))
        )

    await eventually(settled)
    q = await client.pods.get("job", ns)
    cs = q.status.container_statuses[0]
    if restarts:
        assert cs.last_state.terminated.exit_code == code
    else:
        assert cs.state.terminated.exit_code == code
        assert cs.state.terminated.reason == ("Completed" if code == 0 else "Error")


async def test_crash_loop_backoff(client: Client, hollow: Start, ns: str) -> None:
    k, rt = await hollow()
    await client.pods.create(pod_on(k.node_name, ns, "crash"))

    async def crash(expect_restarts: int) -> None:
        async def up() -> bool:
            p = await client.pods.get("crash", ns)
            cs = p.status.container_statuses
            return (
                bool(cs)
                and cs[0].state.HasField("running")
                and (cs[0].restart_count == expect_restarts)
            )

        await eventually(up)
        p = await client.pods.get("crash", ns)
        rt.exit(p.status.container_statuses[0].container_id.split("://")[1], 2)

    await crash(0)  # first restart is immediate
    await crash(1)  # the second waits out the back-off: CrashLoopBackOff shows meanwhile

    async def backing_off() -> bool:
        p = await client.pods.get("crash", ns)
        w = p.status.container_statuses[0].state.waiting
        return w.reason == "CrashLoopBackOff"

    await eventually(backing_off, timeout=2)

    async def restarted() -> bool:
        p = await client.pods.get("crash", ns)
        cs = p.status.container_statuses[0]
        return cs.restart_count == 2 and cs.state.HasField("running")

    await eventually(restarted, timeout=5)
    assert any(e.reason == "BackOff" for e in (await client.events.list(ns)).items)


async def test_init_containers_run_first(client: Client, hollow: Start, ns: str) -> None:
    k, rt = await hollow()
    p = pod_on(k.node_name, ns, "init")
    p.spec.init_containers.add(name="setup", image="busybox:1")
    await client.pods.create(p)

    async def initializing() -> bool:
        q = await client.pods.get("init", ns)
        ics = q.status.init_container_statuses
        return bool(ics) and ics[0].state.HasField("running")

    await eventually(initializing)
    q = await client.pods.get("init", ns)
    assert q.status.phase == "Pending"
    assert q.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    rt.exit(q.status.init_container_statuses[0].container_id.split("://")[1], 0)

    async def running() -> bool:
        r = await client.pods.get("init", ns)
        return r.status.phase == "Running"

    await eventually(running)
    r = await client.pods.get("init", ns)
    assert r.status.init_container_statuses[0].state.terminated.reason == "Completed"


async def test_graceful_delete_is_confirmed(client: Client, hollow: Start, ns: str) -> None:
    k, rt = await hollow()
    await client.pods.create(pod_on(k.node_name, ns, "gone"))

    async def running() -> bool:
        return (await client.pods.get("gone", ns)).status.phase == "Running"

    await eventually(running)
    uid = (await client.pods.get("gone", ns)).metadata.uid
    await client.pods.delete("gone", ns)

    async def deleted() -> bool:
        try:
            await client.pods.get("gone", ns)
        except NotFoundError:
            return True
        return False

    await eventually(deleted)
    assert not await rt.list({"io.capstan.pod.uid": uid})


async def test_restarted_kubelet_adopts_running_containers(
    client: Client, hollow: Start, ns: str
) -> None:
    k, rt = await hollow()
    await client.pods.create(pod_on(k.node_name, ns, "keep"))

    async def running() -> bool:
        return (await client.pods.get("keep", ns)).status.phase == "Running"

    await eventually(running)
    before = (await client.pods.get("keep", ns)).status.container_statuses[0].container_id
    await k.stop()
    # An orphan: a container of a pod that no longer exists.
    orphan = await rt.create(
        __import__("kubelet.runtime", fromlist=["ContainerConfig"]).ContainerConfig(
            name="k8s_x_y_z_dead_0",
            image="busybox:1",
            labels={
                "io.capstan.kubelet.managed": "true",
                "io.capstan.node.name": k.node_name,
                "io.capstan.pod.uid": "dead",
                "io.capstan.container.name": "x",
            },
        )
    )
    k2, _ = await hollow(k.node_name, rt)

    async def orphan_removed() -> bool:
        return await rt.inspect(orphan) is None

    await eventually(orphan_removed)
    p = await client.pods.get("keep", ns)
    cs = p.status.container_statuses[0]
    assert cs.container_id == before and cs.restart_count == 0
    assert k2.workers

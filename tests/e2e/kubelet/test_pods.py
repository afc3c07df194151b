"""Pods on real Docker: networking, environment, volumes, restart policies, memory limits."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2

from tests.e2e.kubelet.conftest import (
    Node,
    busybox_pod,
    eventually,
    exec_in,
    wait_phase,
)
from tests.support.images import BUSYBOX

pytestmark = pytest.mark.e2e


async def test_containers_share_ip_localhost_and_hostname(node: Node, ns: str) -> None:
    p = busybox_pod(ns, "duo", "while true; do echo hello-from-server | nc -l -p 8080; done")
    c = p.spec.containers.add(name="client", image=BUSYBOX, image_pull_policy="Never")
    c.command.extend(["sleep", "3600"])
    await node.client.pods.create(p)
    pod = await wait_phase(node.client, ns, "duo", "Running")
    assert pod.status.pod_ip
    code, out = await exec_in(node.client, ns, "duo", "client", "nc", "127.0.0.1", "8080")
    assert (code, out.strip()) == (0, "hello-from-server")
    ips = set()
    for name in ("main", "client"):
        code, out = await exec_in(node.client, ns, "duo", name, "hostname")
        assert out.strip() == "duo"
        code, out = await exec_in(node.client, ns, "duo", name, "cat", "/etc/hosts")
        assert f"{pod.status.pod_ip}\tduo" in out
        code, out = await exec_in(node.client, ns, "duo", name, "ifconfig", "eth0")
        ips.add(out.split("inet addr:")[1].split()[0])
    assert ips == {pod.status.pod_ip}
    code, out = await exec_in(node.client, ns, "duo", "main", "cat", "/etc/resolv.conf")
    assert "nameserver 10.96.0.10" in out
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in out
    assert "options ndots:5" in out


async def test_env_and_var_expansion(node: Node, ns: str) -> None:
    cm = core_pb2.ConfigMap()
    cm.metadata.namespace, cm.metadata.name = ns, "settings"
    cm.data["mode"] = "fast"
    await node.client.configmaps.create(cm)
    p = busybox_pod(ns, "env", "")
    c = p.spec.containers[0]
    del c.command[:]
    c.command.extend(["sh", "-c"])
    c.args.append("echo cmd=$(GREETING) 'literal=$$(GREETING)' shell=$MODE pod=$POD; sleep 3600")
    c.working_dir = "/tmp"
    c.env.add(name="POD").value_from.field_ref.field_path = "metadata.name"
    c.env.add(name="GREETING", value="hi-$(POD)")
    ref = c.env.add(name="MODE").value_from.config_map_key_ref
    ref.name, ref.key = "settings", "mode"
    c.env.add(name="IP").value_from.field_ref.field_path = "status.podIP"
    await node.client.pods.create(p)
    pod = await wait_phase(node.client, ns, "env", "Running")

    async def logged() -> bool:
        return b"cmd=" in b"".join(
            [
                x
                async for x in node.client.pods.logs(
                    core_pb2.PodLogOptions(namespace=ns, name="env")
                )
            ]
        )

    await eventually(logged)
    out = b"".join(
        [x async for x in node.client.pods.logs(core_pb2.PodLogOptions(namespace=ns, name="env"))]
    ).decode()
    assert "cmd=hi-env literal=$(GREETING) shell=fast pod=env" in out
    code, pwd = await exec_in(node.client, ns, "env", "main", "sh", "-c", "pwd; echo $IP")
    assert code == 0
    assert pwd.split() == ["/tmp", pod.status.pod_ip]


async def test_configmap_and_secret_volumes_update_live(node: Node, ns: str) -> None:
    cm = core_pb2.ConfigMap()
    cm.metadata.namespace, cm.metadata.name = ns, "cfg"
    cm.data["app.conf"] = "v1"
    await node.client.configmaps.create(cm)
    sec = core_pb2.Secret()
    sec.metadata.namespace, sec.metadata.name = ns, "creds"
    sec.data["password"] = b"s3cret"
    await node.client.secrets.create(sec)
    p = busybox_pod(ns, "vols", "sleep 3600")
    p.spec.volumes.add(name="cfg").config_map.name = "cfg"
    sv = p.spec.volumes.add(name="sec").secret
    sv.secret_name, sv.default_mode = "creds", 0o400
    p.spec.volumes.add(name="scratch").empty_dir.medium = "Memory"
    c = p.spec.containers[0]
    c.volume_mounts.add(name="cfg", mount_path="/etc/cfg")
    c.volume_mounts.add(name="sec", mount_path="/etc/sec")
    c.volume_mounts.add(name="scratch", mount_path="/scratch")
    await node.client.pods.create(p)
    await wait_phase(node.client, ns, "vols", "Running")
    assert (await exec_in(node.client, ns, "vols", "main", "cat", "/etc/cfg/app.conf"))[1] == "v1"
    assert (await exec_in(node.client, ns, "vols", "main", "cat", "/etc/sec/password"))[1] == (
        "s3cret"
    )
    code, mode = await exec_in(
        node.client, ns, "vols", "main", "stat", "-L", "-c", "%a", "/etc/sec/password"
    )
    assert mode.strip() == "400"
    code, _ = await exec_in(node.client, ns, "vols", "main", "touch", "/etc/sec/new")
    assert code != 0  # read-only
    code, mounts = await exec_in(node.client, ns, "vols", "main", "cat", "/proc/mounts")
    by_path = {line.split()[1]: line.split() for line in mounts.splitlines()}
    assert by_path["/etc/sec"][2] == "tmpfs" and "ro" in by_path["/etc/sec"][3].split(",")
    assert by_path["/scratch"][2] == "tmpfs"

    cm = await node.client.configmaps.get("cfg", ns)
    cm.data["app.conf"] = "v2"
    await node.client.configmaps.update(cm)

    async def updated() -> bool:
        _, out = await exec_in(node.client, ns, "vols", "main", "cat", "/etc/cfg/app.conf")
        return out == "v2"

    await eventually(updated, timeout=15)


async def test_restart_policies(node: Node, ns: str) -> None:
    await node.client.pods.create(busybox_pod(ns, "never", "exit 3", policy="Never"))
    await node.client.pods.create(busybox_pod(ns, "done", "exit 0", policy="Never"))
    await node.client.pods.create(
        busybox_pod(ns, "onfail", "sleep 0.5; exit 1", policy="OnFailure")
    )
    failed = await wait_phase(node.client, ns, "never", "Failed")
    t = failed.status.container_statuses[0].state.terminated
    assert (t.exit_code, t.reason) == (3, "Error")
    ok = await wait_phase(node.client, ns, "done", "Succeeded")
    assert ok.status.container_statuses[0].state.terminated.reason == "Completed"

    async def restarted() -> bool:
        p = await node.client.pods.get("onfail", ns)
        cs = p.status.container_statuses
        return bool(cs) and cs[0].restart_count >= 1

    await eventually(restarted)
    p = await node.client.pods.get("onfail", ns)
    assert p.status.phase == "Running"
    assert p.status.container_statuses[0].last_state.terminated.exit_code == 1


async def test_memory_limit_and_oom_kill(node: Node, ns: str) -> None:
    p = busybox_pod(ns, "limited", "sleep 3600")
    p.spec.containers[0].resources.limits["memory"] = "32Mi"
    await node.client.pods.create(p)
    await wait_phase(node.client, ns, "limited", "Running")
    code, out = await exec_in(
        node.client,
        ns,
        "limited",
        "main",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null"
        " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    )
    assert code == 0
    assert out.strip() == str(32 * 1024 * 1024)

    hog = busybox_pod(ns, "hog", "dd if=/dev/zero of=/dev/null bs=200M count=1", policy="Never")
    hog.spec.containers[0].resources.limits["memory"] = "32Mi"
    await node.client.pods.create(hog)
    dead = await wait_phase(node.client, ns, "hog", "Failed")
    t = dead.status.container_statuses[0].state.terminated
    assert t.reason == "OOMKilled" and t.exit_code == 137

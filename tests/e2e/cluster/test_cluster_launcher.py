"""tools/cluster for real: a two-node cluster of the five daemons comes up in its own network
namespaces, its nodes turn Ready, a pod on node2 reaches a pod on node1 by pod IP (and, through
the proxy, by service DNS name), and `down` leaves no namespace, process, mount or file behind.

The namespace and state dir names are unique per run, so this never touches a cluster someone
started by hand. Every packet is sent from inside the cluster's own namespaces (capstan exec into
a pod, nsenter into a node), never from the namespace pytest runs in."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAUNCHER = ROOT / "tools" / "cluster"
BIN = Path(sys.executable).parent
DAEMONS = ("apiserver", "scheduler", "controller", "kubelet", "proxy")
SYSTEM_TOOLS = ("ip", "nsenter", "dockerd", "containerd", "docker", "iptables-restore", "curl")


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, dockerd)"
    for name in DAEMONS:
        if not (BIN / f"capstan-{name}").exists() or not importlib.util.find_spec(
            f"{name}.__main__"
        ):
            return f"capstan-{name} is not installed"
    for tool in SYSTEM_TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(bool(_missing()), reason=_missing() or "ready"),
]

POD_TIMEOUT = 60.0


@dataclass
class Cluster:
    netns: str
    state: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.state / "capstan.config"

    def launcher(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LAUNCHER), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def capstan(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            [str(BIN / "capstan"), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert out.returncode == 0, f"capstan {' '.join(args)}: {out.stderr}{out.stdout}"
        return out.stdout

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.capstan("get", kind, name, "-o", "json"))
        return obj

    def node_ns(self, i: int) -> str:
        return f"{self.netns}-node{i}"


def namespaces_with(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.startswith(prefix)]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def mounts_under(path: Path) -> list[str]:
    prefix = f"{path}/"
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]


def wait_running(cluster: Cluster, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + POD_TIMEOUT
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pod = cluster.get("pod", name)
        status = pod.get("status", {})
        if status.get("phase") == "Running" and status.get("podIP"):
            return pod
        time.sleep(0.5)
    raise AssertionError(f"pod {name} not Running after {POD_TIMEOUT}s: {pod.get('status')}")


def eventually_exec(cluster: Cluster, pod: str, script: str, want: str) -> str:
    """Run script in pod until its output contains want (endpoints and DNS catch up async)."""
    deadline = time.monotonic() + 30
    last = ""
    while time.monotonic() < deadline:
        out = subprocess.run(
            [str(BIN / "capstan"), "--config", str(cluster.config), "exec", pod, "--",
             "sh", "-c", script],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        last = out.stdout + out.stderr
        if out.returncode == 0 and want in out.stdout:
            return out.stdout
        time.sleep(1)
    raise AssertionError(f"{script!r} in {pod} never printed {want!r}; last output:\n{last}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    netns = f"cl{uuid.uuid4().hex[:8]}"
    state = tmp_path_factory.mktemp("cluster") / "state"
    env = {**os.environ, "CAPSTAN_LOCAL_NETNS": netns, "CAPSTAN_LOCAL_DIR": str(state)}
    env.pop("CAPSTAN_LOCAL_NODE_PREFIX", None)
    c = Cluster(netns, state, env)
    up = c.launcher("up", "--nodes", "2")
    try:
        assert up.returncode == 0, f"tools/cluster up failed:\n{up.stderr}"
        assert f"export CAPSTAN_CONFIG={c.config}" in up.stdout
        yield c
    finally:
        # A no-op ("not up") when the last test already took it down.
        c.launcher("down", timeout=120)


def test_nodes_ready_and_status(cluster: Cluster) -> None:
    rows = [line.split() for line in cluster.capstan("get", "nodes", "--no-headers").splitlines()]
    assert {(r[0], r[1]) for r in rows} == {("node1", "Ready"), ("node2", "Ready")}
    for i in (1, 2):
        node = cluster.get("node", f"node{i}")
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == f"10.250.0.{10 + i}"
    status = cluster.launcher("status").stdout
    for name in ("apiserver", "scheduler", "controller"):
        assert f"{name} " in status
    for i in (1, 2):
        for name in ("containerd", "dockerd", "kubelet", "proxy"):
            assert f"{name}-node{i} " in status
    assert "stopped" not in status
    again = cluster.launcher("up", "--nodes", "2")
    assert again.returncode == 0 and "already up" in again.stderr


def pod_manifest(name: str, image: str, placement: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if image.startswith("capstan/demo"):
        container["ports"] = [{"containerPort": 8080}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"restartPolicy": "Never", "containers": [container], **placement},
    }


def test_pods_reach_each_other_across_nodes(cluster: Cluster) -> None:
    # One pod per node: the server bound to node1 by name, the client placed on node2 by the
    # scheduler through a node selector.
    pods = [
        pod_manifest("web", "capstan/demo:1", {"nodeName": "node1"}),
        pod_manifest(
            "client", "capstan/util:1", {"nodeSelector": {"kubernetes.io/hostname": "node2"}}
        ),
    ]
    path = cluster.state / "pods.yaml"
    path.write_text("\n---\n".join(json.dumps(pod) for pod in pods))  # JSON is YAML
    cluster.capstan("apply", "-f", str(path))
    web = wait_running(cluster, "web")
    client = wait_running(cluster, "client")
    assert web["spec"]["nodeName"] == "node1" and client["spec"]["nodeName"] == "node2"
    web_ip, client_ip = web["status"]["podIP"], client["status"]["podIP"]
    assert web_ip.startswith("10.244.1.") and client_ip.startswith("10.244.2.")

    # Pod to pod by IP, routed node2 -> node1 with no NAT: the demo sees the client pod's IP.
    page = eventually_exec(
        cluster, "client", f"timeout 5 wget -qO- http://{web_ip}:8080/", "hostname: web"
    )
    assert client_ip in page

    # From node2's own namespace too (the kubelet's and proxy's view of the network).
    out = subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{cluster.node_ns(2)}", "--",
         "curl", "-sf", "-m", "5", f"http://{web_ip}:8080/version"],
        capture_output=True, text=True, timeout=15,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr

    # Through the proxy: the service's DNS name (node2's DNS), its cluster IP (node2's iptables)
    # and back to the pod on node1.
    cluster.capstan("expose", "pod", "web", "--port=80", "--target-port=8080")
    service = cluster.get("service", "web")
    cluster_ip = service["spec"]["clusterIP"]
    eventually_exec(
        cluster, "client", "timeout 5 wget -qO- http://web.default.svc.cluster.local/version", "1"
    )
    eventually_exec(cluster, "client", f"timeout 5 wget -qO- http://{cluster_ip}/version", "1")


def still_running(pid_file_line: str) -> bool:
    """The launcher's pid files hold "PID START_TIME": a zombie or a recycled PID is gone."""
    pid, started = pid_file_line.split()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(") ")[2].split()
    return fields[0] != "Z" and fields[19] == started


def test_down_removes_everything(cluster: Cluster) -> None:
    pid_files = {p.stem: p.read_text().strip() for p in (cluster.state / "run").glob("*.pid")}
    assert len(pid_files) == 11  # 3 control-plane daemons + 4 per node
    down = cluster.launcher("down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert namespaces_with(cluster.netns) == []
    assert not cluster.state.exists()
    assert mounts_under(cluster.state) == []
    assert processes_mentioning(str(cluster.state)) == []
    alive = [name for name, line in pid_files.items() if still_running(line)]
    assert alive == [], f"still running: {alive}"
    again = cluster.launcher("down")
    assert again.returncode == 0 and "not up" in again.stderr

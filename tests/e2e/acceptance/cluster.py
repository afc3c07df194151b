"""The acceptance suite's harness: a cluster made by tools/cluster, driven only through the
`capstan` command (and `tools/cluster` for what an operator does to daemons), the way a user
would. Traffic to pods, cluster IPs and node ports is sent only from inside the cluster's own
network namespaces: `capstan exec` into a pod, or `nsenter` into a node's namespace."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[3]
LAUNCHER = ROOT / "tools" / "cluster"
BIN = Path(sys.executable).parent
DAEMONS = ("apiserver", "scheduler", "controller", "kubelet", "proxy")
SYSTEM_TOOLS = ("ip", "nsenter", "dockerd", "containerd", "docker", "iptables-restore", "curl")
NODES = 3
T = TypeVar("T")


def missing_prerequisites() -> str:
    """Why the suite cannot run here, or "" when it can."""
    if os.geteuid() != 0:
        return "needs root (tools/cluster makes network namespaces and runs dockerd)"
    for name in DAEMONS:
        if not (BIN / f"capstan-{name}").exists() or not importlib.util.find_spec(
            f"{name}.__main__"
        ):
            return f"capstan-{name} is not installed (services/{name}/__main__.py missing)"
    for tool in SYSTEM_TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


def eventually(
    check: Callable[[], T | None], what: str, timeout: float = 60, interval: float = 0.5
) -> T:
    """Poll check until it returns something truthy (an AssertionError counts as "not yet");
    fail with the last reason after timeout."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            value = check()
            if value:
                return value
            last = f"got {value!r}"
        except AssertionError as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last}")
        time.sleep(interval)


def parse_table(text: str) -> list[dict[str, str]]:
    """A capstan table as rows keyed by header, cut at the header's column starts (a cell may
    be empty, so splitting on blanks would shift the columns)."""
    lines = [line for line in text.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    names = lines[0].split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [
        {name: line[a:b].strip() for name, (a, b) in zip(names, bounds, strict=True)}
        for line in lines[1:]
    ]


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Watch:
    """A `capstan get -w` running in the background; its lines are read when it is stopped."""

    proc: subprocess.Popen[str]
    path: Path

    def lines(self) -> list[str]:
        """The rows printed so far, without the table headers."""
        return [
            line
            for line in self.path.read_text().splitlines()
            if not line.startswith(("NAME ", "No resources"))
        ]

    def wait_for(self, pattern: str, timeout: float = 30) -> None:
        eventually(lambda: re.search(pattern, self.path.read_text(), re.M), pattern, timeout)

    def stop(self) -> list[str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.lines()


@dataclass
class Cluster:
    netns: str
    state: Path
    env: dict[str, str]
    scratch: Path
    watches: list[Watch] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.state / "capstan.config"

    def launcher(self, *args: str, timeout: float = 240) -> Result:
        out = subprocess.run(
            [str(LAUNCHER), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        return Result(out.returncode, out.stdout, out.stderr)

    @property
    def python(self) -> Path:
        return BIN / "python"

    def node_ns(self, i: int) -> str:
        return f"{self.netns}-node{i}"

    def in_node(self, i: int, *cmd: str, timeout: float = 30) -> Result:
        """A command in node i's network namespace (the node's own view of the network)."""
        out = subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{self.node_ns(i)}", "--", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(out.returncode, out.stdout, out.stderr)

    def pid(self, daemon: str) -> int:
        return int((self.state / "run" / f"{daemon}.pid").read_text().split()[0])

    def running(self, daemon: str) -> bool:
        """Whether the process in the daemon's pid file ("PID START_TIME") still runs: a
        zombie or a recycled PID does not count."""
        try:
            pid, started = (self.state / "run" / f"{daemon}.pid").read_text().split()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return False
        fields = stat.rpartition(") ")[2].split()
        return fields[0] not in ("Z", "X") and fields[19] == started

    def kill9(self, daemon: str) -> None:
        """kill -9 one daemon the launcher started (its pid file names it) and wait until it
        is gone."""
        pid = self.pid(daemon)
        os.kill(pid, signal.SIGKILL)
        eventually(
            lambda: not self.running(daemon), f"{daemon} (pid {pid}) to die", 10, interval=0.1
        )

    def restart(self, daemon: str) -> None:
        done = self.launcher("restart", daemon, timeout=90)
        assert done.rc == 0, f"tools/cluster restart {daemon}: {done.text}"

    def session(self, namespace: str) -> Capstan:
        return Capstan(self, namespace)


class Capstan:
    """The `capstan` command against the cluster, in one namespace."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.ns = namespace
        self._manifests = 0

    def argv(self, args: tuple[str, ...], namespaced: bool) -> list[str]:
        argv = [str(BIN / "capstan"), "--config", str(self.cluster.config)]
        return argv + (["-n", self.ns] if namespaced else []) + list(args)

    def run(self, *args: str, timeout: float = 60, namespaced: bool = True) -> Result:
        out = subprocess.run(
            self.argv(args, namespaced), capture_output=True, text=True, timeout=timeout
        )
        return Result(out.returncode, out.stdout, out.stderr)

    def __call__(self, *args: str, timeout: float = 60, namespaced: bool = True) -> str:
        """Run capstan, insisting on success; its stdout."""
        res = self.run(*args, timeout=timeout, namespaced=namespaced)
        assert res.rc == 0, f"capstan {' '.join(args)} exited {res.rc}: {res.text}"
        return res.out

    def get(self, kind: str, name: str = "", *flags: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(
            self("get", kind, *([name] if name else []), *flags, "-o", "json")
        )
        return obj

    def items(self, kind: str, *flags: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(kind, "", *flags).get("items", [])
        return items

    def names(self, kind: str, *flags: str, namespaced: bool = True) -> set[str]:
        out = self("get", kind, *flags, "--no-headers", namespaced=namespaced)
        return {
            line.split()[0]
            for line in out.splitlines()
            if line.strip() and not line.startswith("No resources")
        }

    def apply(self, manifest: str) -> str:
        """Apply a YAML manifest (dedented), written to a file like a user's."""
        self._manifests += 1
        path = self.cluster.scratch / f"{self.ns}-{self._manifests}.yaml"
        path.write_text(textwrap.dedent(manifest))
        return self("apply", "-f", str(path))

    def exec(self, pod: str, script: str, timeout: float = 30) -> Result:
        return self.run("exec", pod, "--", "sh", "-c", script, timeout=timeout)

    def exec_until(self, pod: str, script: str, want: str, timeout: float = 30) -> str:
        """Run script in pod until it succeeds and prints want (endpoints, iptables and DNS
        follow the API asynchronously)."""

        def attempt() -> str:
            res = self.exec(pod, script)
            assert res.rc == 0 and want in res.out, f"rc={res.rc} output={res.text!r}"
            return res.out

        return eventually(attempt, f"{script!r} in {pod} to print {want!r}", timeout, 1)

    def watch(self, *args: str) -> Watch:
        """`capstan get ARGS -w` in the background, once it has listed (its header printed)."""
        n = len(self.cluster.watches)
        path = self.cluster.scratch / f"{self.ns}-watch-{n}.out"
        with path.open("w") as sink:
            proc = subprocess.Popen(
                self.argv(("get", *args, "-w"), True),
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        w = Watch(proc, path)
        self.cluster.watches.append(w)
        w.wait_for(r"^NAME\s")
        return w

    def pod_ready(self, name: str) -> dict[str, Any]:
        pod = self.get("pod", name)
        status = pod.get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        assert status.get("phase") == "Running" and conditions.get("Ready") == "True", (
            f"pod {name}: {status.get('phase')} {conditions}"
        )
        return pod

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        return eventually(lambda: self.pod_ready(name), f"pod {name} Running and Ready", timeout)

    def wait_rollout(self, target: str, timeout: float = 90) -> str:
        return self("rollout", "status", target, "--timeout", str(timeout), timeout=timeout + 10)

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        for c in self.get(kind, name).get("status", {}).get("conditions", []):
            if c["type"] == type_ and c["status"] == "True":
                found: dict[str, Any] = c
                return found
        return None

"""A throw-away node for proxy e2e tests: network namespaces this test run creates and
removes by name, with no route out of them.

    node netns   lo, bridge cbr0 10.200.0.1/24 (the node address), ip_forward on,
                 the proxy, its sink and its iptables; DNS on 10.200.0.1:53
    pod netns    one per backend or client, eth0 10.200.0.<n>/24 on cbr0 through a
                 veth, default route via the node

Everything that sends a packet runs inside these namespaces through
`nsenter --net=/var/run/netns/NAME`; the test process itself only talks to the apiserver
over a unix socket (which works across namespaces).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_IP = "10.200.0.1"
POD_CIDR = "10.200.0.0/24"
ROOT = Path(__file__).resolve().parents[3]


def netns_path(name: str) -> str:
    return f"/var/run/netns/{name}"


def run(*argv: str, netns: str | None = None, check: bool = True, input: str | None = None) -> str:
    prefix = ["nsenter", f"--net={netns_path(netns)}", "--"] if netns else []
    proc = subprocess.run([*prefix, *argv], input=input, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Proc:
    process: asyncio.subprocess.Process
    log: Path

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0


@dataclass
class NetLab:
    workdir: Path
    backend: str = "nft"  # iptables backend: nft or legacy
    prefix: str = field(default_factory=lambda: f"capstan-proxy-test-{secrets.token_hex(3)}")
    namespaces: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)  # pod name -> IP

    @property
    def node(self) -> str:
        return self.prefix

    def create(self) -> None:
        self._add_netns(self.node)
        run("ip", "link", "add", "cbr0", "type", "bridge", netns=self.node)
        run("ip", "addr", "add", f"{NODE_IP}/24", "dev", "cbr0", netns=self.node)
        run("ip", "link", "set", "cbr0", "up", netns=self.node)
        run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=self.node)

    def add_pod(self, name: str, index: int) -> str:
        ns = f"{self.prefix}-{name}"
        ip = f"10.200.0.{index}"
        self._add_netns(ns)
        host_if = f"veth{index}"
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns,
            netns=self.node)  # fmt: skip
        run("ip", "link", "set", host_if, "master", "cbr0", "up", netns=self.node)
        run("ip", "addr", "add", f"{ip}/24", "dev", "eth0", netns=ns)
        run("ip", "link", "set", "eth0", "up", netns=ns)
        run("ip", "route", "add", "default", "via", NODE_IP, netns=ns)
        self.pods[name] = ip
        return ns

    def _add_netns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "link", "set", "lo", "up", netns=name)

    def iptables(self, *args: str) -> str:
        return run(f"iptables-{self.backend}", *args, netns=self.node)

    def pod_netns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def spawn(self, netns: str, *argv: str, name: str) -> Proc:
        log = self.workdir / f"{name}.log"
        process = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={netns_path(netns)}", "--", *argv,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=str(ROOT),
        )  # fmt: skip
        proc = Proc(process, log)
        self.procs.append(proc)
        return proc

    async def serve(self, pod: str, port: int) -> Proc:
        """A TCP backend in a pod that answers its name and the peer address it saw."""
        proc = await self.spawn(
            self.pod_netns(pod), sys.executable, "-m", "tests.e2e.proxy.probe", "serve",
            "--port", str(port), "--name", pod, name=f"backend-{pod}-{port}",
        )  # fmt: skip
        for _ in range(100):
            if b"listening" in proc.log.read_bytes():
                return proc
            await asyncio.sleep(0.05)
        raise RuntimeError(f"backend {pod} did not start: {proc.log.read_text()}")

    async def probe(self, netns: str, *args: str) -> Any:
        """Run the probe in a namespace and return its JSON result."""
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={netns_path(netns)}", "--",
            sys.executable, "-m", "tests.e2e.proxy.probe", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT),
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        if proc.returncode != 0:
            raise RuntimeError(f"probe {args} failed: {err.decode()}")
        return json.loads(out)

    def iptables_save(self) -> str:
        """Both tables without comments and counters: comparable between runs."""
        text = run(f"iptables-{self.backend}-save", netns=self.node)
        return "\n".join(
            line if not line.startswith(":") else line.split(" [")[0]
            for line in text.splitlines()
            if not line.startswith("#")
        )

    async def close(self) -> None:
        for proc in reversed(self.procs):
            await proc.stop()
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()

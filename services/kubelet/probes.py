"""Liveness, readiness and startup probes: one task per probe of a running container instance,
counting consecutive results against the probe's thresholds as Kubernetes' prober does. The
kubelet runs inside the node's network namespace, so pod IPs are reachable from here."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from capstan.api.core.v1 import core_pb2
from capstan.machinery.intstr import int_or_str

from kubelet.runtime import ContainerRuntime, exec_collect

LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"


def _opt(probe: core_pb2.Probe, name: str, default: int) -> int:
    return int(getattr(probe, name)) if probe.HasField(name) else default  # type: ignore[arg-type]


def resolve_port(port: object, container: core_pb2.Container) -> int:
    if isinstance(port, int):
        return port
    for p in container.ports:
        if p.name == port:
            return int(p.container_port)
    raise ValueError(f"port {port!r} is not a container port name")


async def http_get(
    host: str, port: int, path: str, scheme: str, headers: list[tuple[str, str]], timeout: float
) -> tuple[bool, str]:
    ctx = None
    if scheme.upper() == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # Kubernetes' HTTPS probes skip verification too
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        try:
            lines = [f"GET {path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
            lines += [f"{k}: {v}" for k, v in headers]
            lines += ["User-Agent: capstan-probe/1.0", "Connection: close", "", ""]
            writer.write("\r\n".join(lines).encode())
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = status_line.decode(errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"malformed HTTP response {status_line[:80]!r}"
    code = int(parts[1])
    return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}"


async def tcp_connect(host: str, port: int, timeout: float) -> tuple[bool, str]:
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True, ""


@dataclass
class ProbeTarget:
    runtime: ContainerRuntime
    container: core_pb2.Container
    container_id: str
    pod_ip: str


async def run_probe(probe: core_pb2.Probe, target: ProbeTarget) -> tuple[bool, str]:
    """One attempt: (success, failure message)."""
    timeout = float(_opt(probe, "timeout_seconds", 1))
    action = probe.WhichOneof("handler")
    try:
        if action == "exec":
            async with asyncio.timeout(timeout):
                code, out = await exec_collect(
                    target.runtime, target.container_id, list(probe.exec.command)
                )
            return code == 0, f"command exited with {code}: {out.decode(errors='replace')[:200]}"
        if not target.runtime.network_reachable:
            # A hollow node: nothing to connect to, and nothing may leave the process.
            return True, ""
        if action == "http_get":
            h = probe.http_get
            port = resolve_port(int_or_str(h.port), target.container)
            headers = [(x.name, x.value) for x in h.http_headers]
            return await http_get(
                h.host or target.pod_ip, port, h.path, h.scheme or "HTTP", headers, timeout
            )
        if action == "tcp_socket":
            t = probe.tcp_socket
            port = resolve_port(int_or_str(t.port), target.container)
            return await tcp_connect(t.host or target.pod_ip, port, timeout)
        return False, f"unsupported probe handler {action}"
    except TimeoutError:
        return False, f"probe timed out after {timeout:g}s"
    except (OSError, ValueError) as e:
        return False, str(e) or type(e).__name__


@dataclass
class ProbeWorker:
    """Runs one probe until cancelled. result: None until the thresholds are first met."""

    kind: str
    probe: core_pb2.Probe
    attempt: Callable[[], Awaitable[tuple[bool, str]]]
    on_change: Callable[[ProbeWorker], None]
    on_failure: Callable[[ProbeWorker, str], None]
    # Liveness/readiness wait for the startup probe, when there is one.
    gate: Callable[[], bool] = lambda: True
    result: bool | None = None
    successes: int = 0
    failures: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"probe-{self.kind}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _loop(self) -> None:
        period = max(1, _opt(self.probe, "period_seconds", 10))
        success_threshold = max(1, _opt(self.probe, "success_threshold", 1))
        failure_threshold = max(1, _opt(self.probe, "failure_threshold", 3))
        await asyncio.sleep(_opt(self.probe, "initial_delay_seconds", 0))
        while True:
            if self.gate():
                ok, message = await self.attempt()
                if ok:
                    self.successes, self.failures = self.successes + 1, 0
                    if self.result is not True and self.successes >= success_threshold:
                        self.result = True
                        self.on_change(self)
                else:
                    self.failures, self.successes = self.failures + 1, 0
                    self.on_failure(self, message)
                    if self.result is not False and self.failures >= failure_threshold:
                        self.result = False
                        self.on_change(self)
            await asyncio.sleep(period)


class ContainerProbes:
    """The probes of one container instance and what they currently say."""

    def __init__(
        self,
        container: core_pb2.Container,
        attempt: Callable[[core_pb2.Probe], Awaitable[tuple[bool, str]]],
        on_change: Callable[[], None],
        on_unhealthy: Callable[[str, str], None],
    ) -> None:
        self.workers: dict[str, ProbeWorker] = {}
        # Set by a failed liveness/startup probe: the pod worker restarts the container.
        self.kill_reason = ""

        def changed(worker: ProbeWorker) -> None:
            if worker.kind in (LIVENESS, STARTUP) and worker.result is False:
                self.kill_reason = worker.kind
            on_change()

        def failed(worker: ProbeWorker, message: str) -> None:
            on_unhealthy(worker.kind, message)

        specs = (
            (STARTUP, container.startup_probe, "startup_probe"),
            (LIVENESS, container.liveness_probe, "liveness_probe"),
            (READINESS, container.readiness_probe, "readiness_probe"),
        )
        for kind, probe, name in specs:
            if not container.HasField(name):  # type: ignore[arg-type]
                continue

            def one(p: core_pb2.Probe = probe) -> Awaitable[tuple[bool, str]]:
                return attempt(p)

            gate = (lambda: True) if kind == STARTUP else self.started
            self.workers[kind] = ProbeWorker(kind, probe, one, changed, failed, gate)

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    async def stop(self) -> None:
        for worker in self.workers.values():
            await worker.stop()

    def started(self) -> bool:
        startup = self.workers.get(STARTUP)
        return startup is None or startup.result is True

    def ready(self) -> bool:
        readiness = self.workers.get(READINESS)
        return self.started() and (readiness is None or readiness.result is True)

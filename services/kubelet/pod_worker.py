"""One worker per pod: drives the pod's containers towards its spec and reports what it sees.

Every sync starts from the runtime's own view (containers found by the pod's uid label), so a
kubelet restarted in the middle of anything picks up where the containers are. A sync never
waits on a container: it starts or stops what is due, computes the status, and the worker
sleeps until the next event (pod change, container state change seen by the relist, probe
result, back-off expiry, sync period)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import ApiError, ConflictError, NotFoundError
from capstan.client import NORMAL, WARNING, Client, EventRecorder
from google.protobuf.timestamp_pb2 import Timestamp

from kubelet import containers as cspec
from kubelet.backoff import CrashLoopBackoff
from kubelet.docker_runtime import registry_auth
from kubelet.envvars import EnvError, EnvSources, container_env, expand_command
from kubelet.podfiles import hosts_file, pod_hostname, resolv_conf
from kubelet.podstatus import FAILED, SUCCEEDED, ContainerView, PodFacts, compute_status
from kubelet.probes import ContainerProbes, ProbeTarget, run_probe
from kubelet.runtime import (
    LABEL_NODE,
    LABEL_POD_UID,
    SANDBOX_NAME,
    ContainerConfig,
    ContainerInfo,
    ContainerRuntime,
    RuntimeError_,
)
from kubelet.volumes import VolumeError, VolumeManager, container_binds

log = structlog.get_logger(__name__)

DEFAULT_GRACE = 30


@dataclass
class KubeletContext:
    """What every pod worker of one kubelet shares."""

    node_name: str
    node_ip: str
    runtime: ContainerRuntime
    client: Client
    recorder: EventRecorder
    volumes: VolumeManager
    env_sources: EnvSources
    backoff: CrashLoopBackoff
    root_dir: Path
    pause_image: str = "capstan/pause:latest"
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    runtime_scheme: str = "docker"
    materialize: bool = True


def _now() -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


def _grace(pod: core_pb2.Pod) -> int:
    if pod.metadata.HasField("deletion_grace_period_seconds"):
        return int(pod.metadata.deletion_grace_period_seconds)
    if pod.spec.HasField("termination_grace_period_seconds"):
        return int(pod.spec.termination_grace_period_seconds)
    return DEFAULT_GRACE


class PodWorker:
    def __init__(self, ctx: KubeletContext, pod: core_pb2.Pod) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = pod.metadata.uid
        # None: the pod is gone from the apiserver (deleted while we were away, or force-deleted).
        self.gone = False
        self.done = False
        self._wake = asyncio.Event()
        self._wake.set()
        self._next_wake: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._probes: dict[str, ContainerProbes] = {}
        self._waiting: dict[str, tuple[str, str]] = {}
        self._last_status: core_pb2.PodStatus | None = None
        self._start_time: Timestamp | None = (
            pod.status.start_time if pod.status.HasField("start_time") else None
        )
        self._files_written_for = ""
        self._log = log.bind(pod=f"{pod.metadata.namespace}/{pod.metadata.name}", uid=self.uid)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.pod.metadata.name}")

    async def stop(self) -> None:
        """Stop working on the pod without touching its containers (kubelet shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for probes in self._probes.values():
            await probes.stop()
        self._probes.clear()

    async def wait_done(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def update(self, pod: core_pb2.Pod) -> None:
        self.pod = pod
        self.wake()

    def mark_gone(self) -> None:
        self.gone = True
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wake_at(self, delay: float) -> None:
        at = time.monotonic() + delay
        if self._next_wake is None or at < self._next_wake:
            self._next_wake = at

    async def _run(self) -> None:
        failures = 0
        while not self.done:
            timeout = None
            if self._next_wake is not None:
                timeout = max(0.0, self._next_wake - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            self._next_wake = None
            try:
                await self.sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a sync failure must not end the pod's worker
                failures += 1
                self._log.warning("pod sync failed", error=str(e), exc_info=failures < 3)
                self.wake_at(min(30.0, 0.5 * 2**failures))
        for probes in self._probes.values():
            await probes.stop()
        self._probes.clear()

    # ------------------------------------------------------------------ the sync
    async def _instances(self) -> dict[str, list[ContainerInfo]]:
        found = await self.ctx.runtime.list(
            {LABEL_POD_UID: self.uid, LABEL_NODE: self.ctx.node_name}
        )
        by_name: dict[str, list[ContainerInfo]] = defaultdict(list)
        for info in found:
            by_name[info.container_name].append(info)
        for infos in by_name.values():
            infos.sort(key=lambda c: (c.restart_count, c.created_at), reverse=True)
        return by_name

    async def sync(self) -> None:
        pod = self.pod
        instances = await self._instances()
        if self.gone or pod.metadata.HasField("deletion_timestamp"):
            await self._terminate(pod, instances)
            return
        if pod.status.phase in (SUCCEEDED, FAILED):
            await self._stop_all(instances, 0, reason="")
            return
        if self._start_time is None:
            self._start_time = _now()

        old_sandbox = instances.get(SANDBOX_NAME, [None])[0]
        if old_sandbox is not None and old_sandbox.running:
            sandbox = old_sandbox
        else:
            new_sandbox = await self._new_sandbox(pod, instances, old_sandbox)
            if new_sandbox is None:
                await self._report(pod, instances, None)
                return
            sandbox = new_sandbox
            instances = await self._instances()
        try:
            paths = await self.ctx.volumes.setup(pod)
        except (VolumeError, ApiError, OSError) as e:
            self.ctx.recorder.record(pod, WARNING, "FailedMount", str(e))
            self.wake_at(2.0)
            await self._report(pod, instances, sandbox, message=str(e))
            return
        self._write_pod_files(pod, sandbox.ip)

        policy = pod.spec.restart_policy or "Always"
        init_done = True
        for c in pod.spec.init_containers:
            history = instances.get(c.name, [])
            cur = history[0] if history else None
            if cur is not None and cur.exited and cur.exit_code == 0:
                continue
            init_done = False
            if cur is not None and cur.running:
                break
            if cur is not None and cur.exited and policy == "Never":
                break
            await self._maybe_start(pod, c, cur, sandbox, paths, init=True)
            break
        if init_done:
            for c in pod.spec.containers:
                history = instances.get(c.name, [])
                cur = history[0] if history else None
                if cur is not None and cur.running:
                    probes = self._probes.get(cur.id)
                    if probes is not None and probes.kill_reason:
                        await self._kill_unhealthy(pod, c, cur, probes)
                    continue
                if cur is not None and cur.exited:
                    restart = policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0)
                    if not restart:
                        continue
                await self._maybe_start(pod, c, cur, sandbox, paths, init=False)
        instances = await self._instances()
        await self._gc(instances)
        status = await self._report(pod, instances, sandbox)
        if status is not None and status.phase in (SUCCEEDED, FAILED):
            await self._stop_all(instances, 0, reason="")

    # ------------------------------------------------------------------ sandbox
    async def _new_sandbox(
        self,
        pod: core_pb2.Pod,
        instances: dict[str, list[ContainerInfo]],
        old: ContainerInfo | None,
    ) -> ContainerInfo | None:
        rt = self.ctx.runtime
        if old is not None:
            # The network namespace is gone: every container of the pod goes with it.
            self._log.info("pod sandbox changed; killing its containers")
            await self._stop_all(instances, 0, reason="SandboxChanged")
        attempt = old.restart_count + 1 if old is not None else 0
        for info in instances.get(SANDBOX_NAME, []):
            await rt.remove(info.id)
        try:
            if not await rt.image_present(self.ctx.pause_image):
                await rt.pull(self.ctx.pause_image)
            labels = cspec.container_labels(pod, self.ctx.node_name, SANDBOX_NAME, attempt, False)
            cid = await rt.create(
                ContainerConfig(
                    name=cspec.runtime_name(pod, SANDBOX_NAME, attempt),
                    image=self.ctx.pause_image,
                    labels=labels,
                    hostname=pod_hostname(pod),
                )
            )
            await rt.start(cid)
            started = await rt.inspect(cid)
            if started is None:
                raise RuntimeError_("the sandbox container vanished after its start")
        except RuntimeError_ as e:
            self.ctx.recorder.record(
                pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}"
            )
            self.wake_at(5.0)
            return None
        return started

    def _write_pod_files(self, pod: core_pb2.Pod, ip: str) -> None:
        if not self.ctx.materialize or self._files_written_for == ip:
            return
        pod_dir = self.ctx.volumes.pod_dir(self.uid)
        pod_dir.mkdir(parents=True, exist_ok=True)
        (pod_dir / "etc-hosts").write_text(hosts_file(pod, ip, self.ctx.cluster_domain))
        (pod_dir / "resolv.conf").write_text(
            resolv_conf(pod, self.ctx.cluster_dns, self.ctx.cluster_domain)
        )
        self._files_written_for = ip

    # ------------------------------------------------------------------ containers
    async def _maybe_start(
        self,
        pod: core_pb2.Pod,
        c: core_pb2.Container,
        cur: ContainerInfo | None,
        sandbox: ContainerInfo,
        paths: dict[str, str],
        *,
        init: bool,
    ) -> None:
        key = f"{self.uid}/{c.name}"
        restart_count = 0
        if cur is not None:
            if cur.exited:
                remaining = self.ctx.backoff.remaining(key, cur.finished_at)
                if remaining > 0:
                    delay = self.ctx.backoff.delay(key)
                    msg = (
                        f"back-off {delay:g}s restarting failed container={c.name} "
                        f"pod={pod.metadata.name}_{pod.metadata.namespace}({self.uid})"
                    )
                    if self._waiting.get(c.name, ("",))[0] != "CrashLoopBackOff":
                        self.ctx.recorder.record(pod, WARNING, "BackOff", msg)
                    self._waiting[c.name] = ("CrashLoopBackOff", msg)
                    self.wake_at(remaining)
                    return
                restart_count = cur.restart_count + 1
                self.ctx.backoff.restarted(key)
            else:
                # Created but never started (the kubelet stopped in between): start over.
                await self.ctx.runtime.remove(cur.id)
                restart_count = cur.restart_count
        await self._start_container(pod, c, restart_count, sandbox, paths, init=init)

    async def _ensure_image(self, pod: core_pb2.Pod, c: core_pb2.Container) -> bool:
        rt = self.ctx.runtime
        image = cspec.normalize_image(c.image)
        policy = cspec.pull_policy(c)
        present = await rt.image_present(image)
        if policy == "Never" and not present:
            msg = f'Container image "{c.image}" is not present with pull policy of Never'
            self._waiting[c.name] = ("ErrImageNeverPull", msg)
            self.ctx.recorder.record(pod, WARNING, "ErrImageNeverPull", msg)
            return False
        if policy == "Always" or not present:
            # A failed pull backs off like a crashing container (per pod and image, as
            # Kubernetes keys it): without it every wake-up (resync, relist, a Secret change)
            # would hit the registry again.
            backoff_key = f"{self.uid}/pull:{image}"
            remaining = self.ctx.backoff.remaining_since_update(backoff_key)
            if remaining > 0:
                msg = f'Back-off pulling image "{c.image}"'
                if self._waiting.get(c.name, ("",))[0] != "ImagePullBackOff":
                    self.ctx.recorder.record(pod, NORMAL, "BackOff", msg)
                self._waiting[c.name] = ("ImagePullBackOff", msg)
                self.wake_at(remaining)
                return False
            self.ctx.recorder.record(pod, NORMAL, "Pulling", f'Pulling image "{c.image}"')
            started = time.monotonic()
            try:
                await rt.pull(image, await self._pull_auth(pod, image))
            except RuntimeError_ as e:
                msg = f'Failed to pull image "{c.image}": {e}'
                self.ctx.recorder.record(pod, WARNING, "Failed", msg)
                self._waiting[c.name] = ("ErrImagePull", msg)
                self.ctx.backoff.restarted(backoff_key)
                self.wake_at(self.ctx.backoff.delay(backoff_key))
                return False
            self.ctx.recorder.record(
                pod,
                NORMAL,
                "Pulled",
                f'Successfully pulled image "{c.image}" in {time.monotonic() - started:.3f}s',
            )
        else:
            # Kubernetes reports the image step on every start, pulled or not: `describe` shows
            # Pulled, Created, Started in order.
            msg = f'Container image "{c.image}" already present on machine'
            self.ctx.recorder.record(pod, NORMAL, "Pulled", msg)
        return True

    async def _pull_auth(self, pod: core_pb2.Pod, image: str) -> dict[str, str] | None:
        for ref in pod.spec.image_pull_secrets:
            secret = await self._pull_secret(pod.metadata.namespace, ref.name)
            if secret is None or secret.type != "kubernetes.io/dockerconfigjson":
                continue
            auth = registry_auth(secret.data.get(".dockerconfigjson", b""), image)
            if auth is not None:
                return auth
        return None

    async def _pull_secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        """The informer's copy, else the apiserver's: a Secret created just before its pod may
        not have reached the cache yet, and pulling without it would fail the pod into
        ImagePullBackOff."""
        secret = self.ctx.env_sources.secret(namespace, name)
        if secret is not None:
            return secret
        try:
            return await self.ctx.client.secrets.get(name, namespace)
        except ApiError as e:
            self._log.warning("image pull secret unavailable", secret=name, error=str(e))
            return None

    async def _start_container(
        self,
        pod: core_pb2.Pod,
        c: core_pb2.Container,
        restart_count: int,
        sandbox: ContainerInfo,
        paths: dict[str, str],
        *,
        init: bool,
    ) -> None:
        rt = self.ctx.runtime
        if not await self._ensure_image(pod, c):
            return
        view = core_pb2.Pod()
        view.CopyFrom(pod)
        view.status.pod_ip, view.status.host_ip = sandbox.ip, self.ctx.node_ip
        try:
            env = container_env(view, c, self.ctx.env_sources)
            binds = container_binds(pod, c, paths)
        except (EnvError, VolumeError) as e:
            self._waiting[c.name] = ("CreateContainerConfigError", str(e))
            self.ctx.recorder.record(pod, WARNING, "Failed", f"Error: {e}")
            self.wake_at(5.0)
            return
        if self.ctx.materialize:
            pod_dir = self.ctx.volumes.pod_dir(self.uid)
            mounted = {b.split(":")[1] for b in binds}
            if "/etc/hosts" not in mounted:
                binds.append(f"{pod_dir / 'etc-hosts'}:/etc/hosts")
            if "/etc/resolv.conf" not in mounted:
                binds.append(f"{pod_dir / 'resolv.conf'}:/etc/resolv.conf")
        command, args = expand_command(c, env)
        if command is not None and args is None:
            args = []  # a command without args drops the image's CMD, as in Kubernetes
        memory, quota, period, shares = cspec.resource_limits(c)
        config = ContainerConfig(
            name=cspec.runtime_name(pod, c.name, restart_count),
            image=cspec.normalize_image(c.image),
            labels=cspec.container_labels(pod, self.ctx.node_name, c.name, restart_count, init),
            entrypoint=command,
            cmd=args,
            env=[f"{k}={v}" for k, v in env.items()],
            working_dir=c.working_dir,
            network_mode=f"container:{sandbox.id}",
            binds=binds,
            memory_limit=memory,
            cpu_quota=quota,
            cpu_period=period,
            cpu_shares=shares,
            tty=c.tty,
            open_stdin=c.stdin,
        )
        try:
            cid = await rt.create(config)
        except RuntimeError_ as e:
            self._waiting[c.name] = ("CreateContainerError", str(e))
            self.ctx.recorder.record(pod, WARNING, "Failed", f"Error: {e}")
            self.wake_at(5.0)
            return
        self.ctx.recorder.record(pod, NORMAL, "Created", f"Created container {c.name}")
        try:
            await rt.start(cid)
        except RuntimeError_ as e:
            self._waiting.pop(c.name, None)
            self.ctx.recorder.record(pod, WARNING, "Failed", f"Error: {e}")
            return
        self._waiting.pop(c.name, None)
        self.ctx.recorder.record(pod, NORMAL, "Started", f"Started container {c.name}")
        if not init:
            self._start_probes(pod, c, cid, sandbox.ip)

    def _start_probes(self, pod: core_pb2.Pod, c: core_pb2.Container, cid: str, ip: str) -> None:
        if not (c.HasField("liveness_probe") or c.HasField("readiness_probe")) and not (
            c.HasField("startup_probe")
        ):
            return
        target = ProbeTarget(self.ctx.runtime, c, cid, ip)

        async def attempt(probe: core_pb2.Probe) -> tuple[bool, str]:
            return await run_probe(probe, target)

        def unhealthy(kind: str, message: str) -> None:
            self.ctx.recorder.record(
                self.pod, WARNING, "Unhealthy", f"{kind} probe failed: {message}"
            )

        probes = ContainerProbes(c, attempt, self.wake, unhealthy)
        self._probes[cid] = probes
        probes.start()

    def _ensure_probes(self, pod: core_pb2.Pod, instances: dict[str, list[ContainerInfo]]) -> None:
        """Adopted containers (kubelet restart) get their probes back."""
        sandbox = instances.get(SANDBOX_NAME, [None])[0]
        if sandbox is None:
            return
        for c in pod.spec.containers:
            history = instances.get(c.name, [])
            if history and history[0].running and history[0].id not in self._probes:
                self._start_probes(pod, c, history[0].id, sandbox.ip)

    async def _kill_unhealthy(
        self, pod: core_pb2.Pod, c: core_pb2.Container, cur: ContainerInfo, probes: ContainerProbes
    ) -> None:
        what = "liveness" if probes.kill_reason == "Liveness" else "startup"
        self.ctx.recorder.record(
            pod,
            NORMAL,
            "Killing",
            f"Container {c.name} failed {what} probe, will be restarted",
        )
        probe = c.liveness_probe if what == "liveness" else c.startup_probe
        grace = (
            int(probe.termination_grace_period_seconds)
            if probe.HasField("termination_grace_period_seconds")
            else _grace(pod)
        )
        await self._drop_probes(cur.id)
        await self.ctx.runtime.stop(cur.id, grace)

    async def _drop_probes(self, cid: str) -> None:
        probes = self._probes.pop(cid, None)
        if probes is not None:
            await probes.stop()

    async def _stop_all(
        self, instances: dict[str, list[ContainerInfo]], grace: int, *, reason: str
    ) -> None:
        """Stop every running container of the pod (app containers with the grace period,
        then the sandbox at once)."""
        running = [
            info
            for name, infos in instances.items()
            if name != SANDBOX_NAME
            for info in infos[:1]
            if info.running
        ]

        async def stop(info: ContainerInfo) -> None:
            await self._drop_probes(info.id)
            if reason:
                self.ctx.recorder.record(
                    self.pod, NORMAL, "Killing", f"Stopping container {info.container_name}"
                )
            await self.ctx.runtime.stop(info.id, grace)

        await asyncio.gather(*(stop(i) for i in running))
        for sandbox in instances.get(SANDBOX_NAME, []):
            if sandbox.running:
                await self.ctx.runtime.stop(sandbox.id, 0)

    async def _gc(self, instances: dict[str, list[ContainerInfo]]) -> None:
        """Keep the newest two instances of each container (current and previous, for
        `logs --previous`) and the newest sandbox; remove older ones."""
        for name, infos in instances.items():
            keep = 1 if name == SANDBOX_NAME else 2
            for info in infos[keep:]:
                if not info.running:
                    await self.ctx.runtime.remove(info.id)

    # ------------------------------------------------------------------ termination
    async def _terminate(
        self, pod: core_pb2.Pod, instances: dict[str, list[ContainerInfo]]
    ) -> None:
        if not self.gone:
            # Out of the endpoints at once, before the containers get their grace period.
            await self._report(pod, instances, instances.get(SANDBOX_NAME, [None])[0], True)
        grace = _grace(pod) if not self.gone else 0
        await self._stop_all(instances, grace, reason="Killing")
        for infos in instances.values():
            for info in infos:
                await self.ctx.runtime.remove(info.id)
        await self.ctx.volumes.teardown(self.uid)
        self.ctx.backoff.forget(f"{self.uid}/")
        if not self.gone:
            try:
                await self.ctx.client.pods.delete(
                    pod.metadata.name,
                    pod.metadata.namespace,
                    grace_period_seconds=0,
                    preconditions_uid=self.uid,
                )
            except NotFoundError:
                pass
            except ConflictError:
                pass  # a new pod of the same name: not ours to delete
        self.done = True
        self._log.info("pod terminated")

    # ------------------------------------------------------------------ status
    def _views(
        self,
        specs: Any,
        instances: dict[str, list[ContainerInfo]],
        *,
        init: bool,
        sandbox_running: bool,
    ) -> list[ContainerView]:
        views: list[ContainerView] = []
        for c in specs:
            history = instances.get(c.name, [])
            cur = history[0] if history else None
            prev = history[1] if len(history) > 1 else None
            reason, message = self._waiting.get(c.name, ("", ""))
            if cur is not None and cur.running and reason == "CrashLoopBackOff":
                reason, message = "", ""
            view = ContainerView(c.name, c.image, cur, prev, reason, message)
            if cur is not None and cur.running and not init:
                probes = self._probes.get(cur.id)
                view.started = probes.started() if probes is not None else True
                view.ready = sandbox_running and (probes.ready() if probes is not None else True)
            views.append(view)
        if init:
            # Containers after the one running now are waiting for it.
            blocked = False
            for view in views:
                if blocked and view.current is None and not view.waiting_reason:
                    view.waiting_reason = "PodInitializing"
                blocked = blocked or not view.succeeded
        return views

    async def _report(
        self,
        pod: core_pb2.Pod,
        instances: dict[str, list[ContainerInfo]],
        sandbox: ContainerInfo | None,
        terminating: bool = False,
        *,
        reason: str = "",
        message: str = "",
    ) -> core_pb2.PodStatus | None:
        self._ensure_probes(pod, instances)
        sandbox_running = sandbox is not None and sandbox.running
        init = self._views(pod.spec.init_containers, instances, init=True, sandbox_running=False)
        apps = self._views(
            pod.spec.containers, instances, init=False, sandbox_running=sandbox_running
        )
        if not all(v.succeeded for v in init):
            for view in apps:
                if view.current is None and not view.waiting_reason:
                    view.waiting_reason = "PodInitializing"
        facts = PodFacts(
            init=init,
            apps=apps,
            pod_ip=sandbox.ip if sandbox is not None and sandbox_running else pod.status.pod_ip,
            host_ip=self.ctx.node_ip,
            start_time=self._start_time,
            terminating=terminating,
            scheme=self.ctx.runtime_scheme,
            reason=reason,
            message=message,
        )
        status = compute_status(pod, facts, _now())
        if status == pod.status or status == self._last_status:
            return status
        update = core_pb2.Pod()
        update.metadata.CopyFrom(pod.metadata)
        update.metadata.resource_version = ""
        update.spec.CopyFrom(pod.spec)
        update.status.CopyFrom(status)
        try:
            await self.ctx.client.pods.update_status(update)
        except NotFoundError:
            self.gone = True
            self.wake()
            return status
        self._last_status = status
        return status

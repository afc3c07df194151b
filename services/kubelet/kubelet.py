"""The kubelet: one node's agent. Watches the pods bound to its node, gives each a PodWorker,
relists the runtime every second to notice container state changes (Kubernetes' PLEG), removes
containers of pods that no longer exist, and keeps the Node and its Lease current."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.apierrors import NotFoundError
from capstan.client import Client, EventRecorder, Informer, SharedInformerFactory
from capstan.machinery.fields import escape_value

from kubelet.backoff import CrashLoopBackoff
from kubelet.envvars import EnvSources
from kubelet.node import HostReadings, NodeAgent, NodeConfig
from kubelet.pod_worker import KubeletContext, PodWorker
from kubelet.runtime import LABEL_MANAGED, LABEL_NODE, ContainerInfo, ContainerRuntime
from kubelet.volumes import VolumeError, VolumeManager, VolumeSources

log = structlog.get_logger(__name__)


@dataclass
class KubeletConfig:
    node: NodeConfig
    root_dir: Path
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    pause_image: str = "capstan/pause:latest"
    sync_frequency: float = 60.0
    relist_period: float = 1.0
    # A hollow kubelet writes no files (volumes, /etc/hosts) on the host.
    materialize: bool = True
    backoff_initial: float = 10.0
    backoff_max: float = 300.0


class Kubelet:
    def __init__(
        self,
        client: Client,
        runtime: ContainerRuntime,
        config: KubeletConfig,
        informers: SharedInformerFactory,
        host: Callable[[], HostReadings],
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.node_name = config.node.name
        self.informers = informers
        self.recorder = EventRecorder(client.events, "kubelet", self.node_name)
        self.agent = NodeAgent(client, config.node, runtime.version, host)
        self.pods: Informer[core_pb2.Pod] = informers.for_resource(
            client.pods,
            namespace="",
            field_selector=f"spec.nodeName={escape_value(self.node_name)}",
        )
        self.configmaps: Informer[core_pb2.ConfigMap] = informers.for_resource(
            client.configmaps, namespace=""
        )
        self.secrets: Informer[core_pb2.Secret] = informers.for_resource(
            client.secrets, namespace=""
        )
        self.services: Informer[core_pb2.Service] = informers.for_resource(
            client.services, namespace=""
        )
        env_sources = EnvSources(
            config_map=lambda ns, n: self.configmaps.get(n, ns),
            secret=lambda ns, n: self.secrets.get(n, ns),
            services=lambda ns: self.services.list(ns),
        )
        volumes = VolumeManager(
            config.root_dir,
            VolumeSources(env_sources.config_map, env_sources.secret, self._claim_path),
            materialize=config.materialize,
        )
        scheme = "docker" if runtime.network_reachable else "hollow"
        self.ctx = KubeletContext(
            node_name=self.node_name,
            node_ip=config.node.ip,
            runtime=runtime,
            client=client,
            recorder=self.recorder,
            volumes=volumes,
            env_sources=env_sources,
            backoff=CrashLoopBackoff(config.backoff_initial, config.backoff_max),
            root_dir=config.root_dir,
            pause_image=config.pause_image,
            cluster_dns=list(config.cluster_dns),
            cluster_domain=config.cluster_domain,
            runtime_scheme=scheme,
            materialize=config.materialize,
        )
        self.workers: dict[str, PodWorker] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._seen: dict[str, tuple[tuple[str, str], ...]] = {}
        self._handlers_added = False

    # ------------------------------------------------------------------ sources
    async def _claim_path(self, namespace: str, claim: str) -> str:
        try:
            pvc = await self.client.persistentvolumeclaims.get(claim, namespace)
        except NotFoundError:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found') from None
        if pvc.status.phase != "Bound" or not pvc.spec.volume_name:
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = await self.client.persistentvolumes.get(pvc.spec.volume_name)
        if pv.spec.HasField("host_path"):
            return str(pv.spec.host_path.path)
        if pv.spec.HasField("local"):
            return str(pv.spec.local.path)
        raise VolumeError(f'persistentvolume "{pv.metadata.name}" is not hostPath-backed')

    def find_pod(self, namespace: str, name: str) -> core_pb2.Pod | None:
        return self.pods.get(name, namespace)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.recorder.start()
        await self.agent.register()
        self._stop.clear()
        if not self._handlers_added:
            # With replay: in a hollow process the shared informer may already be running.
            await self.pods.add_event_handler_replay(
                self._on_pod, lambda _, new: self._on_pod(new), self._gone
            )
            for source in (self.configmaps, self.secrets):
                source.add_event_handler(
                    self._on_source, lambda _, new: self._on_source(new), self._on_source
                )
            self._handlers_added = True
        self.informers.start()
        await self.informers.wait_for_sync()
        self._tasks = [
            asyncio.create_task(self.agent.run(self._stop), name="node-heartbeat"),
            asyncio.create_task(self._relist_loop(), name="relist"),
            asyncio.create_task(self._resync_loop(), name="pod-resync"),
        ]
        # Pods bound while the kubelet was down arrive as adds through the informer above.
        await self._relist(remove_orphans=True)

    async def stop(self) -> None:
        """Stop the kubelet; running containers are left alone (a restarted kubelet adopts
        them)."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for worker in list(self.workers.values()):
            await worker.stop()
        self.workers.clear()
        await self.recorder.stop()

    # ------------------------------------------------------------------ events
    def _on_pod(self, pod: core_pb2.Pod) -> None:
        if self._stop.is_set():
            return
        existing = self.workers.get(pod.metadata.uid)
        if existing is not None:
            existing.update(pod)
            return
        worker = PodWorker(self.ctx, pod)
        self.workers[pod.metadata.uid] = worker
        worker.start()

    def _gone(self, pod: core_pb2.Pod) -> None:
        worker = self.workers.get(pod.metadata.uid)
        if worker is not None:
            worker.mark_gone()

    def _on_source(self, obj: Any) -> None:
        """A ConfigMap or Secret changed: the pods of its namespace refresh their volumes and
        retry containers that were waiting for it."""
        ns = obj.metadata.namespace
        for worker in self.workers.values():
            if worker.pod.metadata.namespace == ns:
                worker.wake()

    # ------------------------------------------------------------------ relist
    async def _relist_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.relist_period)
            try:
                await self._relist(remove_orphans=True)
            except Exception as e:  # the relist must survive a runtime hiccup
                log.warning("relist failed", error=str(e))

    async def _relist(self, *, remove_orphans: bool) -> None:
        found = await self.runtime.list({LABEL_MANAGED: "true", LABEL_NODE: self.node_name})
        by_pod: dict[str, list[ContainerInfo]] = {}
        for info in found:
            by_pod.setdefault(info.pod_uid, []).append(info)
        for uid, finished in list(self.workers.items()):
            if finished.done:
                del self.workers[uid]
                self._seen.pop(uid, None)
        known = {p.metadata.uid for p in self.pods.list()} if remove_orphans else set()
        for uid, infos in by_pod.items():
            signature = tuple(sorted((i.id, i.state) for i in infos))
            worker = self.workers.get(uid)
            if worker is not None:
                if self._seen.get(uid) != signature:
                    self._seen[uid] = signature
                    worker.wake()
            elif remove_orphans and self.pods.has_synced and uid not in known:
                await self._remove_orphan(uid, infos)

    async def _remove_orphan(self, uid: str, infos: list[ContainerInfo]) -> None:
        log.info("removing containers of a pod that no longer exists", uid=uid)
        for info in infos:
            if info.running:
                await self.runtime.stop(info.id, 0)
            await self.runtime.remove(info.id)
        await self.ctx.volumes.teardown(uid)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sync_frequency)
            for worker in list(self.workers.values()):
                worker.wake()

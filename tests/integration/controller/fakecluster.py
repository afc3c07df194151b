"""A stand-in for the scheduler and the kubelets in controller tests: nodes are Node
objects, "scheduling" binds each unscheduled pod to an eligible node (nodeName,
nodeSelector, required node affinity matchFields metadata.name - what DaemonSet pods
carry), and "running" marks a bound pod Running and Ready, or finishes it as
the test's `outcome` says. Terminating pods are removed at once, as a kubelet would after
the containers stopped. Built on the same reconcile skeleton as the controllers."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from capstan.api.core.v1 import core_pb2
from capstan.api.meta.v1 import meta_pb2
from capstan.apierrors import ApiError, NotFoundError
from capstan.client import Client, Controller, SharedInformerFactory
from capstan.client.indexer import object_key
from capstan.machinery.labels import selector_from_map
from controller import podutil


@dataclass(frozen=True)
class Outcome:
    """What a bound pod does: run (Ready after ready_after seconds), or finish with
    phase Succeeded/Failed after finish_after seconds."""

    phase: str = "Running"
    ready_after: float = 0.0
    finish_after: float = 0.0
    ready: bool = True


RUN = Outcome()


def node(name: str, labels: dict[str, str] | None = None) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels["kubernetes.io/hostname"] = name
    n.metadata.labels.update(labels or {})
    return n


def _target_node(pod: core_pb2.Pod) -> str | None:
    affinity = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for term in affinity.node_selector_terms:
        for req in term.match_fields:
            if req.key == "metadata.name" and req.operator == "In" and req.values:
                return str(req.values[0])
    return None


class FakeCluster:
    def __init__(
        self,
        client: Client,
        namespace: str,
        *,
        outcome: Callable[[core_pb2.Pod], Outcome] = lambda p: RUN,
        workers: int = 8,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.outcome = outcome
        self.factory = SharedInformerFactory(client, namespace=namespace)
        self.pods = self.factory.for_resource(client.pods)
        self.nodes = self.factory.for_resource(client.nodes, namespace="")
        self.loop = Controller(f"fake-cluster-{namespace}", self._reconcile, workers=workers)
        self.loop.watch(self.pods)
        self.loop.informers.append(self.nodes)
        self._rr = itertools.count()
        self._task: object = None
        self.hold = False  # True: leave bound pods Pending (not started)

    async def add_node(self, name: str, **labels: str) -> core_pb2.Node:
        created = await self.client.nodes.create(node(name, labels))
        created.status.conditions.add(
            type="Ready",
            status="True",
            reason="KubeletReady",
            last_transition_time=podutil.now_ts(),
        )
        return await self.client.nodes.update_status(created)

    async def __aenter__(self) -> FakeCluster:
        import asyncio

        self._run = asyncio.create_task(self.loop.run(sync_timeout=10))
        for inf in (self.pods, self.nodes):
            await inf.wait_for_sync(10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio
        import contextlib

        self._run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._run
        await self.factory.stop()
        await self.pods.stop()
        await self.nodes.stop()

    def _eligible(self, pod: core_pb2.Pod) -> list[str]:
        want = _target_node(pod)
        sel = selector_from_map(pod.spec.node_selector)
        out = []
        for n in self.nodes.list():
            if n.spec.unschedulable:
                continue
            if want is not None and n.metadata.name != want:
                continue
            if not sel.matches(n.metadata.labels):
                continue
            out.append(n.metadata.name)
        return sorted(out)

    async def _reconcile(self, key: str) -> float | None:
        pod = self.pods.get_by_key(key)
        if pod is None:
            return None
        ns, name = pod.metadata.namespace, pod.metadata.name
        try:
            if podutil.is_terminating(pod):
                await self.client.pods.delete(name, ns, grace_period_seconds=0)
                return None
            if not pod.spec.node_name:
                nodes = self._eligible(pod)
                if not nodes:
                    return 0.5
                target = nodes[next(self._rr) % len(nodes)]
                binding = core_pb2.Binding(
                    metadata=meta_pb2.ObjectMeta(name=name, namespace=ns),
                    target=meta_pb2.ObjectReference(kind="Node", name=target),
                )
                await self.client.pods.bind(binding)
                return None
            if self.hold:
                return 0.2
            return await self._run_pod(pod)
        except NotFoundError:
            return None
        except ApiError:
            return 0.1

    async def _run_pod(self, pod: core_pb2.Pod) -> float | None:
        outcome = self.outcome(pod)
        phase = pod.status.phase
        if phase in (podutil.SUCCEEDED, podutil.FAILED):
            return None
        age = 0.0
        started = pod.status.start_time
        import time

        if started.seconds:
            age = time.time() - podutil.seconds(started)
        new = core_pb2.Pod()
        new.CopyFrom(pod)
        s = new.status
        if phase != podutil.RUNNING:
            s.phase = podutil.RUNNING
            s.start_time.CopyFrom(podutil.now_ts())
            s.pod_ip = "10.0.0.1"
            podutil.set_condition(s.conditions, "PodScheduled", "True", "", "")
            podutil.set_condition(s.conditions, "Ready", "False", "ContainersNotReady", "")
            await self.client.pods.update_status(new)
            return outcome.ready_after or outcome.finish_after or None
        if outcome.phase != podutil.RUNNING and age >= outcome.finish_after:
            s.phase = outcome.phase
            podutil.set_condition(s.conditions, "Ready", "False", "PodCompleted", "")
            await self.client.pods.update_status(new)
            return None
        if outcome.ready and not podutil.is_ready(pod) and age >= outcome.ready_after:
            podutil.set_condition(s.conditions, "Ready", "True", "", "")
            await self.client.pods.update_status(new)
        if outcome.phase != podutil.RUNNING:
            return max(0.05, outcome.finish_after - age)
        if outcome.ready and not podutil.is_ready(pod) and age < outcome.ready_after:
            return outcome.ready_after - age
        return None

    def running(self) -> list[core_pb2.Pod]:
        return [p for p in self.pods.list() if podutil.is_active(p)]

    def key(self, pod: core_pb2.Pod) -> str:
        return object_key(pod)

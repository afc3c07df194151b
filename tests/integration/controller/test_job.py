"""Job and CronJob against a real apiserver with the fake scheduler/kubelet."""

from __future__ import annotations

import asyncio

import pytest
from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from capstan.client import Client
from controller import podutil

from tests.integration.controller.conftest import cluster, controllers, eventually
from tests.integration.controller.fakecluster import Outcome
from tests.integration.controller.workloads import job

pytestmark = pytest.mark.integration


def condition(j: batch_pb2.Job, type_: str) -> str:
    for c in j.status.conditions:
        if c.type == type_ and c.status == "True":
            return c.reason or "True"
    return ""


async def test_completions_never_exceed_parallelism(client: Client, ns: str) -> None:
    succeed = Outcome(phase="Succeeded", finish_after=0.1)
    async with cluster(client, ns, lambda p: succeed) as fc, controllers(client, "job"):
        await fc.add_node(f"{ns}-n1")
        peak = {"active": 0}

        def check(*_: object) -> None:
            peak["active"] = max(peak["active"], len(fc.running()))

        fc.pods.add_event_handler(check, check, check)
        created = await client.jobs.create(job(ns, "batch", completions=10, parallelism=5))

        async def done() -> bool:
            return condition(await client.jobs.get("batch", ns), "Complete") != ""

        await eventually(done, timeout=30)
        final = await client.jobs.get("batch", ns)
        assert final.status.succeeded == 10 and final.status.active == 0
        assert final.status.HasField("completion_time")
        assert peak["active"] == 5
        pods = (await client.pods.list(ns)).items
        assert len(pods) == 10
        for p in pods:
            assert p.metadata.labels["batch.kubernetes.io/job-name"] == "batch"
            assert p.metadata.labels["batch.kubernetes.io/controller-uid"] == created.metadata.uid


async def test_backoff_limit_fails_job(client: Client, ns: str) -> None:
    fail = Outcome(phase="Failed", finish_after=0.05)
    async with cluster(client, ns, lambda p: fail) as fc, controllers(client, "job"):
        await fc.add_node(f"{ns}-n1")
        j = job(ns, "flaky", completions=1, parallelism=1)
        j.spec.backoff_limit = 2
        await client.jobs.create(j)

        async def failed() -> bool:
            return condition(await client.jobs.get("flaky", ns), "Failed") == "BackoffLimitExceeded"

        await eventually(failed, timeout=30)
        final = await client.jobs.get("flaky", ns)
        # backoffLimit 2: the third failure ends it, and no fourth pod is made.
        assert final.status.failed == 3
        await asyncio.sleep(0.5)
        assert len((await client.pods.list(ns)).items) == 3


async def test_work_queue_and_deadline(client: Client, ns: str) -> None:
    def outcome(p: core_pb2.Pod) -> Outcome:
        if p.metadata.labels["batch.kubernetes.io/job-name"] == "queue":
            return Outcome(phase="Succeeded", finish_after=0.1)
        return Outcome()

    async with cluster(client, ns, outcome) as fc, controllers(client, "job"):
        await fc.add_node(f"{ns}-n1")
        await client.jobs.create(job(ns, "queue", completions=None, parallelism=3))

        async def complete() -> bool:
            return condition(await client.jobs.get("queue", ns), "Complete") != ""

        await eventually(complete, timeout=20)
        assert (await client.jobs.get("queue", ns)).status.succeeded == 3

        slow = job(ns, "slow", completions=1, parallelism=2)
        slow.spec.active_deadline_seconds = 1
        await client.jobs.create(slow)

        async def deadline() -> bool:
            return condition(await client.jobs.get("slow", ns), "Failed") == "DeadlineExceeded"

        await eventually(deadline, timeout=10)
        await eventually(
            lambda: not [p for p in fc.running() if p.metadata.labels["job-name"] == "slow"]
        )


async def test_cronjob_forbid_and_history(client: Client, ns: str) -> None:
    def outcome(p: core_pb2.Pod) -> Outcome:
        if p.metadata.labels["job-name"].startswith("quick"):
            return Outcome(phase="Succeeded", finish_after=0.05)
        return Outcome()

    async with cluster(client, ns, outcome) as fc, controllers(client, "cronjob", "job"):
        await fc.add_node(f"{ns}-n1")
        for name, policy in (("forever", "Forbid"), ("quick", "Allow")):
            cj = batch_pb2.CronJob()
            cj.metadata.namespace, cj.metadata.name = ns, name
            cj.spec.schedule = "@every 1s"
            cj.spec.concurrency_policy = policy
            cj.spec.successful_jobs_history_limit = 2
            tmpl = cj.spec.job_template.spec.template
            tmpl.spec.containers.add(name="main", image="busybox:1")
            tmpl.spec.restart_policy = "Never"
            await client.cronjobs.create(cj)

        async def jobs_of(prefix: str) -> list[batch_pb2.Job]:
            return [
                j for j in (await client.jobs.list(ns)).items if j.metadata.name.startswith(prefix)
            ]

        async def enough_runs() -> bool:
            done = [j for j in await jobs_of("quick") if condition(j, "Complete")]
            return len(done) >= 2

        await eventually(enough_runs, timeout=20)
        await asyncio.sleep(2.5)
        # Forbid: the never-ending first run blocks every later one.
        assert len(await jobs_of("forever")) == 1
        # History: at most 2 finished kept (plus possibly one running).
        assert len(await jobs_of("quick")) <= 3
        cj = await client.cronjobs.get("forever", ns)
        assert len(cj.status.active) == 1 and cj.status.HasField("last_schedule_time")
        quick = await client.cronjobs.get("quick", ns)
        assert quick.status.HasField("last_successful_time")
        assert podutil.seconds(quick.status.last_schedule_time) > 0

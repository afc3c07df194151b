"""Job: run pods until enough succeed, as Kubernetes' job controller does.

- completions set: done when that many pods succeeded; at most parallelism pods run at
  once (never more: creations wait for their expectations, and extra active pods are
  deleted). completions unset (work queue): done once any pod succeeded and none is
  active; after the first success no new pods start.
- failures: with restartPolicy Never each failed pod counts; with OnFailure the kubelet
  restarts containers in place and their restarts count. More than backoffLimit fails the
  Job (BackoffLimitExceeded); replacements for failed pods wait an exponential backoff
  (10 s doubling to 6 min by default) after the last failure.
- activeDeadlineSeconds after start_time fails the Job (DeadlineExceeded); a failed Job's
  active pods are deleted. suspend deletes active pods and creates none.
Succeeded/failed counts come from the Job's pods (finished pods are kept) and never go
down, so a finished pod removed by hand does not undo progress.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

from capstan.api.batch.v1 import batch_pb2
from capstan.api.core.v1 import core_pb2
from capstan.client import NORMAL, WARNING, Controller, Informer
from capstan.machinery.labels import selector_from_proto

from controller import podutil
from controller.common import owner_informer, pod_informer, track_owned_pods, write_status
from controller.expectations import Expectations
from controller.ownership import claim
from controller.podcontrol import PodControl, pod_from_template
from controller.registry import ControllerContext

Job = batch_pb2.Job

# Kubernetes' DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff.
POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 360.0


def is_finished(job: Job) -> bool:
    return any(
        c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions
    )


def want_active(job: Job, succeeded: int, active: int) -> int:
    """Pods that should be running now (Kubernetes' manageJob)."""
    parallelism = job.spec.parallelism if job.spec.HasField("parallelism") else 1
    if not job.spec.HasField("completions"):
        return active if succeeded > 0 else parallelism
    return max(0, min(job.spec.completions - succeeded, parallelism))


def failure_backoff(failures: int, base: float, cap: float = MAX_POD_FAILURE_BACKOFF) -> float:
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))


def past_backoff_limit_on_failure(job: Job, active: list[core_pb2.Pod]) -> bool:
    """OnFailure: container restarts in running pods count as failures."""
    if job.spec.template.spec.restart_policy != "OnFailure":
        return False
    restarts = sum(
        cs.restart_count
        for p in active
        for cs in (*p.status.container_statuses, *p.status.init_container_statuses)
    )
    limit = job.spec.backoff_limit if job.spec.HasField("backoff_limit") else 6
    return restarts > 0 if limit == 0 else restarts >= limit


@dataclass
class _Backoff:
    failures: int = 0
    last: float = 0.0


class JobLoop:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.backoff_base = float(getattr(ctx.args, "job_pod_failure_backoff", POD_FAILURE_BACKOFF))
        self.jobs: Informer[Job] = owner_informer(ctx, ctx.client.jobs)
        self.pods = pod_informer(ctx)
        self.expectations = Expectations()
        self.control = PodControl(ctx.client, ctx.recorder)
        self._backoff: dict[str, _Backoff] = {}
        # Jobs this loop marked Complete/Failed (key -> uid) whose update the informer has not
        # delivered yet: a sync on the stale copy would see no active pods (just deleted) and
        # start new ones for a finished Job.
        self._finishing: dict[str, str] = {}
        self.controller = Controller("job", self.reconcile, workers=ctx.workers("job"))
        self.controller.watch(self.jobs)
        track_owned_pods(self.pods, "Job", self.controller, self.expectations)

    async def reconcile(self, key: str) -> float | None:
        cached = self.jobs.get_by_key(key)
        if cached is None:
            self.expectations.forget(key)
            self._backoff.pop(key, None)
            self._finishing.pop(key, None)
            return None
        job = copy.deepcopy(cached)
        if is_finished(job) or job.metadata.HasField("deletion_timestamp"):
            self._finishing.pop(key, None)
            return None
        if self._finishing.get(key) == job.metadata.uid:
            return None  # the finished Job's watch event syncs it again
        pods = await claim(
            job,
            selector_from_proto(job.spec.selector),
            self.pods.list(job.metadata.namespace),
            self.pods.resource,
        )
        active = [p for p in pods if podutil.is_active(p)]
        succeeded = max(
            job.status.succeeded, sum(1 for p in pods if p.status.phase == podutil.SUCCEEDED)
        )
        failed_pods = [p for p in pods if p.status.phase == podutil.FAILED]
        failed = max(job.status.failed, len(failed_pods))
        status = job.status
        now = time.time()
        suspended = job.spec.HasField("suspend") and job.spec.suspend
        if not status.HasField("start_time") and not suspended:
            status.start_time.CopyFrom(podutil.now_ts())
        record = self._backoff.setdefault(key, _Backoff())
        if failed > record.failures:
            record.failures, record.last = failed, now

        requeue: float | None = None
        limit = job.spec.backoff_limit if job.spec.HasField("backoff_limit") else 6
        failure: tuple[str, str] | None = None
        if failed > limit or past_backoff_limit_on_failure(job, active):
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif job.spec.HasField("active_deadline_seconds") and status.HasField("start_time"):
            left = podutil.seconds(status.start_time) + job.spec.active_deadline_seconds - now
            if left <= 0:
                failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
            else:
                requeue = left

        complete = (
            succeeded >= job.spec.completions
            if job.spec.HasField("completions")
            else succeeded > 0 and not active
        )
        error: Exception | None = None
        try:
            if failure is not None:
                await self.control.delete_many(job, key, self.expectations, active)
                active = []
                podutil.set_condition(status.conditions, "Failed", "True", *failure)
                self.recorder.record(job, WARNING, failure[0], failure[1])
            elif complete:
                extra = active if job.spec.HasField("completions") else []
                await self.control.delete_many(job, key, self.expectations, extra)
                active = [p for p in active if p not in extra]
                if not active:
                    podutil.set_condition(status.conditions, "Complete", "True", "", "")
                    status.completion_time.CopyFrom(podutil.now_ts())
                    self.recorder.record(job, NORMAL, "Completed", "Job completed")
            elif suspended:
                await self.control.delete_many(job, key, self.expectations, active)
                active = []
                podutil.set_condition(
                    status.conditions, "Suspended", "True", "JobSuspended", "Job suspended"
                )
            elif self.expectations.satisfied(key):
                podutil.remove_condition(status.conditions, "Suspended")
                wait = await self._manage(job, key, active, succeeded, record, now)
                if wait is not None:
                    requeue = wait if requeue is None else min(requeue, wait)
        except Exception as e:
            error = e
        status.active = len(active)
        status.succeeded = succeeded
        status.failed = failed
        status.ready = sum(1 for p in active if podutil.is_ready(p))
        written = await write_status(self.client.jobs, cached, status)
        if written is not cached and is_finished(written):
            self._finishing[key] = written.metadata.uid
        if error is not None:
            raise error
        return requeue

    async def _manage(
        self,
        job: Job,
        key: str,
        active: list[core_pb2.Pod],
        succeeded: int,
        record: _Backoff,
        now: float,
    ) -> float | None:
        want = want_active(job, succeeded, len(active))
        diff = len(active) - want
        if diff > 0:
            victims = podutil.pods_to_delete(active, diff)
            await self.control.delete_many(job, key, self.expectations, victims)
            for v in victims:
                active.remove(v)
            return None
        if diff == 0:
            return None
        delay = failure_backoff(record.failures, self.backoff_base)
        left = record.last + delay - now
        if record.failures and left > 0:
            return left
        template = job.spec.template
        await self.control.create_many(
            job,
            key,
            self.expectations,
            -diff,
            lambda: pod_from_template(template, job, generate_name=f"{job.metadata.name}-"),
        )
        return None


def new_job_controller(ctx: ControllerContext) -> Controller:
    return JobLoop(ctx).controller

"""CronJob: create a Job from the template at each scheduled time, as Kubernetes'
CronJob controller (v2) does.

At each sync the most recent scheduled time since the last run is found (missed runs
older than startingDeadlineSeconds are skipped, with a MissSchedule warning); its Job is
named <cronjob>-<scheduled time in unix minutes>, so running a time twice is impossible.
concurrencyPolicy: Allow runs jobs side by side, Forbid skips a time while one is active,
Replace deletes the active ones first. suspend stops new runs. Finished Jobs beyond
successfulJobsHistoryLimit / failedJobsHistoryLimit are deleted, oldest first. The loop
requeues itself for the next scheduled time, so it needs no resync.
"""

from __future__ import annotations

import copy
import datetime as dt
import zoneinfo

from capstan.api.batch.v1 import batch_pb2
from capstan.apierrors import AlreadyExistsError, NotFoundError
from capstan.client import NORMAL, WARNING, Controller, Informer, reference
from capstan.machinery.validate_batch import CronError, CronSchedule, parse_schedule
from google.protobuf.timestamp_pb2 import Timestamp

from controller import podutil
from controller.common import controller_key, owned, owner_informer, write_status
from controller.ownership import owner_reference
from controller.registry import ControllerContext

CronJob = batch_pb2.CronJob
Job = batch_pb2.Job
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Kubernetes gives up counting missed runs past 100 and just runs the latest.
MAX_MISSED = 100
_YEARS_AHEAD = 5


def _day_matches(s: CronSchedule, t: dt.datetime) -> bool:
    dom = t.day in s.days_of_month
    dow = (t.isoweekday() % 7) in s.days_of_week
    if s.dom_star or s.dow_star:
        return dom and dow
    return dom or dow


def next_after(s: CronSchedule, t: dt.datetime) -> dt.datetime | None:
    """The first scheduled time strictly after t (robfig/cron's SpecSchedule.Next), in
    t's zone; None if there is none within five years (e.g. February 30th)."""
    if s.every_seconds:
        return t.replace(microsecond=0) + dt.timedelta(seconds=max(1, int(s.every_seconds)))
    tz = t.tzinfo
    t = t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    limit = t.year + _YEARS_AHEAD
    while t.year <= limit:
        if t.month not in s.months:
            year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
            t = dt.datetime(year, month, 1, tzinfo=tz)
            continue
        if not _day_matches(s, t):
            t = dt.datetime(t.year, t.month, t.day, tzinfo=tz) + dt.timedelta(days=1)
            continue
        if t.hour not in s.hours:
            t = t.replace(minute=0) + dt.timedelta(hours=1)
            continue
        if t.minute not in s.minutes:
            t += dt.timedelta(minutes=1)
            continue
        return t
    return None


def most_recent(
    s: CronSchedule, earliest: dt.datetime, now: dt.datetime
) -> tuple[dt.datetime | None, int]:
    """The latest scheduled time in (earliest, now] and how many there were (capped)."""
    latest: dt.datetime | None = None
    missed = 0
    t = next_after(s, earliest)
    while t is not None and t <= now:
        latest, missed = t, missed + 1
        if missed > MAX_MISSED:
            # Jump close to now instead of walking every missed run.
            probe = (
                now - dt.timedelta(days=1)
                if not s.every_seconds
                else now - dt.timedelta(seconds=s.every_seconds * 2)
            )
            if probe > t:
                t = probe
        t = next_after(s, t)
    return latest, missed


def job_name(cj: CronJob, scheduled: dt.datetime, schedule: CronSchedule | None = None) -> str:
    """<cronjob>-<unix minutes>, Kubernetes' name; "@every" schedules shorter than a
    minute use unix seconds instead, or every run after the first in a minute would
    collide with it."""
    stamp = int(scheduled.timestamp())
    if schedule is not None and 0 < schedule.every_seconds < 60:
        return f"{cj.metadata.name}-{stamp}"
    return f"{cj.metadata.name}-{stamp // 60}"


def _finished(job: Job) -> str:
    for c in job.status.conditions:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return str(c.type)
    return ""


def _started(job: Job) -> float:
    return podutil.seconds(job.status.start_time) or podutil.seconds(
        job.metadata.creation_timestamp
    )


def _zone(cj: CronJob) -> dt.tzinfo:
    name = cj.spec.time_zone if cj.spec.HasField("time_zone") else ""
    sched = cj.spec.schedule
    if sched.startswith(("TZ=", "CRON_TZ=")):
        name = sched.partition(" ")[0].partition("=")[2]
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC


def _ts(t: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t.astimezone(dt.UTC))
    return ts


class CronJobLoop:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.cronjobs: Informer[CronJob] = ctx.informers.for_resource(ctx.client.cronjobs)
        self.jobs: Informer[Job] = owner_informer(ctx, ctx.client.jobs)
        self.controller = Controller("cronjob", self.reconcile, workers=ctx.workers("cronjob"))
        self.controller.watch(self.cronjobs)
        self.controller.watch(self.jobs, lambda j: [k for k in [controller_key(j, "CronJob")] if k])

    async def reconcile(self, key: str) -> float | None:
        cached = self.cronjobs.get_by_key(key)
        if cached is None:
            return None
        cj = copy.deepcopy(cached)
        jobs = owned(self.jobs, cj.metadata.uid)
        status = cj.status
        del status.active[:]
        for j in sorted(jobs, key=lambda j: j.metadata.name):
            kind = _finished(j)
            if not kind and not j.metadata.HasField("deletion_timestamp"):
                status.active.append(reference(j))
            elif kind == "Complete" and podutil.seconds(j.status.completion_time) > podutil.seconds(
                status.last_successful_time
            ):
                status.last_successful_time.CopyFrom(j.status.completion_time)
        await self._cleanup(cj, jobs)
        requeue: float | None = None
        if not (cj.spec.HasField("suspend") and cj.spec.suspend) and not cj.metadata.HasField(
            "deletion_timestamp"
        ):
            requeue = await self._schedule(cj, jobs)
        await write_status(self.client.cronjobs, cached, status)
        return requeue

    async def _schedule(self, cj: CronJob, jobs: list[Job]) -> float | None:
        try:
            sched = parse_schedule(cj.spec.schedule)
        except CronError as e:
            self.recorder.record(cj, WARNING, "UnparseableSchedule", f"unparseable schedule: {e}")
            return None
        tz = _zone(cj)
        now = dt.datetime.now(tz)
        status = cj.status
        last = status.last_schedule_time if status.HasField("last_schedule_time") else None
        earliest = (last or cj.metadata.creation_timestamp).ToDatetime(dt.UTC).astimezone(tz)
        deadline = (
            cj.spec.starting_deadline_seconds
            if cj.spec.HasField("starting_deadline_seconds")
            else None
        )
        if deadline is not None:
            earliest = max(earliest, now - dt.timedelta(seconds=deadline))
        scheduled, missed = most_recent(sched, earliest, now)
        upcoming = next_after(sched, now)
        wait = (upcoming - now).total_seconds() + 0.05 if upcoming is not None else None
        if scheduled is None:
            return wait
        if missed > MAX_MISSED:
            self.recorder.record(
                cj, WARNING, "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )  # fmt: skip
        if deadline is not None and (now - scheduled).total_seconds() > deadline:
            self.recorder.record(
                cj, WARNING, "MissSchedule",
                f"Missed scheduled time to start a job: {scheduled.isoformat()}",
            )  # fmt: skip
            return wait
        name = job_name(cj, scheduled, sched)
        if any(j.metadata.name == name for j in jobs):
            return wait
        active = [j for j in jobs if any(r.name == j.metadata.name for r in status.active)]
        policy = cj.spec.concurrency_policy or "Allow"
        if policy == "Forbid" and active:
            self.recorder.record(
                cj, NORMAL, "JobAlreadyActive", "Not starting job because prior execution is "
                "running and concurrency policy is Forbid",
            )  # fmt: skip
            return wait
        if policy == "Replace":
            for j in active:
                await self._delete_job(cj, j)
            del status.active[:]
        job = Job()
        job.metadata.name = name
        job.metadata.namespace = cj.metadata.namespace
        job.metadata.labels.update(cj.spec.job_template.metadata.labels)
        job.metadata.annotations.update(cj.spec.job_template.metadata.annotations)
        job.metadata.annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        job.metadata.owner_references.append(owner_reference(cj))
        job.spec.CopyFrom(cj.spec.job_template.spec)
        try:
            created = await self.client.jobs.create(job)
        except AlreadyExistsError:
            return wait
        self.recorder.record(cj, NORMAL, "SuccessfulCreate", f"Created job {name}")
        status.active.append(reference(created))
        status.last_schedule_time.CopyFrom(_ts(scheduled))
        return wait

    async def _delete_job(self, cj: CronJob, job: Job) -> None:
        try:
            await self.client.jobs.delete(
                job.metadata.name, job.metadata.namespace, propagation_policy="Background"
            )
        except NotFoundError:
            return
        self.recorder.record(cj, NORMAL, "SuccessfulDelete", f"Deleted job {job.metadata.name}")

    async def _cleanup(self, cj: CronJob, jobs: list[Job]) -> None:
        limits = {
            "Complete": cj.spec.successful_jobs_history_limit
            if cj.spec.HasField("successful_jobs_history_limit")
            else 3,
            "Failed": cj.spec.failed_jobs_history_limit
            if cj.spec.HasField("failed_jobs_history_limit")
            else 1,
        }
        for kind, limit in limits.items():
            done = [
                j
                for j in jobs
                if _finished(j) == kind and not j.metadata.HasField("deletion_timestamp")
            ]
            done.sort(key=lambda j: (_started(j), j.metadata.name))
            for j in done[: max(0, len(done) - limit)]:
                await self._delete_job(cj, j)


def new_cronjob_controller(ctx: ControllerContext) -> Controller:
    return CronJobLoop(ctx).controller

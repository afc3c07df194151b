"""Job and CronJob validation (k8s.io/kubernetes/pkg/apis/batch/validation), plus the cron
schedule grammar CronJobs use (robfig/cron's standard parser, with its error messages).
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Final

from capstan.api.batch.v1 import batch_pb2
from capstan.machinery.labels import SelectorError, selector_from_proto
from capstan.machinery.validate_meta import (
    Errors,
    enum,
    has,
    immutable,
    invalid_raw,
    key,
    non_negative,
    positive,
    render,
)
from capstan.machinery.validate_pod import (
    selector_matches_labels_error,
    validate_conditions,
    validate_pod_template_spec,
)
from capstan.machinery.validation import (
    child,
    invalid,
    not_supported,
    required,
    validate_label_selector,
)

# Labels Kubernetes puts on a Job's pod template when it generates the selector.
CONTROLLER_UID_LABEL: Final = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL: Final = "controller-uid"
LEGACY_JOB_NAME_LABEL: Final = "job-name"

COMPLETION_MODES: Final = ("NonIndexed", "Indexed")
CONCURRENCY_POLICIES: Final = ("Allow", "Forbid", "Replace")
JOB_RESTART_POLICIES: Final = ("OnFailure", "Never")
MAX_PARALLELISM_FOR_INDEXED_JOB: Final = 100000
# The CronJob controller appends "-<11 digits>" to the name of every Job it creates.
MAX_CRONJOB_NAME_LENGTH: Final = 52


# ---------------------------------------------------------------------------------------------
# Cron schedules


class CronError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed 5-field schedule; `every_seconds` is set instead for "@every <duration>"."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days_of_week: frozenset[int] = frozenset()
    # cron's rule: when either day field is "*", a day matches on the other field alone.
    dom_star: bool = False
    dow_star: bool = False
    every_seconds: float = 0.0


_MONTH_NAMES: Final = {
    n: i + 1
    for i, n in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_DOW_NAMES: Final = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: Final = (
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, _MONTH_NAMES),
    (0, 6, _DOW_NAMES),
)
_DESCRIPTORS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ATOI_RE: Final = re.compile(r"[+-]?[0-9]+\Z")
_DURATION_RE: Final = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def _must_parse_int(expr: str) -> int:
    if not _ATOI_RE.match(expr):
        raise CronError(
            f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax'
        )
    number = int(expr)
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {expr}")
    return number


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    return _must_parse_int(expr)


def _parse_range(
    expr: str, lo: int, hi: int, names: dict[str, int] | None
) -> tuple[set[int], bool]:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = lo, hi, True
    else:
        start = _int_or_name(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _must_parse_int(range_and_step[1])
        if len(low_high) == 1:
            end = hi  # "N/step" means "N-max/step"
        if step > 1:
            star = False
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _parse_field(
    field: str, lo: int, hi: int, names: dict[str, int] | None
) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in (p for p in field.split(",") if p):
        got, part_star = _parse_range(part, lo, hi, names)
        values |= got
        star = star or part_star
    return frozenset(values), star


def _parse_duration(text: str) -> float:
    pos, total = 0, 0.0
    if text in ("0", ""):
        if text == "0":
            return 0.0
        raise CronError(f'failed to parse duration {text}: time: invalid duration ""')
    while pos < len(text):
        match = _DURATION_RE.match(text, pos)
        if match is None:
            raise CronError(f'failed to parse duration {text}: time: invalid duration "{text}"')
        total += float(match[1]) * _DURATION_UNITS[match[2]]
        pos = match.end()
    return total


def parse_schedule(spec: str) -> CronSchedule:
    """robfig/cron ParseStandard: 5 fields or a descriptor; raises CronError with its message."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        zone, _, rest = spec.partition(" ")
        name = zone.partition("=")[2]
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise CronError(f"provided bad location {name}: unknown time zone {name}") from None
        spec = rest.strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            return CronSchedule(every_seconds=_parse_duration(spec.removeprefix("@every ").strip()))
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [
        _parse_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _FIELDS, strict=True)
    ]
    return CronSchedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days_of_month=parsed[2][0],
        months=parsed[3][0],
        days_of_week=parsed[4][0],
        dom_star=parsed[2][1],
        dow_star=parsed[4][1],
    )


def _validate_schedule(schedule: str, allow_tz: bool, path: str) -> Errors:
    out: Errors = []
    try:
        parse_schedule(schedule)
    except CronError as err:
        out.append(invalid(path, schedule, str(err)))
    if "TZ" in schedule and not allow_tz:
        out.append(
            invalid(
                path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    return out


def _validate_time_zone(tz: str, path: str) -> Errors:
    if tz.lower() == "local":
        return [
            invalid(
                path,
                tz,
                "timeZone must be an explicit time zone as defined in "
                "https://www.iana.org/time-zones",
            )
        ]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid(path, tz, f"unknown time zone {tz}")]
    return []


# ---------------------------------------------------------------------------------------------
# Job


def _job_spec(spec: batch_pb2.JobSpec, path: str) -> Errors:
    out: Errors = []
    for field, camel in (
        ("parallelism", "parallelism"),
        ("completions", "completions"),
        ("backoff_limit", "backoffLimit"),
        ("ttl_seconds_after_finished", "ttlSecondsAfterFinished"),
    ):
        if has(spec, field):
            out.extend(non_negative(getattr(spec, field), child(path, camel)))
    if spec.HasField("active_deadline_seconds"):
        out.extend(positive(spec.active_deadline_seconds, child(path, "activeDeadlineSeconds")))
    if spec.HasField("completion_mode"):
        mode_path = child(path, "completionMode")
        if spec.completion_mode not in COMPLETION_MODES:
            out.append(not_supported(mode_path, spec.completion_mode, COMPLETION_MODES))
        if spec.completion_mode == "Indexed":
            if not spec.HasField("completions"):
                out.append(required(child(path, "completions"), "when completion mode is Indexed"))
            if spec.HasField("parallelism") and spec.parallelism > MAX_PARALLELISM_FOR_INDEXED_JOB:
                out.append(
                    invalid(
                        child(path, "parallelism"),
                        spec.parallelism,
                        f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when "
                        "completion mode is Indexed",
                    )
                )
    tpl_path = child(path, "template")
    out.extend(validate_pod_template_spec(spec.template, tpl_path))
    rp_path = child(tpl_path, "spec.restartPolicy")
    policy = spec.template.spec.restart_policy
    if policy in ("Always", ""):
        out.append(required(rp_path, 'valid values: "OnFailure", "Never"'))
    elif policy not in JOB_RESTART_POLICIES:
        out.append(not_supported(rp_path, policy, JOB_RESTART_POLICIES))
    return out


def _generated_selector(job: batch_pb2.Job) -> Errors:
    """With an auto-generated selector, the template must carry the uid and name labels."""
    spec = job.spec
    if (spec.HasField("manual_selector") and spec.manual_selector) or not spec.HasField("selector"):
        return []
    out: Errors = []
    uid, name = job.metadata.uid, job.metadata.name
    if not uid:
        return [required("metadata.uid")]
    labels = spec.template.metadata.labels
    labels_path = "spec.template.metadata.labels"
    for label, expected in ((LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name)):
        actual = labels.get(label)
        if actual is None:
            out.append(required(key(labels_path, label), f"must be '{expected}'"))
        elif actual != expected:
            out.append(
                invalid_raw(key(labels_path, label), render(labels), f"must be '{expected}'")
            )
    try:
        selector = selector_from_proto(spec.selector)
    except SelectorError:
        return out
    if not selector.matches({CONTROLLER_UID_LABEL: uid}):
        out.append(
            invalid_raw("spec.selector", render(spec.selector), "`selector` not auto-generated")
        )
    return out


def validate_job(job: batch_pb2.Job, old: batch_pb2.Job | None) -> Errors:
    spec, path = job.spec, "spec"
    out: Errors = []
    sel_path = child(path, "selector")
    if not spec.HasField("selector"):
        out.append(required(sel_path))
    else:
        out.extend(validate_label_selector(spec.selector, sel_path))
        try:
            selector = selector_from_proto(spec.selector)
        except SelectorError:
            selector = None
        if selector is not None and not selector.empty:
            labels = spec.template.metadata.labels
            if not selector.matches(labels):
                out.append(selector_matches_labels_error("spec.template.metadata.labels", labels))
    out.extend(_job_spec(spec, path))
    if old is None:
        out.extend(_generated_selector(job))
    else:
        old_spec = old.spec
        if spec.HasField("completions") != old_spec.HasField("completions") or (
            spec.completions != old_spec.completions
        ):
            value: object = spec.completions if spec.HasField("completions") else "null"
            out.append(immutable(child(path, "completions"), value))
        if spec.selector != old_spec.selector:
            out.append(immutable(sel_path, spec.selector))
        if spec.template != old_spec.template:
            out.append(immutable(child(path, "template"), spec.template))
        if spec.completion_mode != old_spec.completion_mode:
            out.append(immutable(child(path, "completionMode"), spec.completion_mode))
    return out


def validate_job_status(job: batch_pb2.Job, old: batch_pb2.Job) -> Errors:
    status, path = job.status, "status"
    out: Errors = []
    for field in ("active", "succeeded", "failed"):
        out.extend(non_negative(getattr(status, field), child(path, field)))
    if status.HasField("ready"):
        out.extend(non_negative(status.ready, child(path, "ready")))
    if status.HasField("terminating"):
        out.extend(non_negative(status.terminating, child(path, "terminating")))
    out.extend(validate_conditions(status.conditions, child(path, "conditions")))
    return out


# ---------------------------------------------------------------------------------------------
# CronJob


def validate_cron_job(cj: batch_pb2.CronJob, old: batch_pb2.CronJob | None) -> Errors:
    spec, path = cj.spec, "spec"
    out: Errors = []
    if old is None and len(cj.metadata.name) > MAX_CRONJOB_NAME_LENGTH:
        out.append(
            invalid(
                "metadata.name",
                cj.metadata.name,
                f"must be no more than {MAX_CRONJOB_NAME_LENGTH} characters",
            )
        )
    schedule_path = child(path, "schedule")
    if not spec.schedule:
        out.append(required(schedule_path))
    else:
        allow_tz = old is not None and "TZ" in old.spec.schedule
        out.extend(_validate_schedule(spec.schedule, allow_tz, schedule_path))
    if spec.HasField("starting_deadline_seconds"):
        out.extend(
            non_negative(spec.starting_deadline_seconds, child(path, "startingDeadlineSeconds"))
        )
    if spec.HasField("time_zone") and (old is None or old.spec.time_zone != spec.time_zone):
        out.extend(_validate_time_zone(spec.time_zone, child(path, "timeZone")))
    out.extend(
        enum(spec.concurrency_policy, CONCURRENCY_POLICIES, child(path, "concurrencyPolicy"))
    )
    jt_path = child(path, "jobTemplate")
    job_spec = spec.job_template.spec
    out.extend(_job_spec(job_spec, child(jt_path, "spec")))
    if job_spec.HasField("selector"):
        out.append(
            invalid_raw(
                child(jt_path, "spec.selector"),
                render(job_spec.selector),
                "`selector` will be auto-generated",
            )
        )
    if job_spec.HasField("manual_selector") and job_spec.manual_selector:
        out.append(not_supported(child(jt_path, "spec.manualSelector"), True, ("nil", "false")))
    for field, camel in (
        ("successful_jobs_history_limit", "successfulJobsHistoryLimit"),
        ("failed_jobs_history_limit", "failedJobsHistoryLimit"),
    ):
        if has(spec, field):
            out.extend(non_negative(getattr(spec, field), child(path, camel)))
    return out


def validate_cron_job_status(cj: batch_pb2.CronJob, old: batch_pb2.CronJob) -> Errors:
    out: Errors = []
    for i, ref in enumerate(cj.status.active):
        if not ref.name:
            out.append(required(f"status.active[{i}].name"))
    return out

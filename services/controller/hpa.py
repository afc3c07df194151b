"""The HorizontalPodAutoscaler controller (autoscaling/v1: CPU utilization).

Every --horizontal-pod-autoscaler-sync-period each HPA is evaluated as Kubernetes does:
utilization = sum of the pods' CPU usage / sum of their CPU requests; the ratio to the
target gives ceil(ratio * pods) replicas unless it is within the tolerance (10%) of 1.
Pods without a sample count as using nothing when scaling up and their whole request when
scaling down, not-ready pods as using nothing on the way up - the conservative choices
that keep a missing metric from causing a scale in its own direction. The recommendation
is stabilized (scale-down takes the largest recommendation of the last
stabilizationWindowSeconds, 300 s by default, so a dip does not shrink the workload),
limited to doubling (or 4) per step, clamped to min/max, and applied through the target's
Scale subresource.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from capstan.api.autoscaling.v1 import autoscaling_pb2
from capstan.apierrors import ApiError, NotFoundError
from capstan.client import WARNING, Controller, Informer, split_key
from capstan.machinery.labels import parse_selector
from capstan.machinery.quantity import cpu_millis

from controller.metrics_source import KubeletMetricsSource, MetricsSource
from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

DEFAULT_TARGET_PERCENT = 80
TOLERANCE = 0.1
Clock = Callable[[], float]


@dataclass
class Options:
    sync_period: float = 15.0
    downscale_stabilization: float = 300.0
    tolerance: float = TOLERANCE


@dataclass(frozen=True)
class PodSample:
    ready: bool
    request_millis: int
    usage_millis: int | None  # None: no metric for this pod


@dataclass
class Calculation:
    replicas: int
    utilization: int  # percent, over the pods with samples


class MetricsError(Exception):
    """Utilization cannot be computed (reason, message for the HPA's conditions)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def replica_count(
    current: int, samples: list[PodSample], target_percent: int, tolerance: float = TOLERANCE
) -> Calculation:
    """Kubernetes' GetResourceReplicas for CPU utilization."""
    if not samples:
        raise MetricsError("FailedGetResourceMetric", "no pods match the target's selector")
    if any(s.request_millis <= 0 for s in samples):
        raise MetricsError("FailedGetResourceMetric", "missing request for cpu")
    ready = [s for s in samples if s.ready and s.usage_millis is not None]
    unready = [s for s in samples if not s.ready and s.usage_millis is not None]
    missing = [s for s in samples if s.usage_millis is None]
    if not ready:
        raise MetricsError(
            "FailedGetResourceMetric", "no metrics returned for any ready pod of the target"
        )
    usage = sum(s.usage_millis or 0 for s in ready)
    requests = sum(s.request_millis for s in ready)
    utilization = usage * 100 // requests
    ratio = usage * 100 / requests / target_percent
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return Calculation(current, utilization)
        return Calculation(math.ceil(ratio * len(ready)), utilization)
    # Conservative guesses for the pods whose numbers cannot be trusted: missing ones use
    # nothing on the way up and their whole request on the way down; unready ones nothing.
    counted = list(ready)
    for s in missing:
        counted.append(PodSample(False, s.request_millis, 0 if ratio > 1.0 else s.request_millis))
    if scale_up_with_unready:
        counted.extend(PodSample(False, s.request_millis, 0) for s in unready)
    new_ratio = (
        sum(s.usage_millis or 0 for s in counted)
        * 100
        / sum(s.request_millis for s in counted)
        / target_percent
    )
    if abs(1.0 - new_ratio) <= tolerance or (ratio > 1.0) != (new_ratio > 1.0):
        return Calculation(current, utilization)
    desired = math.ceil(new_ratio * len(counted))
    if (new_ratio < 1.0 and desired > current) or (new_ratio > 1.0 and desired < current):
        return Calculation(current, utilization)
    return Calculation(desired, utilization)


@dataclass
class Recommendations:
    """Recent raw recommendations per HPA, for the stabilization windows."""

    items: list[tuple[float, int]] = field(default_factory=list)

    def stabilize(
        self, now: float, raw: int, current: int, down_window: float, up_window: float
    ) -> int:
        self.items.append((now, raw))
        horizon = max(down_window, up_window)
        self.items = [(t, r) for t, r in self.items if t >= now - horizon]
        up = min((r for t, r in self.items if t >= now - up_window), default=raw)
        down = max((r for t, r in self.items if t >= now - down_window), default=raw)
        recommendation = current
        if recommendation < up:
            recommendation = up
        if recommendation > down:
            recommendation = down
        return recommendation


def scale_up_limit(current: int) -> int:
    return max(2 * current, 4)


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def cpu_request_millis(pod: Any) -> int:
    total = 0
    for ctr in pod.spec.containers:
        value = ctr.resources.requests.get("cpu")
        if not value:
            return 0
        total += cpu_millis(value)
    return total


def set_condition(hpa: Any, ctype: str, status: str, reason: str, message: str) -> None:
    for c in hpa.status.conditions:
        if c.type == ctype:
            if c.status != status:
                c.last_transition_time.GetCurrentTime()
            c.status, c.reason, c.message = status, reason, message
            return
    c = hpa.status.conditions.add(type=ctype, status=status, reason=reason, message=message)
    c.last_transition_time.GetCurrentTime()


class HorizontalPodAutoscalerController:
    def __init__(
        self,
        client: Any,
        hpas: Informer[autoscaling_pb2.HorizontalPodAutoscaler],
        pods: Informer[Any],
        metrics: MetricsSource,
        recorder: Any,
        options: Options,
        *,
        clock: Clock = time.monotonic,
        workers: int = 3,
    ) -> None:
        self.client = client
        self.hpas = hpas
        self.pods = pods
        self.metrics = metrics
        self.recorder = recorder
        self.options = options
        self.clock = clock
        self.recommendations: dict[str, Recommendations] = {}
        self.controller = Controller("horizontalpodautoscaling", self.reconcile, workers=workers)
        self.controller.informers += [hpas, pods]

        def on_add(obj: Any) -> None:
            self.controller.enqueue(f"{obj.metadata.namespace}/{obj.metadata.name}")

        def on_update(old: Any, new: Any) -> None:
            # Our own status writes must not trigger an evaluation: only spec changes do.
            if old.metadata.generation != new.metadata.generation:
                on_add(new)

        hpas.add_event_handler(on_add, on_update, on_add)

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        hpa = self.hpas.get(name, namespace)
        if hpa is None:
            self.recommendations.pop(key, None)
            return None
        new = autoscaling_pb2.HorizontalPodAutoscaler()
        new.CopyFrom(hpa)
        try:
            await self._evaluate(key, new)
        finally:
            if new.status != hpa.status:
                try:
                    await self.client.horizontalpodautoscalers.update_status(new)
                except NotFoundError:
                    return None
        return self.options.sync_period

    async def _evaluate(self, key: str, hpa: Any) -> None:
        spec, status = hpa.spec, hpa.status
        ref = spec.scale_target_ref
        namespace = hpa.metadata.namespace
        status.observed_generation = hpa.metadata.generation
        try:
            target = self.client.resource(ref.kind)
            scale = await target.get_scale(ref.name, namespace)
        except (ApiError, KeyError) as e:
            message = f"the HPA controller was unable to get the target's current scale: {e}"
            set_condition(hpa, "AbleToScale", "False", "FailedGetScale", message)
            self.recorder.record(hpa, WARNING, "FailedGetScale", message)
            return
        current = scale.spec.replicas
        status.current_replicas = scale.status.replicas
        min_replicas = spec.min_replicas if spec.HasField("min_replicas") else 1
        if current == 0 and min_replicas != 0:
            set_condition(
                hpa, "ScalingActive", "False", "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )  # fmt: skip
            status.desired_replicas = 0
            return
        set_condition(
            hpa, "AbleToScale", "True", "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )  # fmt: skip
        try:
            calc = await self._calculate(namespace, scale, current, hpa)
        except MetricsError as e:
            set_condition(hpa, "ScalingActive", "False", e.reason, e.message)
            self.recorder.record(hpa, WARNING, e.reason, e.message)
            status.desired_replicas = current
            return
        status.current_cpu_utilization_percentage = calc.utilization
        set_condition(
            hpa, "ScalingActive", "True", "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from cpu resource "
            "utilization (percentage of request)",
        )  # fmt: skip
        desired = self._normalize(key, hpa, calc.replicas, current, min_replicas)
        status.desired_replicas = desired
        if desired == current:
            return
        scale.spec.replicas = desired
        await target.update_scale(scale)
        status.last_scale_time.GetCurrentTime()
        direction = "above" if desired > current else "below"
        self.recorder.record(
            hpa,
            "Normal",
            "SuccessfulRescale",
            f"New size: {desired}; reason: cpu resource utilization (percentage of request) "
            f"{direction} target",
        )
        log.info("rescaled", hpa=key, current=current, desired=desired)

    async def _calculate(self, namespace: str, scale: Any, current: int, hpa: Any) -> Calculation:
        try:
            selector = parse_selector(scale.status.selector)
        except ValueError as e:
            raise MetricsError("InvalidSelector", str(e)) from None
        pods = [
            p
            for p in self.pods.list(namespace)
            if selector.matches(p.metadata.labels)
            and not p.metadata.HasField("deletion_timestamp")
            and p.status.phase != "Failed"
        ]
        usage = await self.metrics.pod_cpu_millis(namespace, pods)
        samples = [
            PodSample(pod_ready(p), cpu_request_millis(p), usage.get(p.metadata.name)) for p in pods
        ]
        target = (
            hpa.spec.target_cpu_utilization_percentage
            if hpa.spec.HasField("target_cpu_utilization_percentage")
            else DEFAULT_TARGET_PERCENT
        )
        return replica_count(current, samples, target, self.options.tolerance)

    def _normalize(self, key: str, hpa: Any, raw: int, current: int, min_replicas: int) -> int:
        behavior = hpa.spec.behavior
        down_window = (
            float(behavior.scale_down.stabilization_window_seconds)
            if behavior.scale_down.HasField("stabilization_window_seconds")
            else self.options.downscale_stabilization
        )
        up_window = (
            float(behavior.scale_up.stabilization_window_seconds)
            if behavior.scale_up.HasField("stabilization_window_seconds")
            else 0.0
        )
        recs = self.recommendations.setdefault(key, Recommendations())
        stabilized = recs.stabilize(self.clock(), raw, current, down_window, up_window)
        limited = min(stabilized, scale_up_limit(current))
        desired = max(min_replicas, min(hpa.spec.max_replicas, limited))
        if desired != stabilized:
            reason = "TooManyReplicas" if desired < stabilized else "TooFewReplicas"
            set_condition(
                hpa, "ScalingLimited", "True", reason,
                f"the desired replica count is {'more' if desired < stabilized else 'less'} "
                "than the allowed bound",
            )  # fmt: skip
        else:
            set_condition(
                hpa, "ScalingLimited", "False", "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )  # fmt: skip
        return int(desired)


def options_from_args(args: Any) -> Options:
    d = Options()
    return Options(
        sync_period=float(getattr(args, "horizontal_pod_autoscaler_sync_period", d.sync_period)),
        downscale_stabilization=float(
            getattr(
                args,
                "horizontal_pod_autoscaler_downscale_stabilization",
                d.downscale_stabilization,
            )
        ),
        tolerance=float(getattr(args, "horizontal_pod_autoscaler_tolerance", d.tolerance)),
    )


def new_hpa_controller(ctx: ControllerContext) -> Controller:
    client, informers = ctx.client, ctx.informers
    nodes = informers.for_resource(client.nodes)
    c = HorizontalPodAutoscalerController(
        client,
        informers.for_resource(client.horizontalpodautoscalers),
        informers.for_resource(client.pods),
        KubeletMetricsSource(nodes),
        ctx.recorder,
        options_from_args(ctx.args),
        workers=ctx.workers("horizontalpodautoscaling", 3),
    )
    c.controller.informers.append(nodes)
    return c.controller

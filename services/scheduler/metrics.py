"""The scheduler's Prometheus metrics (names after kube-scheduler's, capstan_ prefixed)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# scheduled, unschedulable or error (a failed bind or an unexpected exception).
SCHEDULE_ATTEMPTS = Counter(
    "capstan_scheduler_schedule_attempts_total",
    "scheduling attempts by result",
    ["result"],
)
E2E_LATENCY = Histogram(
    "capstan_scheduler_e2e_scheduling_duration_seconds",
    "from a pod entering the scheduling queue to its Binding succeeding",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ALGORITHM_LATENCY = Histogram(
    "capstan_scheduler_scheduling_algorithm_duration_seconds",
    "filtering and scoring one pod",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
PENDING_PODS = Gauge(
    "capstan_scheduler_pending_pods",
    "pods waiting in the scheduling queue, by queue (active, backoff, unschedulable)",
    ["queue"],
)
BINDS_IN_FLIGHT = Gauge("capstan_scheduler_binds_in_flight", "Bindings sent and not yet answered")

SCHEDULED = SCHEDULE_ATTEMPTS.labels("scheduled")
UNSCHEDULABLE = SCHEDULE_ATTEMPTS.labels("unschedulable")
ERROR = SCHEDULE_ATTEMPTS.labels("error")

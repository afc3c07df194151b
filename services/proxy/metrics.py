"""The proxy's Prometheus metrics (kube-proxy's names with a capstan_ prefix where one exists)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SYNC_DURATION = Histogram(
    "capstan_proxy_sync_proxy_rules_duration_seconds",
    "Time of one iptables sync (render, plan, restore)",
    ["kind"],  # partial or resync
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RULES_WRITTEN = Counter(
    "capstan_proxy_sync_proxy_rules_written_total", "Rules sent to iptables-restore"
)
RULES = Gauge("capstan_proxy_sync_proxy_rules_total", "Rules the proxy owns, by table", ["table"])
LAST_SYNC = Gauge(
    "capstan_proxy_sync_proxy_rules_last_timestamp_seconds",
    "Unix time of the last successful sync",
)
SYNC_FAILURES = Counter("capstan_proxy_sync_proxy_rules_failures_total", "Failed syncs")
CHAINS_REPAIRED = Counter(
    "capstan_proxy_chains_repaired_total",
    "Chains whose kernel rules differed from what the proxy wrote (changed by someone else)",
)
DNS_QUERIES = Counter("capstan_proxy_dns_queries_total", "DNS queries answered", ["rcode"])

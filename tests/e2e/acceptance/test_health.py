"""Scenario 2: health checks. A failing liveness probe restarts the container (RESTARTS grows,
an Unhealthy event says why); a failing readiness probe takes the pod out of its Service's
endpoints until it is ready again."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually

pytestmark = [pytest.mark.e2e]

MANIFEST = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: health
    spec:
      replicas: 2
      selector:
        matchLabels: {app: health}
      template:
        metadata:
          labels: {app: health}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: demo
            image: capstan/demo:1
            ports:
            - {containerPort: 8080}
            livenessProbe:
              httpGet: {path: /healthy, port: 8080}
              periodSeconds: 1
              failureThreshold: 2
            readinessProbe:
              httpGet: {path: /ready, port: 8080}
              periodSeconds: 1
              failureThreshold: 1
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: health
    spec:
      selector: {app: health}
      ports:
      - {port: 80, targetPort: 8080}
"""


def endpoint_ips(k: Capstan) -> tuple[set[str], set[str]]:
    """(ready, not ready) addresses of the Service."""
    ready: set[str] = set()
    not_ready: set[str] = set()
    for subset in k.get("endpoints", "health").get("subsets", []):
        ready |= {a["ip"] for a in subset.get("addresses", [])}
        not_ready |= {a["ip"] for a in subset.get("notReadyAddresses", [])}
    return ready, not_ready


def restarts(pod: dict[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))


def test_liveness_and_readiness(k: Capstan) -> None:
    k.apply(MANIFEST)
    k.wait_rollout("deployment/health")
    pods = k.items("pods", "-l", "app=health")
    assert len(pods) == 2
    name, ip = pods[0]["metadata"]["name"], pods[0]["status"]["podIP"]
    other_ip = pods[1]["status"]["podIP"]
    eventually(lambda: endpoint_ips(k)[0] == {ip, other_ip}, "both pods in the endpoints")

    # Readiness: out of the Service, still running, back in once ready again.
    assert k.exec(name, "wget -qO- http://127.0.0.1:8080/ready/fail").rc == 0
    eventually(lambda: endpoint_ips(k) == ({other_ip}, {ip}), f"{ip} not ready in the endpoints")
    row = k("get", "pod", name, "--no-headers").split()
    assert row[1:3] == ["0/1", "Running"], row
    assert restarts(k.get("pod", name)) == 0
    assert k.exec(name, "wget -qO- http://127.0.0.1:8080/ready/ok").rc == 0
    eventually(lambda: endpoint_ips(k) == ({ip, other_ip}, set()), f"{ip} ready again")

    # Liveness: the container is killed and started again (the fresh one is healthy).
    assert k.exec(name, "wget -qO- http://127.0.0.1:8080/healthy/fail").rc == 0
    eventually(lambda: restarts(k.get("pod", name)) >= 1, "a restart", timeout=30)

    def ready_row() -> list[str]:
        row = k("get", "pod", name, "--no-headers").split()
        assert row[1] == "1/1", row
        return row

    row = eventually(ready_row, "the restarted container ready", timeout=30)
    assert int(row[3]) >= 1, row
    events = k("describe", "pod", name).split("Events:")[1]
    assert re.search(r"Warning\s+Unhealthy\s.*Liveness probe failed", events), events
    assert re.search(r"Warning\s+Unhealthy\s.*Readiness probe failed", events), events
    assert re.search(r"Normal\s+Killing\s.*failed liveness probe", events), events
    # The pod's IP does not change with a container restart; it serves again.
    eventually(lambda: ip in endpoint_ips(k)[0], f"{ip} back in the endpoints")

"""Scenario 6: Jobs. A one-shot job; a failing one with restartPolicy OnFailure (the pod's
container restarts) against Never (new pods) up to the backoff limit; 10 completions 5 at a
time; and a work queue drained by parallel workers."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually

pytestmark = [pytest.mark.e2e]


def job(name: str, script: str, restart: str = "OnFailure", **spec: int) -> str:
    extra = "".join(f"\n      {key}: {value}" for key, value in spec.items())
    return f"""
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: {name}
    spec:{extra}
      template:
        spec:
          restartPolicy: {restart}
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: capstan/util:1
            command: ["sh", "-c", {json.dumps(script)}]
    """


def finished(k: Capstan, name: str, condition: str) -> dict[str, Any]:
    c = k.condition("job", name, condition)
    assert c is not None, f"job {name}: {k.get('job', name).get('status')}"
    return c


def job_pods(k: Capstan, name: str) -> list[dict[str, Any]]:
    return k.items("pods", "-l", f"job-name={name}")


def test_one_shot(k: Capstan) -> None:
    k.apply(job("oneshot", "echo the answer is $((6 * 7))"))
    eventually(lambda: finished(k, "oneshot", "Complete"), "oneshot to complete")
    row = k("get", "job", "oneshot", "--no-headers").split()
    assert row[:2] == ["oneshot", "1/1"], row
    (pod,) = job_pods(k, "oneshot")
    assert pod["status"]["phase"] == "Succeeded"
    assert k("logs", pod["metadata"]["name"]).strip() == "the answer is 42"


def test_failing_on_failure_versus_never(k: Capstan) -> None:
    k.apply(
        job("restarts", "echo failing; exit 1", "OnFailure", backoffLimit=2)
        + "\n---\n"
        + job("new-pods", "echo failing; exit 1", "Never", backoffLimit=2)
    )

    # OnFailure: one pod, its container restarted in place.
    def restarted() -> bool:
        pods = job_pods(k, "restarts")
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        statuses = pods[0]["status"].get("containerStatuses", [])
        return bool(statuses) and statuses[0].get("restartCount", 0) >= 1

    eventually(restarted, "the OnFailure pod to restart", timeout=30, interval=0.3)

    # Never: a new pod per failure, 1 + backoffLimit in all, none restarted.
    c = eventually(lambda: finished(k, "new-pods", "Failed"), "new-pods to fail", timeout=60)
    assert c["reason"] == "BackoffLimitExceeded"
    pods = job_pods(k, "new-pods")
    assert len(pods) == 3, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        assert pod["status"]["containerStatuses"][0].get("restartCount", 0) == 0
    assert k.get("job", "new-pods")["status"]["failed"] == 3

    c = eventually(lambda: finished(k, "restarts", "Failed"), "restarts to fail", timeout=60)
    assert c["reason"] == "BackoffLimitExceeded"
    described = k("describe", "job", "restarts")
    assert len(re.findall(r"SuccessfulCreate", described)) == 1, described


def test_parallel_completions(k: Capstan) -> None:
    watch = k.watch("pods", "-l", "job-name=parallel")
    k.apply(job("parallel", "sleep 2; echo done", completions=10, parallelism=5))
    eventually(lambda: finished(k, "parallel", "Complete"), "10 completions", timeout=90)
    status = k.get("job", "parallel")["status"]
    assert status["succeeded"] == 10 and not status.get("failed")
    assert len(job_pods(k, "parallel")) == 10
    eventually(
        lambda: len({line.split()[0] for line in watch.lines() if " Completed " in line}) == 10,
        "the watch to show 10 completed pods",
        timeout=10,
    )

    # Replay the watch (events in resource-version order): pods not yet finished at any
    # moment never exceed the parallelism.
    latest: dict[str, str] = {}
    most = 0
    for line in watch.stop():
        name, status_column = line.split()[0], line.split()[2]
        latest[name] = status_column
        most = max(most, sum(s not in ("Completed", "Error") for s in latest.values()))
    assert len(latest) == 10 and set(latest.values()) == {"Completed"}, latest
    assert most == 5, f"at most {most} pods active at once"


# The queue: one util pod answering each HTTP request with the next item, EMPTY when there is
# none. nc forks one /q/pop per connection; a mkdir lock makes each pop atomic.
QUEUE = r"""
    apiVersion: v1
    kind: Pod
    metadata:
      name: queue
      labels: {app: queue}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: queue
        image: capstan/util:1
        ports:
        - {containerPort: 9000}
        command:
        - sh
        - -c
        - |
          mkdir -p /q
          seq 1 12 | sed 's/^/item-/' > /q/items
          cat > /q/pop <<'EOF'
          #!/bin/sh
          while read -r line; do
            case "$line" in ""|"$(printf '\r')") break ;; esac
          done
          until mkdir /q/lock 2>/dev/null; do usleep 10000; done
          item=$(head -n 1 /q/items)
          sed -i 1d /q/items
          rmdir /q/lock
          [ -n "$item" ] || item=EMPTY
          printf 'HTTP/1.0 200 OK\r\nContent-Length: %s\r\n\r\n%s\n' $((${#item} + 1)) "$item"
          EOF
          chmod +x /q/pop
          exec nc -ll -p 9000 -e /q/pop
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: queue
    spec:
      selector: {app: queue}
      ports:
      - {port: 9000}
"""

# Workers pop until the queue says EMPTY; a failed request (the Service not programmed yet) is
# retried, never taken for an empty queue.
WORKER = (
    "while true; do"
    " item=$(wget -qO- http://queue:9000/ 2>/dev/null) || { sleep 1; continue; };"
    ' [ "$item" = EMPTY ] && exit 0;'
    ' echo "processed $item"; sleep 0.2;'
    " done"
)


def test_work_queue(k: Capstan) -> None:
    k.apply(QUEUE)
    k.wait_ready("queue")
    k.apply(job("workers", WORKER, parallelism=3))
    eventually(lambda: finished(k, "workers", "Complete"), "the queue drained", timeout=90)
    pods = job_pods(k, "workers")
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    processed: Counter[str] = Counter()
    for pod in pods:
        for line in k("logs", pod["metadata"]["name"]).splitlines():
            processed[line.removeprefix("processed ")] += 1
    assert processed == Counter(f"item-{i}" for i in range(1, 13)), processed
    assert k.exec("queue", "wc -l < /q/items").out.strip() == "0"

"""The remaining workload kind and ownership end to end: a CronJob starting Jobs on its
schedule (and stopping when suspended), and cascading deletion of a Deployment's ReplicaSet
and pods in the background, in the foreground and orphaned."""

from __future__ import annotations

import time

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually

pytestmark = [pytest.mark.e2e]

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "@every 3s"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 2
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: tick
            image: capstan/util:1
            command: ["sh", "-c", "echo tick"]
"""


def deployment(name: str) -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:
      replicas: 2
      selector:
        matchLabels: {{app: {name}}}
      template:
        metadata:
          labels: {{app: {name}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: web
            image: capstan/demo:1
    """


def test_cronjob_runs_on_schedule_and_suspends(k: Capstan) -> None:
    k.apply(CRONJOB)

    def completed_jobs() -> list[str]:
        done = [
            j["metadata"]["name"]
            for j in k.items("jobs")
            if any(
                c["type"] == "Complete" and c["status"] == "True"
                for c in j.get("status", {}).get("conditions", [])
            )
        ]
        return done if len(done) >= 2 else []

    done = eventually(completed_jobs, "two completed jobs of the cronjob", timeout=60)
    assert all(name.startswith("tick-") for name in done)
    pods = k.items("pods", "-l", f"job-name={done[0]}")
    assert pods and pods[0]["status"]["phase"] == "Succeeded"
    assert k("logs", pods[0]["metadata"]["name"]).strip() == "tick"
    assert k.get("cronjob", "tick")["status"].get("lastScheduleTime")

    # History is bounded, and a suspended CronJob starts nothing new.
    eventually(lambda: len(k.items("jobs")) <= 3, "job history trimmed to the limit", timeout=30)
    k.apply(CRONJOB.replace("  schedule:", "  suspend: true\n  schedule:"))
    assert k.get("cronjob", "tick")["spec"]["suspend"] is True
    time.sleep(1)  # let a run already started by the controller land first
    before = {j["metadata"]["name"] for j in k.items("jobs")}
    time.sleep(7)  # more than two periods of the schedule
    assert {j["metadata"]["name"] for j in k.items("jobs")} <= before


def test_cascading_delete_background_foreground_orphan(k: Capstan) -> None:
    for name in ("bg", "fg", "orphan"):
        k.apply(deployment(name))
    for name in ("bg", "fg", "orphan"):
        k.wait_rollout(f"deployment/{name}")

    def pods_of(app: str) -> set[str]:
        return {p["metadata"]["name"] for p in k.items("pods", "-l", f"app={app}")}

    def replicasets_of(app: str) -> set[str]:
        return {r["metadata"]["name"] for r in k.items("replicasets", "-l", f"app={app}")}

    # Background (the default): the Deployment goes at once, the garbage collector then
    # removes its ReplicaSet and pods.
    k("delete", "deployment", "bg")
    eventually(lambda: not replicasets_of("bg"), "bg's replicaset to be collected", timeout=60)
    eventually(lambda: not pods_of("bg"), "bg's pods to be collected", timeout=60)

    # Foreground: the Deployment stays (with a deletion timestamp) until its dependents are gone.
    k("delete", "deployment", "fg", "--cascade=foreground")
    eventually(lambda: not pods_of("fg"), "fg's pods to go first", timeout=60)
    eventually(lambda: "fg" not in k.names("deployments"), "fg itself to go", timeout=60)
    assert not replicasets_of("fg")

    # Orphan: the Deployment goes, its ReplicaSet and pods stay, no longer owned.
    orphan_pods = pods_of("orphan")
    k("delete", "deployment", "orphan", "--cascade=orphan")
    eventually(lambda: "orphan" not in k.names("deployments"), "orphan to go", timeout=60)
    (rs,) = k.items("replicasets", "-l", "app=orphan")
    assert not rs["metadata"].get("ownerReferences"), rs["metadata"]
    assert pods_of("orphan") == orphan_pods

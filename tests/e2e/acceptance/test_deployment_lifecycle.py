"""Scenario 5: a Deployment's life: scale, an image update recorded with its change-cause,
rollout status/history/undo to a revision, and pause/resume."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually

pytestmark = [pytest.mark.e2e]


def manifest(image: str, cause: str, replicas: int = 2) -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      annotations:
        kubernetes.io/change-cause: "{cause}"
    spec:
      replicas: {replicas}
      strategy:
        rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}
      selector:
        matchLabels: {{app: web}}
      template:
        metadata:
          labels: {{app: web}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: demo
            image: {image}
            ports:
            - {{containerPort: 8080}}
            readinessProbe:
              httpGet: {{path: /ready, port: 8080}}
              periodSeconds: 1
    """


def history(k: Capstan) -> dict[str, str]:
    """REVISION -> CHANGE-CAUSE."""
    lines = k("rollout", "history", "deployment/web").splitlines()
    assert lines[0] == "deployment.apps/web" and lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    return {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in lines[2:]}


def live_images(k: Capstan) -> list[str]:
    """The images of the deployment's pods that are not being deleted."""
    return sorted(
        p["spec"]["containers"][0]["image"]
        for p in k.items("pods", "-l", "app=web")
        if "deletionTimestamp" not in p["metadata"]
    )


def settled(k: Capstan, replicas: int, image: str) -> bool:
    dep = k.get("deployment", "web")
    status = dep.get("status", {})
    assert status.get("observedGeneration") == dep["metadata"]["generation"], status
    assert status.get("updatedReplicas") == replicas, status
    assert status.get("availableReplicas") == replicas, status
    assert live_images(k) == [image] * replicas, live_images(k)
    return True


def test_deployment_lifecycle(k: Capstan) -> None:
    k.apply(manifest("capstan/demo:1", "demo version 1"))
    out = k.wait_rollout("deployment/web")
    assert out.strip().endswith('deployment "web" successfully rolled out'), out
    eventually(lambda: settled(k, 2, "capstan/demo:1"), "2 replicas of demo:1")

    # scale
    assert k("scale", "deployment", "web", "--replicas=4").strip() == "deployment.apps/web scaled"
    k.wait_rollout("deployment/web")
    eventually(lambda: settled(k, 4, "capstan/demo:1"), "4 replicas")
    row = k("get", "deployment", "web", "--no-headers").split()
    assert row[1:4] == ["4/4", "4", "4"], row

    # image update with its change-cause
    k.apply(manifest("capstan/demo:2", "update to demo 2", replicas=4))
    k.wait_rollout("deployment/web")
    eventually(lambda: settled(k, 4, "capstan/demo:2"), "4 replicas of demo:2")
    assert history(k) == {"1": "demo version 1", "2": "update to demo 2"}
    rs = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r for r in k.items("rs")}
    assert rs["capstan/demo:1"]["spec"]["replicas"] == 0
    assert rs["capstan/demo:2"]["spec"]["replicas"] == 4
    assert "image: capstan/demo:2" in k("rollout", "history", "deployment/web", "--revision", "2")

    # undo to revision 1: its template comes back as revision 3
    assert "rolled back" in k("rollout", "undo", "deployment/web", "--to-revision", "1")
    k.wait_rollout("deployment/web")
    eventually(lambda: settled(k, 4, "capstan/demo:1"), "back on demo:1")
    revisions = history(k)
    assert sorted(revisions) == ["2", "3"], revisions

    # pause: a template change is recorded but not rolled out until resume
    assert k("rollout", "pause", "deployment/web").strip() == "deployment.apps/web paused"
    k.apply(manifest("capstan/demo:2", "update while paused", replicas=4))

    def observed() -> dict[str, Any]:
        dep = k.get("deployment", "web")
        assert dep["status"].get("observedGeneration") == dep["metadata"]["generation"]
        return dep

    dep = eventually(observed, "the paused update observed")
    assert dep["spec"]["paused"] is True
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "capstan/demo:2"
    assert live_images(k) == ["capstan/demo:1"] * 4
    assert k.run("rollout", "status", "deployment/web", "--timeout", "2").rc != 0
    assert k("rollout", "resume", "deployment/web").strip() == "deployment.apps/web resumed"
    k.wait_rollout("deployment/web")
    eventually(lambda: settled(k, 4, "capstan/demo:2"), "demo:2 after resume")
    assert history(k)["4"] == "update while paused"

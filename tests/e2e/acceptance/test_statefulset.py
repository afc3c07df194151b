"""Scenario 9: a StatefulSet of 3 behind a headless Service: pods start in order, each has a
stable DNS name resolving to its own IP, and each has its own volume (from the default
StorageClass) that outlives the pod."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually

pytestmark = [pytest.mark.e2e]

MANIFEST = """
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      clusterIP: None
      selector: {app: web}
      ports:
      - {name: http, port: 8080}
    ---
    apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: web
    spec:
      serviceName: web
      replicas: 3
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: demo
            image: capstan/demo:1
            ports:
            - {name: http, containerPort: 8080}
            readinessProbe:
              httpGet: {path: /ready, port: 8080}
              periodSeconds: 1
            volumeMounts:
            - {name: data, mountPath: /data}
      volumeClaimTemplates:
      - metadata:
          name: data
        spec:
          accessModes: [ReadWriteOnce]
          resources:
            requests:
              storage: 10Mi
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: client
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: util
        image: capstan/util:1
"""


def resolve(k: Capstan, name: str, ip: str) -> None:
    """name resolves (through the cluster DNS, from a pod) to exactly ip."""
    out = k.exec_until("client", f"nslookup {name}", ip)
    answer = out.split(f"Name:\t{name}", 1)[1]
    assert re.findall(r"Address: (\S+)", answer) == [ip], out


def test_statefulset(k: Capstan) -> None:
    watch = k.watch("pods", "-l", "app=web")
    k.apply(MANIFEST)
    k.wait_rollout("statefulset/web")
    lines = watch.stop()

    # Ordered start: web-N+1 appears only once web-N is Running and ready.
    for n in (1, 2):
        first = next(i for i, line in enumerate(lines) if line.startswith(f"web-{n} "))
        before = lines[:first]
        assert any(re.match(rf"web-{n - 1}\s+1/1\s+Running", line) for line in before), lines

    pods = {f"web-{n}": k.wait_ready(f"web-{n}") for n in range(3)}
    claims = {c["metadata"]["name"]: c for c in k.items("pvc")}
    assert sorted(claims) == ["data-web-0", "data-web-1", "data-web-2"]
    default_class = next(
        sc["metadata"]["name"]
        for sc in k.items("storageclass")
        if sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    )
    for claim in claims.values():
        assert claim["status"]["phase"] == "Bound"
        pv = k.get("pv", claim["spec"]["volumeName"])
        assert pv["spec"]["storageClassName"] == default_class
    for name, pod in pods.items():
        claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")
        assert claim["persistentVolumeClaim"]["claimName"] == f"data-{name}"

    # Stable network identity: hostname and per-pod DNS names under the headless Service.
    k.wait_ready("client")
    for name, pod in pods.items():
        assert k.exec(name, "hostname").out.strip() == name
        resolve(k, f"{name}.web.{k.ns}.svc.cluster.local", pod["status"]["podIP"])
    k.exec_until("client", "timeout 5 wget -qO- http://web-1.web:8080/", "hostname: web-1")

    # Per-pod storage that survives the pod.
    for name in pods:
        assert k.exec(name, f"echo written by {name} > /data/note").rc == 0
    old_uid = pods["web-0"]["metadata"]["uid"]
    assert k("delete", "pod", "web-0", "--wait", timeout=60).strip() == 'pod "web-0" deleted'

    def replaced() -> dict[str, Any]:
        pod = k.pod_ready("web-0")
        assert pod["metadata"]["uid"] != old_uid, "still the old web-0"
        return pod

    new = eventually(replaced, "a new web-0")
    assert k.exec("web-0", "cat /data/note").out.strip() == "written by web-0"
    assert k.exec("web-1", "cat /data/note").out.strip() == "written by web-1"
    resolve(k, f"web-0.web.{k.ns}.svc.cluster.local", new["status"]["podIP"])

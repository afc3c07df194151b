"""Scenario 1: one pod of the demo image through its whole life: Pending to Running, describe
with its events, logs, exec, port-forward, and deletion within its grace period."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually

pytestmark = [pytest.mark.e2e]

DEMO = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: demo
      labels: {app: demo}
    spec:
      containers:
      - name: demo
        image: capstan/demo:1
        ports:
        - {name: http, containerPort: 8080}
"""

# A process that ignores SIGTERM: only the kill at the end of its grace period stops it.
STUBBORN = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: stubborn
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: main
        image: capstan/util:1
        command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"""


def statuses(lines: list[str], pod: str) -> list[str]:
    """The STATUS column of a `get pods -w` table, for one pod, in order."""
    return [line.split()[2] for line in lines if line.split()[:1] == [pod]]


def test_pod_lifecycle(k: Capstan) -> None:
    watch = k.watch("pods")
    k.apply(DEMO)
    k.wait_ready("demo")
    watch.wait_for(r"^demo\s+1/1\s+Running")
    seen = statuses(watch.stop(), "demo")
    assert seen[0] == "Pending", seen
    assert seen[-1] == "Running", seen

    described = k("describe", "pod", "demo")
    events = described.split("Events:")[1]
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert re.search(rf"Normal\s+{reason}\s", events), f"no {reason} event:\n{events}"
    assert "Successfully assigned" in events and "capstan/demo:1" in events

    # exec: output and the command's own exit code.
    served = k.exec("demo", "wget -qO- http://127.0.0.1:8080/version; exit 7")
    assert served.rc == 7 and served.out.strip() == "1", served
    assert k.run("exec", "demo", "--", "hostname").out.strip() == "demo"

    # port-forward: a local port on this host's loopback, tunnelled through the apiserver to
    # the kubelet and into the pod.
    forward = subprocess.Popen(
        k.argv(("port-forward", "demo", ":8080"), True),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert forward.stdout is not None
        first = forward.stdout.readline()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", first)
        assert match, f"port-forward said {first!r}"
        url = f"http://127.0.0.1:{match[1]}/version?via=port-forward"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200 and reply.read().decode().strip() == "1"
    finally:
        forward.terminate()
        forward.wait(timeout=10)

    # logs: the demo logs every request, the exec'd one and the forwarded one.
    def forwarded_logged() -> str:
        logs = k("logs", "demo")
        assert "via=port-forward" in logs, logs
        return logs

    logs = eventually(forwarded_logged, "the forwarded request in the logs", timeout=10)
    assert re.search(r'"GET /version HTTP/1.1" 200', logs), logs
    assert "listening on :8080" in logs

    # delete: the demo stops at once on SIGTERM; the stubborn pod takes its full grace period,
    # Terminating meanwhile.
    started = time.monotonic()
    assert k("delete", "pod", "demo", "--wait").strip() == 'pod "demo" deleted'
    assert time.monotonic() - started < 10

    k.apply(STUBBORN)
    k.wait_ready("stubborn")
    started = time.monotonic()
    k("delete", "pod", "stubborn")
    assert "Terminating" in k("get", "pod", "stubborn")

    def gone() -> bool:
        res = k.run("get", "pod", "stubborn")
        return res.rc != 0 and "NotFound" in res.err

    eventually(gone, "stubborn to be deleted", timeout=30, interval=0.2)
    elapsed = time.monotonic() - started
    assert 2.5 <= elapsed < 15, f"deleted after {elapsed:.1f}s with a 3 s grace period"

"""Scenario 8: a ConfigMap and a Secret as environment variables and as volumes; a change to
the ConfigMap reaches the mounted files of the running pod (not its environment, which is
fixed at start, as in Kubernetes)."""

from __future__ import annotations

import pytest

from tests.e2e.acceptance.cluster import Capstan

pytestmark = [pytest.mark.e2e]


def config(level: str) -> str:
    return f"""
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: app-config
    data:
      LOG_LEVEL: {level}
      GREETING: hello
      app.properties: |
        parameter1 = value1
        log.level = {level}
    """


SECRET = """
    apiVersion: v1
    kind: Secret
    metadata:
      name: app-secret
    type: Opaque
    stringData:
      DB_PASSWORD: s3cr3t
    data:
      api-token: dG9rZW4tdmFsdWU=
"""

POD = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: app
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: demo
        image: capstan/demo:1
        env:
        - name: LEVEL_AT_START
          valueFrom:
            configMapKeyRef: {name: app-config, key: LOG_LEVEL}
        - name: TOKEN
          valueFrom:
            secretKeyRef: {name: app-secret, key: api-token}
        envFrom:
        - configMapRef: {name: app-config}
          prefix: CFG_
        - secretRef: {name: app-secret}
        volumeMounts:
        - {name: config, mountPath: /etc/app}
        - {name: secret, mountPath: /etc/secret, readOnly: true}
      volumes:
      - name: config
        configMap: {name: app-config}
      - name: secret
        secret:
          secretName: app-secret
          defaultMode: 0400
"""


def test_configmap_and_secret(k: Capstan) -> None:
    k.apply(config("info") + "\n---\n" + SECRET + "\n---\n" + POD)
    k.wait_ready("app")

    env = dict(
        line.split("=", 1) for line in k("exec", "app", "--", "env").splitlines() if "=" in line
    )
    assert env["LEVEL_AT_START"] == "info"
    assert env["TOKEN"] == "token-value"
    assert env["CFG_LOG_LEVEL"] == "info" and env["CFG_GREETING"] == "hello"
    assert env["DB_PASSWORD"] == "s3cr3t"

    files = k.exec("app", "cat /etc/app/LOG_LEVEL; echo; cat /etc/app/app.properties")
    assert files.out.split() == ["info", "parameter1", "=", "value1", "log.level", "=", "info"]
    secret = k.exec("app", "cat /etc/secret/api-token /etc/secret/DB_PASSWORD")
    assert secret.out == "token-values3cr3t", secret
    assert k.exec("app", "stat -L -c %a /etc/secret/api-token").out.strip() == "400"
    refused = k.exec("app", "echo x > /etc/app/LOG_LEVEL")
    assert refused.rc != 0 and "Read-only file system" in refused.err, refused

    # Live update: the mounted files change within the kubelet's sync; the env does not.
    k.apply(config("debug"))
    k.exec_until("app", "cat /etc/app/LOG_LEVEL", "debug", timeout=90)
    assert "log.level = debug" in k.exec("app", "cat /etc/app/app.properties").out
    assert k.exec("app", 'echo "$LEVEL_AT_START $CFG_LOG_LEVEL"').out.strip() == "info info"

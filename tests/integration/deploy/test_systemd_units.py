"""deploy/: the systemd units load cleanly (systemd-analyze verify), keep their hardening
(systemd-analyze security --offline), and every flag the example env files pass exists in the
daemon it is passed to. systemd itself cannot run here; these checks need only its analyzer."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
EXAMPLE_ENV = sorted((DEPLOY / "examples").rglob("*.env"))
ANALYZE = shutil.which("systemd-analyze")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

# Exposure scores (0 = locked down, 10 = unconfined) the units must stay at or under; the kubelet
# is root with the host's mount table by design (see its unit).
MAX_EXPOSURE = {
    "capstan-apiserver.service": 2.0,
    "capstan-scheduler.service": 2.0,
    "capstan-controller.service": 2.0,
    "capstan-etcd.service": 3.5,
    "capstan-proxy.service": 4.5,
    "capstan-kubelet.service": 8.0,
}


@pytest.fixture(scope="module")
def unit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units with ExecStart pointed at an existing binary: verify checks that the
    command exists, and /opt/capstan is not installed on a development machine."""
    out = tmp_path_factory.mktemp("units")
    shutil.copytree(DEPLOY / "systemd", out, dirs_exist_ok=True)
    true = shutil.which("true") or "/bin/true"
    for unit in out.glob("*.service"):
        text = re.sub(r"^ExecStart=\S+", f"ExecStart={true}", unit.read_text(), flags=re.M)
        unit.write_text(text)
    return out


def test_every_daemon_has_a_unit() -> None:
    names = {u.name for u in UNITS}
    assert names == set(MAX_EXPOSURE)
    assert (DEPLOY / "systemd" / "capstan-kubelet.service.d" / "10-docker.conf").is_file()


@needs_analyze
def test_units_verify(unit_dir: Path) -> None:
    units = [str(u) for u in sorted(unit_dir.glob("*.service"))]
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice"}
    result = subprocess.run(
        [str(ANALYZE), "verify", *units], capture_output=True, text=True, env=env, timeout=60
    )
    ours = [line for line in result.stderr.splitlines() if "capstan" in line]
    assert result.returncode == 0 and not ours, result.stderr


@needs_analyze
@pytest.mark.parametrize("unit", sorted(MAX_EXPOSURE))
def test_hardening_exposure(unit_dir: Path, unit: str) -> None:
    result = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", str(unit_dir / unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    if found is None:
        pytest.skip(f"this systemd-analyze cannot score offline: {result.stderr.strip()}")
    assert float(found.group(1)) <= MAX_EXPOSURE[unit]


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments, quotes)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{path}: bad line {line!r}"
        out[key] = " ".join(shlex.split(value))
    return out


def test_units_reference_what_the_examples_define() -> None:
    defined: set[str] = set()
    for path in EXAMPLE_ENV:
        defined |= set(env_file(path))
    for unit in UNITS:
        used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", unit.read_text()))
        # etcd's unit passes nothing on its command line: etcd reads ETCD_* itself.
        assert used <= defined, f"{unit.name} uses undefined {sorted(used - defined)}"


ARGS_TO_DAEMON = {
    "APISERVER_ARGS": "apiserver",
    "SCHEDULER_ARGS": "scheduler",
    "CONTROLLER_ARGS": "controller",
    "KUBELET_ARGS": "kubelet",
    "PROXY_ARGS": "proxy",
}


def daemon_flags(module: str) -> set[str]:
    if importlib.util.find_spec(f"{module}.__main__") is None:
        pytest.skip(f"services/{module} has no command line yet")
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return set(re.findall(r"--[a-z0-9-]+", out))


@pytest.mark.parametrize("variable", sorted(ARGS_TO_DAEMON))
def test_example_flags_exist(variable: str) -> None:
    used: set[str] = set()
    for path in EXAMPLE_ENV:
        value = env_file(path).get(variable)
        if value:
            used |= {arg.split("=", 1)[0] for arg in value.split() if arg.startswith("--")}
    unit = (DEPLOY / "systemd" / f"capstan-{ARGS_TO_DAEMON[variable]}.service").read_text()
    used |= set(re.findall(r"(--[a-z0-9-]+)=", unit))
    assert used, f"no example sets {variable}"
    known = daemon_flags(ARGS_TO_DAEMON[variable])
    assert used <= known, f"{variable}: unknown flags {sorted(used - known)}"

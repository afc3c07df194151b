"""Argument handling: resource/name forms, label changes, --from-* data, the config file,
and `--help` on every verb."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from capstan.cli.apply import collect_data
from capstan.cli.common import CliError, duration_seconds, parse_targets
from capstan.cli.config import resolve_settings
from capstan.cli.labels import Changes, apply_changes, split_args
from capstan.cli.main import build_parser, main

pytestmark = pytest.mark.unit


def _names(args: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(t.kind.kind, t.names) for t in parse_targets(args)]


def test_parse_targets_forms() -> None:
    assert _names(["po"]) == [("Pod", ())]
    assert _names(["pods", "a", "b"]) == [("Pod", ("a", "b"))]
    assert _names(["pods,svc,deploy"]) == [("Pod", ()), ("Service", ()), ("Deployment", ())]
    assert _names(["pods/a", "svc/b", "pod/c"]) == [("Pod", ("a", "c")), ("Service", ("b",))]
    assert _names(["deployments.apps"]) == [("Deployment", ())]
    assert [k for k, _ in _names(["all"])][:2] == ["Pod", "Service"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["widgets"], 'doesn\'t have a resource type "widgets"'),
        (["pods,svc", "a"], "only one resource type"),
        (["pods/a", "b"], "resource/name form"),
        (["pods/"], "must have a name"),
    ],
)
def test_parse_targets_errors(args: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message):
        parse_targets(args)


def test_label_changes() -> None:
    resources, changes = split_args(["pods", "web", "a=1", "b-", "c="])
    assert resources == ["pods", "web"]
    assert changes == Changes({"a": "1", "c": ""}, ["b"])
    # A name ending in "-" right after the type is a name, not a removal.
    resources, changes = split_args(["pods/web-", "a=1"])
    assert resources == ["pods/web-"]
    with pytest.raises(CliError, match="both modify and remove"):
        split_args(["pods", "web", "a=1", "a-"])
    assert apply_changes({"a": "1"}, Changes({"a": "1", "b": "2"}, []), False) == {
        "a": "1",
        "b": "2",
    }
    with pytest.raises(CliError, match=r"'a' already has a value \(1\), and --overwrite is false"):
        apply_changes({"a": "1"}, Changes({"a": "2"}, []), False)
    assert apply_changes({"a": "1", "b": "2"}, Changes({"a": "3"}, ["b"]), True) == {"a": "3"}


def test_collect_data(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("1")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "x").write_text("X")
    (d / "y").write_bytes(b"\xff")
    env = tmp_path / "app.env"
    env.write_text("# comment\nA=1\n\nB=two=2\n")
    data = collect_data(
        ["lit=v"],
        [str(tmp_path / "one.txt"), f"renamed={tmp_path / 'one.txt'}", str(d)],
        [str(env)],
    )
    assert data == {
        "lit": b"v",
        "one.txt": b"1",
        "renamed": b"1",
        "x": b"X",
        "y": b"\xff",
        "A": b"1",
        "B": b"two=2",
    }
    with pytest.raises(CliError, match='cannot add key "lit"'):
        collect_data(["lit=a", "lit=b"], [], [])
    with pytest.raises(CliError, match="expected KEY=VALUE"):
        collect_data(["novalue"], [], [])
    with pytest.raises(CliError, match="no such file"):
        collect_data([], [str(tmp_path / "missing")], [])


CONFIG = """\
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod
  cluster: {server: "10.0.0.1:6443,10.0.0.2:6443", certificate-authority: /etc/ca.pem}
- name: local
  cluster: {server: "127.0.0.1:6443", insecure: true}
users:
- name: admin
  user: {client-certificate: /etc/admin.pem, client-key: /etc/admin-key.pem}
contexts:
- name: prod
  context: {cluster: prod, user: admin, namespace: shop}
- name: dev
  context: {cluster: local, namespace: dev}
"""


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> argparse.Namespace:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    monkeypatch.setenv("CAPSTAN_CONFIG", str(path))
    monkeypatch.delenv("CAPSTAN_SERVER", raising=False)
    monkeypatch.delenv("CAPSTAN_NAMESPACE", raising=False)
    args, _ = build_parser().parse_known_args([*argv, "get", "pods"])
    return args


def test_config_file_contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = resolve_settings(_settings(tmp_path, monkeypatch))
    assert s.servers == ["10.0.0.1:6443", "10.0.0.2:6443"]
    assert (s.namespace, s.namespace_explicit) == ("shop", False)
    assert (s.ca_file, s.cert_file, s.key_file) == (
        "/etc/ca.pem",
        "/etc/admin.pem",
        "/etc/admin-key.pem",
    )
    assert not s.insecure

    dev = resolve_settings(_settings(tmp_path, monkeypatch, "--context", "dev"))
    assert (dev.servers, dev.namespace, dev.insecure) == (["127.0.0.1:6443"], "dev", True)

    flags = resolve_settings(
        _settings(tmp_path, monkeypatch, "-s", "127.0.0.1:1", "-n", "x", "--insecure")
    )
    assert (flags.servers, flags.namespace, flags.namespace_explicit) == (
        ["127.0.0.1:1"],
        "x",
        True,
    )
    assert flags.insecure

    args = _settings(tmp_path, monkeypatch)
    monkeypatch.setenv("CAPSTAN_SERVER", "127.0.0.1:2")
    env = resolve_settings(args)
    assert env.servers == ["127.0.0.1:2"]


def test_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CliError, match='context "nope" not found'):
        resolve_settings(_settings(tmp_path, monkeypatch, "--context", "nope"))
    monkeypatch.setenv("CAPSTAN_CONFIG", str(tmp_path / "absent"))
    args, _ = build_parser().parse_known_args(["get", "pods"])
    with pytest.raises(CliError, match="no apiserver given"):
        resolve_settings(args)


def test_config_verb_edits_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cfg"
    monkeypatch.setenv("CAPSTAN_CONFIG", str(path))
    assert main(["config", "set-cluster", "local", "--server", "127.0.0.1:6443", "--insecure"]) == 0
    assert main(["config", "set-context", "dev", "--cluster", "local", "--namespace", "dev"]) == 0
    assert main(["config", "use-context", "dev"]) == 0
    assert main(["config", "use-context", "nope"]) == 1
    capsys.readouterr()
    assert main(["config", "current-context"]) == 0
    assert capsys.readouterr().out == "dev\n"
    args, _ = build_parser().parse_known_args(["get", "pods"])
    s = resolve_settings(args)
    assert (s.servers, s.namespace, s.insecure) == (["127.0.0.1:6443"], "dev", True)


def _verbs(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out.extend(_verbs(sub, (*prefix, name)))
    return out


def test_every_verb_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    verbs = _verbs(build_parser())
    assert {("get",), ("apply",), ("rollout", "undo"), ("create", "secret", "generic")} <= set(
        verbs
    )
    for verb in verbs:
        with pytest.raises(SystemExit) as exit_info:
            main([*verb, "--help"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: capstan {verb[0]}")


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["get", "pods", "--bogus"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5m", 90.0)],
)
def test_durations_read_like_kubectl(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1s", "m", "1 h"])
def test_bad_durations_name_the_problem(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        duration_seconds(text)

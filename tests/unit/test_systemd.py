"""sd_notify: the datagrams a Type=notify unit's daemon sends, received on a real unix socket."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from capstan import daemon, systemd

pytestmark = pytest.mark.unit


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(2)


def test_notify_sends_one_datagram(notify_socket: socket.socket) -> None:
    assert systemd.notify("READY=1", "STATUS=serving")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=serving"


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"capstan-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not systemd.notify("READY=1")


def test_a_gone_socket_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "missing.sock"))
    assert not systemd.notify("READY=1")


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [("", "", None), ("0", "", None), ("4000000", "", 2.0), ("4000000", "self", 2.0),
     ("4000000", "1", None)],
)  # fmt: skip
def test_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch, usec: str, pid: str, expected: float | None
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert systemd.watchdog_interval() == expected


async def test_lifecycle_ready_watchdog_stopping(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a ping every 50 ms
    async with systemd.lifecycle("serving"):
        await asyncio.sleep(0.18)
    messages = received(notify_socket)
    assert messages[0] == "READY=1\nSTATUS=serving"
    assert messages[-1] == "STOPPING=1"
    assert 3 <= messages.count("WATCHDOG=1") <= 5, messages


def test_run_daemon_reports_ready_then_stopping(notify_socket: socket.socket) -> None:
    args = daemon.base_parser("capstan-test", "test").parse_args(
        ["--server", "127.0.0.1:1", "--insecure", "--metrics-listen", ""]
    )
    seen_while_running: list[list[str]] = []

    async def main(runtime: daemon.Runtime) -> None:
        await asyncio.sleep(0.05)
        seen_while_running.append(received(notify_socket))

    assert daemon.run_daemon(args, main) == 0
    assert seen_while_running == [["READY=1"]]
    assert received(notify_socket) == ["STOPPING=1"]

"""Test images built locally FROM scratch from the host's static busybox: no registry is
reachable from the sandbox, and building this tiny context takes about a second."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BUSYBOX = "capstan-test/busybox:1"
PAUSE = "capstan-test/pause:1"

_BASE = (
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    'RUN ["/bin/mkdir", "-m", "1777", "/tmp"]\n'
)


def build_test_images() -> None:
    """BUSYBOX (CMD sh) and PAUSE (sleeps forever) in the dockerd at DOCKER_HOST."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    # The legacy builder needs no buildx plugin; it is enough for COPY and RUN.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy(busybox, Path(ctx) / "busybox")
        for tag, cmd in ((BUSYBOX, '["/bin/sh"]'), (PAUSE, '["/bin/sleep", "2147483647"]')):
            (Path(ctx) / "Dockerfile").write_text(_BASE + f"CMD {cmd}\n")
            subprocess.run(
                ["docker", "build", "-q", "-t", tag, ctx],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
            )

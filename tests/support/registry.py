"""A real image registry for e2e tests: Debian's docker-registry (the CNCF distribution server)
on a free loopback port with a throw-away storage directory, optionally behind htpasswd basic
auth, stopped by its own PID when the context ends.

Loopback only: dockerd treats 127.0.0.0/8 registries as insecure by default, so plain HTTP
serves real pushes and pulls without certificates, and nothing leaves the sandbox."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import signal
import tempfile
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.etcd import free_port

with warnings.catch_warnings():
    # Deprecated since 3.11 (gone in 3.13), but the stdlib's only bcrypt: no new dependency.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

# The registry verifies the bcrypt hash on every request; the minimum cost keeps pulls fast.
_BCRYPT_ROUNDS = 2**4


@dataclass(frozen=True)
class RegistryCredentials:
    username: str
    password: str
    realm: str = "capstan-test"


@dataclass(frozen=True)
class RunningRegistry:
    host: str  # "127.0.0.1:PORT", the registry part of an image reference
    credentials: RegistryCredentials | None
    storage_dir: Path
    pid: int

    def image(self, repository: str, tag: str) -> str:
        return f"{self.host}/{repository}:{tag}"

    def docker_auth(self) -> dict[str, str]:
        """The X-Registry-Auth config Docker's push and pull endpoints take."""
        if self.credentials is None:
            return {}
        return {
            "username": self.credentials.username,
            "password": self.credentials.password,
            "serveraddress": self.host,
        }

    def dockerconfigjson(self) -> bytes:
        """The `.dockerconfigjson` key of a kubernetes.io/dockerconfigjson Secret for this
        registry, in the form `kubectl create secret docker-registry` writes."""
        if self.credentials is None:
            raise ValueError("the registry has no credentials")
        user, password = self.credentials.username, self.credentials.password
        entry = {
            "username": user,
            "password": password,
            "auth": base64.b64encode(f"{user}:{password}".encode()).decode(),
        }
        return json.dumps({"auths": {self.host: entry}}).encode()


def registry_binary() -> str | None:
    """The docker-registry server, or None where the package is not installed."""
    return shutil.which("docker-registry")


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry, the only hash the registry's htpasswd auth accepts."""
    salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=_BCRYPT_ROUNDS)
    return f"{username}:{crypt.crypt(password, salt)}\n"


def _config(port: int, storage: Path, htpasswd: Path | None, realm: str) -> str:
    # JSON is YAML: no YAML writer needed for the registry's config file.
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": realm, "path": str(htpasswd)}}
    return json.dumps(config, indent=2)


async def _v2_status(host: str) -> int | None:
    """The HTTP status of GET /v2/ (the registry's API check), None while nothing listens."""
    address, port = host.split(":")
    try:
        reader, writer = await asyncio.open_connection(address, int(port))
    except OSError:
        return None
    try:
        writer.write(f"GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = status_line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def run_registry(
    credentials: RegistryCredentials | None = None,
    *,
    binary: str | None = None,
    timeout: float = 20.0,
) -> AsyncIterator[RunningRegistry]:
    """Serve a registry until the context ends; ready once /v2/ answers (401 with auth)."""
    server = binary or registry_binary()
    if server is None:
        raise FileNotFoundError("docker-registry is not installed (tools/setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="capstan-registry-") as tmp:
        root = Path(tmp)
        htpasswd: Path | None = None
        if credentials is not None:
            htpasswd = root / "htpasswd"
            htpasswd.write_text(htpasswd_line(credentials.username, credentials.password))
        port = free_port()
        config = root / "config.yml"
        realm = credentials.realm if credentials is not None else ""
        config.write_text(_config(port, root / "storage", htpasswd, realm))
        log_path = root / "registry.log"
        # The child keeps its own copy of the descriptor; ours closes once it is spawned.
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                server, "serve", str(config), stdout=log, stderr=log
            )
        running = RunningRegistry(f"127.0.0.1:{port}", credentials, root / "storage", process.pid)
        want = 401 if credentials is not None else 200
        try:
            async with asyncio.timeout(timeout):
                while (status := await _v2_status(running.host)) != want:
                    if process.returncode is not None:
                        raise RuntimeError(
                            f"docker-registry exited with {process.returncode}: "
                            f"{log_path.read_text(errors='replace')[-2000:]}"
                        )
                    if status is not None:
                        raise RuntimeError(f"GET /v2/ answered {status}, expected {want}")
                    await asyncio.sleep(0.05)
            yield running
        finally:
            await _stop(process)

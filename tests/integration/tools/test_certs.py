"""tools/certs: the certificates it makes work where a deployment uses them - an apiserver with
mutual TLS (reached through capstan.client with the admin certificate) and an etcd member with
client and peer TLS - and a second run changes nothing unless the request changed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from capstan.apierrors import UnavailableError
from capstan.client import Client, ClientTLS

from tests.support.etcd import free_port

ROOT = Path(__file__).resolve().parents[3]
CERTS = ROOT / "tools" / "certs"
NODE, NODE_IP = "node-1", "10.0.0.11"
MEMBER = "m0"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed"),
]


def run_certs(out: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, str(CERTS), str(out), "--node", f"{NODE}={NODE_IP}",
         "--etcd-member", f"{MEMBER}=127.0.0.1", *extra],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.stdout


def contents(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def openssl(*args: str | Path) -> str:
    return subprocess.run(
        ["openssl", *map(str, args)], check=True, capture_output=True, text=True, timeout=30
    ).stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    run_certs(out)
    return out


def test_layout_and_key_modes(pki: Path) -> None:
    for stem in (
        "ca", "etcd-ca", "apiserver", "apiserver-kubelet-client", "apiserver-etcd-client",
        "admin", "scheduler", "controller", "proxy", f"kubelet-{NODE}-client",
        f"kubelet-{NODE}", f"etcd-{MEMBER}",
    ):  # fmt: skip
        assert (pki / f"{stem}.crt").is_file(), stem
        assert (pki / f"{stem}.key").stat().st_mode & 0o777 == 0o600, stem


def test_certificates_chain_to_the_right_ca_with_the_right_names(pki: Path) -> None:
    ca, etcd_ca = pki / "ca.crt", pki / "etcd-ca.crt"
    openssl("verify", "-CAfile", ca, "-purpose", "sslserver", pki / "apiserver.crt")
    openssl("verify", "-CAfile", ca, "-purpose", "sslclient", pki / "admin.crt")
    openssl("verify", "-CAfile", ca, "-purpose", "sslserver", pki / f"kubelet-{NODE}.crt")
    openssl("verify", "-CAfile", etcd_ca, "-purpose", "sslclient", pki / f"etcd-{MEMBER}.crt")
    # A cluster client certificate must not open etcd.
    with pytest.raises(subprocess.CalledProcessError):
        openssl("verify", "-CAfile", etcd_ca, pki / "admin.crt")
    kubelet_sans = openssl("x509", "-in", pki / f"kubelet-{NODE}.crt", "-noout", "-ext",
                           "subjectAltName")  # fmt: skip
    assert f"DNS:{NODE}" in kubelet_sans and f"IP Address:{NODE_IP}" in kubelet_sans
    subject = openssl("x509", "-in", pki / f"kubelet-{NODE}-client.crt", "-noout", "-subject")
    assert f"CN = system:node:{NODE}" in subject and "O = system:nodes" in subject
    api_sans = openssl("x509", "-in", pki / "apiserver.crt", "-noout", "-ext", "subjectAltName")
    assert "IP Address:10.96.0.1" in api_sans and "DNS:kubernetes.default.svc" in api_sans


def test_second_run_is_idempotent_and_a_changed_request_reissues(pki: Path, tmp_path: Path) -> None:
    out = tmp_path / "pki"
    shutil.copytree(pki, out)
    first = contents(out)
    assert "everything up to date" in run_certs(out)
    assert contents(out) == first
    assert "made apiserver" in run_certs(out, "--apiserver-san", "api.example.test")
    second = contents(out)
    changed = {name for name in first if first[name] != second[name]}
    assert changed == {"apiserver.crt", "apiserver.key", "apiserver.req"}
    sans = openssl("x509", "-in", out / "apiserver.crt", "-noout", "-ext", "subjectAltName")
    assert "DNS:api.example.test" in sans


@contextlib.asynccontextmanager
async def tls_apiserver(pki: Path, tmp_path: Path) -> AsyncIterator[str]:
    """capstan-apiserver with the generated serving certificate, requiring client
    certificates; readiness is its sd_notify READY=1, as under a Type=notify unit."""
    address = f"127.0.0.1:{free_port()}"
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    log = (tmp_path / "apiserver.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "--listen", address,
        "--store", f"sqlite://{tmp_path / 'state.db'}", "--metrics-listen", "",
        "--tls-cert-file", str(pki / "apiserver.crt"),
        "--tls-key-file", str(pki / "apiserver.key"),
        "--client-ca-file", str(pki / "ca.crt"), "--log-format", "json",
        stdout=log, stderr=log, env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
    )  # fmt: skip
    try:
        loop = asyncio.get_running_loop()
        message = await asyncio.wait_for(loop.sock_recv(notify, 4096), 30)
        assert message.split(b"\n")[0] == b"READY=1"
        yield address
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
        notify.close()


async def test_apiserver_mtls_with_generated_certs(pki: Path, tmp_path: Path) -> None:
    async with tls_apiserver(pki, tmp_path) as address:
        admin = ClientTLS(str(pki / "ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key"))
        async with Client([address], tls=admin) as client:
            names = {ns.metadata.name for ns in (await client.namespaces.list()).items}
            assert {"default", "kube-system"} <= names
        # The same server refuses a client without a certificate from the cluster CA.
        for rejected in (
            ClientTLS(str(pki / "ca.crt")),
            ClientTLS(str(pki / "ca.crt"), str(pki / "apiserver-etcd-client.crt"),
                      str(pki / "apiserver-etcd-client.key")),
        ):  # fmt: skip
            async with Client([address], tls=rejected) as client:
                with pytest.raises(UnavailableError):
                    await client.namespaces.list(timeout=1.5)


@contextlib.contextmanager
def tls_etcd(pki: Path, data: Path) -> Iterator[str]:
    client_url = f"https://127.0.0.1:{free_port()}"
    peer_url = f"https://127.0.0.1:{free_port()}"
    cert, key, ca = pki / f"etcd-{MEMBER}.crt", pki / f"etcd-{MEMBER}.key", pki / "etcd-ca.crt"
    log = (data.parent / "etcd.log").open("wb")
    process = subprocess.Popen(
        ["etcd", "--name", MEMBER, "--data-dir", str(data),
         "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"{MEMBER}={peer_url}", "--log-level", "warn",
         "--cert-file", str(cert), "--key-file", str(key), "--trusted-ca-file", str(ca),
         "--client-cert-auth",
         "--peer-cert-file", str(cert), "--peer-key-file", str(key),
         "--peer-trusted-ca-file", str(ca), "--peer-client-cert-auth"],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        yield client_url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def etcdctl(endpoint: str, pki: Path, client: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["etcdctl", "--endpoints", endpoint, "--cacert", str(pki / "etcd-ca.crt"),
         "--cert", str(pki / f"{client}.crt"), "--key", str(pki / f"{client}.key"),
         "--command-timeout=2s", "endpoint", "health"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed")
def test_etcd_member_serves_with_generated_certs(pki: Path, tmp_path: Path) -> None:
    with tls_etcd(pki, tmp_path / "etcd") as endpoint:
        for _ in range(100):
            healthy = etcdctl(endpoint, pki, "apiserver-etcd-client")
            if healthy.returncode == 0:
                break
            subprocess.run(["sleep", "0.2"], check=True)
        assert healthy.returncode == 0, healthy.stderr
        assert etcdctl(endpoint, pki, "admin").returncode != 0, "etcd accepted a cluster cert"

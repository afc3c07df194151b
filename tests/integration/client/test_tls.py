"""The client over mTLS to a real apiserver (certificates made with the openssl CLI)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from capstan.apierrors import UnavailableError
from capstan.client import Client, ClientTLS
from capstan.grpc_server import TLSConfig

from tests.support.apiserver import run_apiserver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_pki(d: Path) -> None:
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
    )
    for name, ext in (("server", "subjectAltName=DNS:apiserver.test"), ("client", "")):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(d / f"{name}.key"),
            "-out",
            str(d / f"{name}.csr"),
        )
        extfile = d / f"{name}.ext"
        extfile.write_text(ext + "\n" if ext else "basicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
                "-extfile", str(extfile), "-out", str(d / f"{name}.crt"))  # fmt: skip


async def test_mtls(tmp_path: Path) -> None:
    make_pki(tmp_path)
    tls = TLSConfig(
        cert_file=str(tmp_path / "server.crt"),
        key_file=str(tmp_path / "server.key"),
        client_ca_file=str(tmp_path / "ca.crt"),
    )
    async with run_apiserver(f"sqlite://{tmp_path / 'state.db'}", tls=tls) as api:
        good = ClientTLS(
            ca_file=str(tmp_path / "ca.crt"),
            cert_file=str(tmp_path / "client.crt"),
            key_file=str(tmp_path / "client.key"),
            server_name="apiserver.test",
        )
        async with Client([api.address], tls=good, default_timeout=5) as c:
            ns = await c.namespaces.get("default")
            assert ns.metadata.name == "default"
        # Without a client certificate the server refuses the handshake.
        no_cert = ClientTLS(ca_file=str(tmp_path / "ca.crt"), server_name="apiserver.test")
        async with Client([api.address], tls=no_cert, default_timeout=2) as c:
            with pytest.raises(UnavailableError):
                await c.namespaces.get("default")

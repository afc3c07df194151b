"""Build capstan's local images FROM scratch out of Debian's busybox-static, with no registry.

The build context is a tar made here byte for byte deterministically (sorted entries, zero
mtimes and owners), so its sha256 names the content: each image gets a content tag
`<version>-<hash>` next to its version tag (`capstan/demo:1`), and a run whose content tag
already exists only re-points the version tags instead of building. A new busybox, script or
Dockerfile line changes the hash and so rebuilds.

Every busybox applet is a symlink in the tar (`usr/bin/wget -> /bin/busybox`), so the image
needs no RUN step and builds with the daemon's classic builder in well under a second; the
Engine API is used directly (aiodocker, as the kubelet does), which needs no buildx plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker

HERE = Path(__file__).resolve().parent
DEFAULT_BUSYBOX = Path("/bin/busybox")

DEMO_V1 = "capstan/demo:1"
DEMO_V2 = "capstan/demo:2"
UTIL = "capstan/util:1"
PAUSE = "capstan/pause:1"  # also :latest, the kubelet's --pod-infra-container-image default
DEMO_PORT = 8080

# The pause and util images' default command: keeps a container alive (a pod's sandbox, a pod to
# exec into) and stops at once on SIGTERM (a bare `sleep` as PID 1 would ignore it, so every
# deletion would wait out its grace period).
SLEEP_FOREVER = ("sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait")

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class ImageSpec:
    """One image: its repository and version tag, and what goes into it besides busybox."""

    repository: str
    version: str
    title: str
    env: Mapping[str, str] = field(default_factory=dict)
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    app_dir: Path | None = None  # copied to /app
    expose: int | None = None
    latest: bool = False  # also tag <repository>:latest

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.version}"


def _demo(version: str, latest: bool) -> ImageSpec:
    return ImageSpec(
        repository="capstan/demo",
        version=version,
        title=f"capstan demo app, version {version}",
        env={"VERSION": version},
        entrypoint=["/app/entrypoint"],
        app_dir=HERE / "demo" / "app",
        expose=DEMO_PORT,
        latest=latest,
    )


IMAGES: tuple[ImageSpec, ...] = (
    _demo("1", latest=False),
    _demo("2", latest=True),
    ImageSpec(
        repository="capstan/util",
        version="1",
        title="busybox utilities (sh, wget, nc, nslookup, ...)",
        cmd=SLEEP_FOREVER,
        latest=True,
    ),
    ImageSpec(
        repository="capstan/pause",
        version="1",
        title="pod sandbox: holds the pod's network namespace",
        cmd=SLEEP_FOREVER,
        latest=True,
    ),
)


@dataclass(frozen=True)
class BuildResult:
    ref: str
    content_ref: str
    built: bool  # False: the content tag existed, only the tags were set


def busybox_applets(busybox: Path) -> list[str]:
    """Applet paths as busybox installs them (`usr/bin/wget`), relative to /."""
    out = subprocess.run(
        [str(busybox), "--list-full"], check=True, capture_output=True, text=True
    ).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def dockerfile(spec: ImageSpec) -> str:
    lines = ["FROM scratch", "COPY rootfs/ /"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **spec.env}
    lines += [f"ENV {k}={json.dumps(v)}" for k, v in env.items()]
    lines.append(f"LABEL org.opencontainers.image.title={json.dumps(spec.title)}")
    if spec.expose is not None:
        lines.append(f"EXPOSE {spec.expose}")
    if spec.entrypoint is not None:
        lines.append(f"ENTRYPOINT {json.dumps(list(spec.entrypoint))}")
    if spec.cmd is not None:
        lines.append(f"CMD {json.dumps(list(spec.cmd))}")
    return "\n".join(lines) + "\n"


def _entry(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> tarfile.TarInfo:
    """A tar entry that depends on nothing but its name, type, mode and content."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.size = len(data)
    info.linkname = link
    return info


def _parents(paths: Iterable[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parts = p.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(dirs)


def build_context(spec: ImageSpec, busybox: Path = DEFAULT_BUSYBOX) -> bytes:
    """The whole build context (Dockerfile + rootfs/) as tar bytes."""
    files: dict[str, tuple[bytes, int]] = {
        "bin/busybox": (busybox.read_bytes(), 0o755),
        "etc/passwd": (PASSWD.encode(), 0o644),
        "etc/group": (GROUP.encode(), 0o644),
    }
    if spec.app_dir is not None:
        for path in sorted(spec.app_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(spec.app_dir).as_posix()
                # Executable whatever the checkout's modes: app/ holds only the scripts.
                files[f"app/{rel}"] = (path.read_bytes(), 0o755)
    links = [a for a in busybox_applets(busybox) if a not in files]
    dirs = set(_parents([*files, *links])) | {"tmp", "root"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        docker_file = dockerfile(spec).encode()
        tar.addfile(
            _entry("Dockerfile", tarfile.REGTYPE, 0o644, docker_file), io.BytesIO(docker_file)
        )
        tar.addfile(_entry("rootfs", tarfile.DIRTYPE, 0o755))
        for d in sorted(dirs):
            mode = 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755
            tar.addfile(_entry(f"rootfs/{d}", tarfile.DIRTYPE, mode))
        for name, (data, mode) in sorted(files.items()):
            tar.addfile(_entry(f"rootfs/{name}", tarfile.REGTYPE, mode, data), io.BytesIO(data))
        for link in links:
            tar.addfile(_entry(f"rootfs/{link}", tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
    return buf.getvalue()


def content_tag(spec: ImageSpec, context: bytes) -> str:
    return f"{spec.version}-{hashlib.sha256(context).hexdigest()[:12]}"


async def _exists(docker: aiodocker.Docker, ref: str) -> bool:
    try:
        await docker.images.inspect(ref)
    except aiodocker.DockerError as e:
        if e.status == 404:
            return False
        raise
    return True


async def _drop_stale_content_tags(docker: aiodocker.Docker, spec: ImageSpec, keep: str) -> None:
    """Untag earlier builds of this version so rebuilds do not pile up; an image a container
    still uses stays (Docker refuses, and that is fine)."""
    images: list[dict[str, Any]] = await docker.images.list(
        filters={"reference": [spec.repository]}
    )
    prefix = f"{spec.repository}:{spec.version}-"
    for image in images:
        for ref in image.get("RepoTags") or []:
            if ref.startswith(prefix) and ref != keep:
                with contextlib.suppress(aiodocker.DockerError):
                    await docker.images.delete(ref)


async def ensure_image(
    docker: aiodocker.Docker,
    spec: ImageSpec,
    *,
    busybox: Path = DEFAULT_BUSYBOX,
    force: bool = False,
) -> BuildResult:
    """Build spec unless its content tag exists; point its version (and latest) tags at it."""
    context = build_context(spec, busybox)
    content_ref = f"{spec.repository}:{content_tag(spec, context)}"
    built = False
    if force or not await _exists(docker, content_ref):
        await docker.images.build(
            fileobj=io.BytesIO(context), encoding="identity", tag=content_ref, rm=True, forcerm=True
        )
        built = True
    tags = [spec.version, *(["latest"] if spec.latest else [])]
    for tag in tags:
        await docker.images.tag(content_ref, spec.repository, tag=tag)
    await _drop_stale_content_tags(docker, spec, content_ref)
    return BuildResult(spec.ref, content_ref, built)


async def ensure_images(
    docker_host: str | None = None,
    specs: Sequence[ImageSpec] = IMAGES,
    *,
    busybox: Path = DEFAULT_BUSYBOX,
    force: bool = False,
) -> list[BuildResult]:
    """Build every image that is missing or changed; docker_host defaults to $DOCKER_HOST."""
    docker = aiodocker.Docker(url=docker_host)
    try:
        return [await ensure_image(docker, s, busybox=busybox, force=force) for s in specs]
    finally:
        await docker.close()


def select(names: Sequence[str]) -> list[ImageSpec]:
    """Images by ref (`capstan/demo:1`) or repository (`capstan/demo`: every version)."""
    if not names:
        return list(IMAGES)
    chosen = [s for s in IMAGES if s.ref in names or s.repository in names]
    unknown = set(names) - {s.ref for s in chosen} - {s.repository for s in chosen}
    if unknown:
        known = ", ".join(s.ref for s in IMAGES)
        raise SystemExit(f"error: unknown image(s) {', '.join(sorted(unknown))}; known: {known}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tools/images/build",
        description="Build capstan's local images (demo app, utilities) from busybox-static.",
    )
    p.add_argument("images", nargs="*", help="capstan/demo:1, capstan/util, ... (default: all)")
    p.add_argument("--docker-host", help="Docker daemon, e.g. unix:///run/docker.sock "
                   "(default: $DOCKER_HOST, else the local daemon)")  # fmt: skip
    p.add_argument("--busybox", type=Path, default=DEFAULT_BUSYBOX, help="static busybox binary")
    p.add_argument("--force", action="store_true", help="build even if the content tag exists")
    p.add_argument("--list", action="store_true", help="print the images and their content tags")
    args = p.parse_args(argv)
    specs = select(args.images)
    if not args.busybox.is_file():
        p.error(f"{args.busybox} not found: install Debian's busybox-static (tools/setup.sh)")
    if args.list:
        for spec in specs:
            tag = content_tag(spec, build_context(spec, args.busybox))
            print(f"{spec.ref}\t{spec.repository}:{tag}\t{spec.title}")
        return 0
    try:
        results = asyncio.run(
            ensure_images(args.docker_host, specs, busybox=args.busybox, force=args.force)
        )
    except aiodocker.DockerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.ref}\t{r.content_ref}\t{'built' if r.built else 'up to date'}")
    return 0

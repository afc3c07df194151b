"""Pod volumes on the node: emptyDir (disk or tmpfs), hostPath, configMap and secret (one file
per key, swapped in atomically through the `..data` symlink exactly like Kubernetes' atomic
writer so a reader never sees half an update), and persistentVolumeClaim (a bound
hostPath-backed PersistentVolume). Each volume is a directory under
<root-dir>/pods/<uid>/volumes/<name> that containers bind-mount."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from capstan.api.core.v1 import core_pb2

log = structlog.get_logger(__name__)

DEFAULT_MODE = 0o644
DATA_LINK = "..data"


class VolumeError(Exception):
    """A volume cannot be set up yet (missing ConfigMap/Secret/claim)."""


@dataclass
class VolumeSources:
    config_map: Callable[[str, str], core_pb2.ConfigMap | None]
    secret: Callable[[str, str], core_pb2.Secret | None]
    # The host path behind a bound claim (namespace, claim name).
    claim_path: Callable[[str, str], Awaitable[str]]


def _safe_relpath(path: str) -> str:
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts:
        raise VolumeError(f"invalid item path {path!r}")
    return str(Path(*parts))


def projected_files(
    data: Mapping[str, bytes], items: list[core_pb2.KeyToPath], default_mode: int, optional: bool
) -> dict[str, tuple[bytes, int]]:
    """File path -> (content, mode) for a configMap/secret volume: every key, or only items."""
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise VolumeError(f'key "{item.key}" not found')
        mode = item.mode if item.HasField("mode") else default_mode
        out[_safe_relpath(item.path)] = (data[item.key], mode)
    return out


def _read_current(target: Path) -> dict[str, tuple[bytes, int]] | None:
    data_dir = target / DATA_LINK
    if not data_dir.is_symlink():
        return None
    base = data_dir.resolve()
    out: dict[str, tuple[bytes, int]] = {}
    for path in base.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(base))] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return out


def write_atomic(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make target hold exactly files; returns False when it already did. The new payload is
    written into a fresh timestamped directory, then ..data is repointed with one rename()."""
    target.mkdir(parents=True, exist_ok=True)
    if _read_current(target) == files:
        return False
    old = (target / DATA_LINK).resolve() if (target / DATA_LINK).is_symlink() else None
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
    payload = target / stamp
    payload.mkdir()
    for rel, (content, mode) in files.items():
        path = payload / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    tmp = target / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(stamp)
    tmp.replace(target / DATA_LINK)
    wanted = {Path(rel).parts[0] for rel in files}
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted and entry.is_symlink():
            entry.unlink()
    for name in wanted:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    if old is not None and old.name != stamp and old.parent == target:
        shutil.rmtree(old, ignore_errors=True)
    return True


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {err.decode(errors='replace').strip()}")


async def mount_tmpfs(path: Path, size: str = "") -> None:
    if await asyncio.to_thread(os.path.ismount, path):
        return
    opts = "mode=0755" + (f",size={size}" if size else "")
    try:
        await _run("mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path))
    except OSError as e:
        # Not root (a developer's kubelet): the files still work, only not in memory.
        log.warning("tmpfs mount failed; using disk", path=str(path), error=str(e))


class VolumeManager:
    def __init__(self, root_dir: Path, sources: VolumeSources, *, materialize: bool = True) -> None:
        self.root_dir = root_dir
        self.sources = sources
        # A hollow kubelet prepares no files: its containers have nothing to mount them in.
        self.materialize = materialize

    def pod_dir(self, uid: str) -> Path:
        return self.root_dir / "pods" / uid

    def volume_dir(self, uid: str, name: str) -> Path:
        return self.pod_dir(uid) / "volumes" / name

    async def setup(self, pod: core_pb2.Pod) -> dict[str, str]:
        """Create or refresh every volume; returns volume name -> host path. Cheap to repeat:
        configMap/secret contents are rewritten only when they changed."""
        paths: dict[str, str] = {}
        ns, uid = pod.metadata.namespace, pod.metadata.uid
        for volume in pod.spec.volumes:
            source = volume.WhichOneof("source")
            if source == "host_path":
                paths[volume.name] = await self._host_path(volume.host_path)
                continue
            if source == "persistent_volume_claim":
                claim = volume.persistent_volume_claim.claim_name
                paths[volume.name] = await self.sources.claim_path(ns, claim)
                continue
            target = self.volume_dir(uid, volume.name)
            paths[volume.name] = str(target)
            if not self.materialize:
                continue
            if source == "empty_dir":
                target.mkdir(parents=True, exist_ok=True)
                if volume.empty_dir.medium == "Memory":
                    await mount_tmpfs(target, volume.empty_dir.size_limit)
            elif source == "config_map":
                cm_src = volume.config_map
                cm = self.sources.config_map(ns, cm_src.name)
                if cm is None and not cm_src.optional:
                    raise VolumeError(f'configmap "{cm_src.name}" not found')
                data = {k: v.encode() for k, v in cm.data.items()} if cm is not None else {}
                if cm is not None:
                    data.update(dict(cm.binary_data))
                mode = cm_src.default_mode if cm_src.HasField("default_mode") else DEFAULT_MODE
                files = projected_files(data, list(cm_src.items), mode, cm_src.optional)
                await asyncio.to_thread(write_atomic, target, files)
            elif source == "secret":
                s_src = volume.secret
                secret = self.sources.secret(ns, s_src.secret_name)
                if secret is None and not s_src.optional:
                    raise VolumeError(f'secret "{s_src.secret_name}" not found')
                sdata = dict(secret.data) if secret is not None else {}
                if secret is not None:
                    sdata.update({k: v.encode() for k, v in secret.string_data.items()})
                mode = s_src.default_mode if s_src.HasField("default_mode") else DEFAULT_MODE
                files = projected_files(sdata, list(s_src.items), mode, s_src.optional)
                target.mkdir(parents=True, exist_ok=True)
                await mount_tmpfs(target)
                await asyncio.to_thread(write_atomic, target, files)
            else:
                raise VolumeError(f"volume {volume.name!r}: {source} volumes are not supported")
        return paths

    async def _host_path(self, src: core_pb2.HostPathVolumeSource) -> str:
        if self.materialize:
            await asyncio.to_thread(_check_host_path, src)
        return src.path

    async def teardown(self, uid: str) -> None:
        pod_dir = self.pod_dir(uid)
        for vdir in await asyncio.to_thread(_mounts_under, pod_dir / "volumes"):
            try:
                await _run("umount", str(vdir))
            except OSError as e:
                # Never delete through a mount we could not undo.
                log.warning("umount failed; keeping the pod dir", path=str(vdir), error=str(e))
                return
        await asyncio.to_thread(shutil.rmtree, pod_dir, True)


def _mounts_under(volumes: Path) -> list[Path]:
    if not volumes.is_dir():
        return []
    return [v for v in volumes.iterdir() if os.path.ismount(v)]


def _check_host_path(src: core_pb2.HostPathVolumeSource) -> None:
    path = Path(src.path)
    kind = src.type if src.HasField("type") else ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif kind == "Directory" and not path.is_dir():
        raise VolumeError(f"hostPath {src.path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise VolumeError(f"hostPath {src.path} is not a file")


def read_only_source(volume: core_pb2.Volume) -> bool:
    """configMap and secret volumes are always mounted read-only, as in Kubernetes."""
    return volume.WhichOneof("source") in ("config_map", "secret") or (
        volume.WhichOneof("source") == "persistent_volume_claim"
        and volume.persistent_volume_claim.read_only
    )


def container_binds(
    pod: core_pb2.Pod, container: core_pb2.Container, paths: Mapping[str, str]
) -> list[str]:
    by_name = {v.name: v for v in pod.spec.volumes}
    binds: list[str] = []
    for mount in container.volume_mounts:
        host = paths.get(mount.name)
        volume = by_name.get(mount.name)
        if host is None or volume is None:
            raise VolumeError(f"volume mount {mount.name!r} names no pod volume")
        if mount.sub_path:
            host = str(Path(host) / _safe_relpath(mount.sub_path))
        ro = mount.read_only or read_only_source(volume)
        binds.append(f"{host}:{mount.mount_path}" + (":ro" if ro else ""))
    return binds

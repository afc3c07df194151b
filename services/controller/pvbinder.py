"""The PersistentVolume controller: binds claims to volumes, provisions hostPath volumes
for the default StorageClass, and reclaims volumes whose claims are gone.

Binding follows Kubernetes: a claim binds to the smallest Available volume of its storage
class whose capacity covers the request, whose access modes include the claim's, whose
volume mode is the claim's and whose labels match the claim's selector (or to the volume it
names in spec.volumeName, or one pre-bound to it by claimRef). The volume is claimed first
(claimRef written with a compare-and-swap, so two claims never get one volume), then the
claim is pointed at it. A claim no volume fits, whose class uses the capstan.dev/hostpath
provisioner, gets a new volume: a directory under --pv-root. When a bound claim is deleted
the volume is Released (reclaim policy Retain) or deleted with its directory (Delete).
A default StorageClass ("standard") is created when the cluster has none.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import structlog
from capstan.api.core.v1 import core_pb2
from capstan.api.storage.v1 import storage_pb2
from capstan.apierrors import AlreadyExistsError, NotFoundError
from capstan.client import WARNING, Controller, Informer, split_key
from capstan.machinery.labels import selector_from_proto
from capstan.machinery.quantity import parse_quantity

from controller.registry import ControllerContext

log = structlog.get_logger(__name__)

PROVISIONER = "capstan.dev/hostpath"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_CLASS_NAME = "standard"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
STORAGE_CLASS_KEY = "storageclass:"
PV_PREFIX = "pv:"
PVC_PREFIX = "pvc:"


@dataclass
class Options:
    pv_root: str = "/var/lib/capstan/pv"
    create_default_class: bool = True


def _storage(values: Any) -> Fraction:
    text = values.get("storage", "0")
    try:
        return parse_quantity(text).value
    except ValueError:
        return Fraction(0)


def is_default_class(sc: Any) -> bool:
    return bool(sc.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true")


def claim_class(claim: Any, default_class: str) -> str:
    """The class a claim asks for: its own, or the default class when it names none."""
    if claim.spec.HasField("storage_class_name"):
        return str(claim.spec.storage_class_name)
    return default_class


def volume_fits(pv: Any, claim: Any, class_name: str) -> bool:
    """Whether pv could serve claim (ignoring whether it is free)."""
    if pv.spec.storage_class_name != class_name:
        return False
    if not set(claim.spec.access_modes) <= set(pv.spec.access_modes):
        return False
    pv_mode = pv.spec.volume_mode if pv.spec.HasField("volume_mode") else "Filesystem"
    claim_mode = claim.spec.volume_mode if claim.spec.HasField("volume_mode") else "Filesystem"
    if pv_mode != claim_mode:
        return False
    if _storage(pv.spec.capacity) < _storage(claim.spec.resources.requests):
        return False
    if claim.spec.HasField("selector"):
        try:
            selector = selector_from_proto(claim.spec.selector)
        except ValueError:
            return False
        if not selector.matches(pv.metadata.labels):
            return False
    return True


def reserved_for(pv: Any, claim: Any) -> bool:
    ref = pv.spec.claim_ref
    return (
        ref.name == claim.metadata.name
        and ref.namespace == claim.metadata.namespace
        and (not ref.uid or ref.uid == claim.metadata.uid)
    )


def find_volume(volumes: list[Any], claim: Any, class_name: str) -> Any | None:
    """The volume to bind claim to: one reserved for it, else the smallest free fit."""
    candidates = []
    for pv in volumes:
        if pv.metadata.HasField("deletion_timestamp"):
            continue
        if claim.spec.volume_name and pv.metadata.name != claim.spec.volume_name:
            continue
        if pv.spec.HasField("claim_ref") and pv.spec.claim_ref.name:
            if reserved_for(pv, claim) and volume_fits(pv, claim, pv.spec.storage_class_name):
                return pv
            continue
        if pv.status.phase not in ("Available", "Pending", ""):
            continue
        if claim.spec.volume_name or volume_fits(pv, claim, class_name):
            candidates.append(pv)
    candidates.sort(key=lambda pv: (_storage(pv.spec.capacity), pv.metadata.name))
    return candidates[0] if candidates else None


def make_directory(path: str) -> None:
    """A volume's directory, writable by any container user (a mkdir: no need to leave
    the event loop for it)."""
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o777)


def default_storage_class() -> storage_pb2.StorageClass:
    sc = storage_pb2.StorageClass(provisioner=PROVISIONER)
    sc.metadata.name = DEFAULT_CLASS_NAME
    sc.metadata.annotations[DEFAULT_CLASS_ANNOTATION] = "true"
    sc.reclaim_policy = "Delete"
    sc.volume_binding_mode = "Immediate"
    return sc


def provisioned_volume(claim: Any, sc: Any, pv_root: str) -> core_pb2.PersistentVolume:
    pv = core_pb2.PersistentVolume()
    name = f"pvc-{claim.metadata.uid}"
    pv.metadata.name = name
    pv.metadata.annotations[PROVISIONED_BY] = sc.provisioner
    pv.spec.capacity["storage"] = claim.spec.resources.requests.get("storage", "1Gi")
    pv.spec.access_modes.extend(claim.spec.access_modes or ["ReadWriteOnce"])
    pv.spec.persistent_volume_reclaim_policy = (
        sc.reclaim_policy if sc.HasField("reclaim_policy") else "Delete"
    )
    pv.spec.storage_class_name = sc.metadata.name
    pv.spec.host_path.path = str(Path(pv_root) / name)
    pv.spec.host_path.type = "DirectoryOrCreate"
    ref = pv.spec.claim_ref
    ref.kind, ref.api_version = "PersistentVolumeClaim", "v1"
    ref.namespace, ref.name, ref.uid = (
        claim.metadata.namespace,
        claim.metadata.name,
        claim.metadata.uid,
    )
    return pv


class PersistentVolumeController:
    def __init__(
        self,
        client: Any,
        volumes: Informer[core_pb2.PersistentVolume],
        claims: Informer[core_pb2.PersistentVolumeClaim],
        classes: Informer[storage_pb2.StorageClass],
        recorder: Any,
        options: Options,
        *,
        workers: int = 1,
    ) -> None:
        self.client = client
        self.volumes = volumes
        self.claims = claims
        self.classes = classes
        self.recorder = recorder
        self.options = options
        # One worker by default: binding decisions read the cache, and serialising them
        # avoids needless compare-and-swap losses (which would be retried correctly).
        self.controller = Controller("persistentvolume-binder", self.reconcile, workers=workers)
        self.controller.watch(volumes, self._volume_keys)
        self.controller.watch(claims, self._claim_keys)
        self.controller.watch(classes, lambda _: [STORAGE_CLASS_KEY])
        if options.create_default_class:
            self.controller.enqueue(STORAGE_CLASS_KEY)

    @staticmethod
    def _claim_keys(claim: Any) -> list[str]:
        """The claim, and its volume (which a deleted claim releases)."""
        keys = [PVC_PREFIX + f"{claim.metadata.namespace}/{claim.metadata.name}"]
        if claim.spec.volume_name:
            keys.append(PV_PREFIX + claim.spec.volume_name)
        return keys

    def _volume_keys(self, pv: Any) -> list[str]:
        keys = [PV_PREFIX + pv.metadata.name]
        ref = pv.spec.claim_ref
        if ref.name:
            keys.append(PVC_PREFIX + f"{ref.namespace}/{ref.name}")
        elif pv.status.phase in ("Available", "Pending", ""):
            # A new free volume may fit a claim that is waiting.
            keys.extend(
                PVC_PREFIX + f"{c.metadata.namespace}/{c.metadata.name}"
                for c in self.claims.list()
                if c.status.phase == "Pending"
            )
        return keys

    def default_class(self) -> Any | None:
        defaults = [sc for sc in self.classes.list() if is_default_class(sc)]
        defaults.sort(key=lambda sc: sc.metadata.creation_timestamp.ToNanoseconds(), reverse=True)
        return defaults[0] if defaults else None

    async def reconcile(self, key: str) -> float | None:
        if key == STORAGE_CLASS_KEY:
            return await self._ensure_default_class()
        if key.startswith(PV_PREFIX):
            return await self._sync_volume(key.removeprefix(PV_PREFIX))
        namespace, name = split_key(key.removeprefix(PVC_PREFIX))
        return await self._sync_claim(namespace, name)

    # ------------------------------------------------------------ storage class
    async def _ensure_default_class(self) -> float | None:
        if not self.options.create_default_class or self.default_class() is not None:
            return None
        if self.classes.get(DEFAULT_CLASS_NAME) is not None:
            return None  # an admin un-defaulted it: respect that
        try:
            await self.client.storageclasses.create(default_storage_class())
            log.info("created the default StorageClass", name=DEFAULT_CLASS_NAME)
        except AlreadyExistsError:
            pass
        return None

    # ------------------------------------------------------------------ claims
    async def _sync_claim(self, namespace: str, name: str) -> float | None:
        claim = self.claims.get(name, namespace)
        if claim is None or claim.metadata.HasField("deletion_timestamp"):
            return None
        if claim.status.phase == "Bound" and claim.spec.volume_name:
            pv = self.volumes.get(claim.spec.volume_name)
            if pv is None or not reserved_for(pv, claim):
                await self._claim_lost(claim)
            return None
        default = self.default_class()
        class_name = claim_class(claim, default.metadata.name if default else "")
        pv = find_volume(self.volumes.list(), claim, class_name)
        if pv is not None:
            await self._bind(pv, claim)
            return None
        sc = self.classes.get(class_name) if class_name else None
        if sc is not None and sc.provisioner == PROVISIONER and not claim.spec.volume_name:
            await self._provision(claim, sc)
            return None
        why = (
            f'storageclass.storage.k8s.io "{class_name}" not found'
            if class_name and sc is None
            else "no persistent volumes available for this claim and no storage class is set"
            if not class_name
            else f"waiting for a volume to be created by {sc.provisioner if sc else '?'}"
        )
        self.recorder.record(claim, WARNING, "FailedBinding", why)
        return None

    async def _bind(self, pv: Any, claim: Any) -> None:
        volume = core_pb2.PersistentVolume()
        volume.CopyFrom(pv)
        if not reserved_for(volume, claim) or not volume.spec.claim_ref.uid:
            ref = volume.spec.claim_ref
            ref.kind, ref.api_version = "PersistentVolumeClaim", "v1"
            ref.namespace, ref.name = claim.metadata.namespace, claim.metadata.name
            ref.uid = claim.metadata.uid
            ref.resource_version = claim.metadata.resource_version
            volume.metadata.annotations[BOUND_BY_CONTROLLER] = "yes"
            volume = await self.client.persistentvolumes.update(volume)
        if volume.status.phase != "Bound":
            volume.status.phase = "Bound"
            volume.status.last_phase_transition_time.GetCurrentTime()
            volume = await self.client.persistentvolumes.update_status(volume)
        new = core_pb2.PersistentVolumeClaim()
        new.CopyFrom(claim)
        if new.spec.volume_name != volume.metadata.name or BIND_COMPLETED not in (
            new.metadata.annotations
        ):
            new.spec.volume_name = volume.metadata.name
            new.metadata.annotations[BIND_COMPLETED] = "yes"
            new = await self.client.persistentvolumeclaims.update(new)
        new.status.phase = "Bound"
        del new.status.access_modes[:]
        new.status.access_modes.extend(volume.spec.access_modes)
        new.status.capacity.clear()
        new.status.capacity.update(volume.spec.capacity)
        await self.client.persistentvolumeclaims.update_status(new)
        log.info(
            "bound claim", namespace=claim.metadata.namespace, claim=claim.metadata.name,
            volume=volume.metadata.name,
        )  # fmt: skip

    async def _claim_lost(self, claim: Any) -> None:
        new = core_pb2.PersistentVolumeClaim()
        new.CopyFrom(claim)
        new.status.phase = "Lost"
        self.recorder.record(
            claim, WARNING, "ClaimLost", "Bound claim has lost its PersistentVolume"
        )
        await self.client.persistentvolumeclaims.update_status(new)

    async def _provision(self, claim: Any, sc: Any) -> None:
        pv = provisioned_volume(claim, sc, self.options.pv_root)
        if self.volumes.get(pv.metadata.name) is not None:
            return
        make_directory(pv.spec.host_path.path)
        try:
            await self.client.persistentvolumes.create(pv)
        except AlreadyExistsError:
            return
        self.recorder.record(
            claim,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {pv.metadata.name} using {sc.provisioner}",
        )

    # ----------------------------------------------------------------- volumes
    async def _sync_volume(self, name: str) -> float | None:
        pv = self.volumes.get(name)
        if pv is None or pv.metadata.HasField("deletion_timestamp"):
            return None
        ref = pv.spec.claim_ref
        if not ref.name:
            if pv.status.phase in ("", "Pending", "Released"):
                await self._set_phase(pv, "Available")
            return None
        claim = self.claims.get(ref.name, ref.namespace)
        if claim is None or (ref.uid and claim.metadata.uid != ref.uid):
            if not ref.uid:
                # Reserved by an admin for a claim that does not exist yet.
                if pv.status.phase in ("", "Pending"):
                    await self._set_phase(pv, "Available")
                return None
            try:
                live = await self.client.persistentvolumeclaims.get(ref.name, ref.namespace)
                if live.metadata.uid == ref.uid:
                    return 1.0  # our cache lags a new claim
            except NotFoundError:
                pass
            await self._reclaim(pv)
        return None

    async def _set_phase(self, pv: Any, phase: str) -> Any:
        new = core_pb2.PersistentVolume()
        new.CopyFrom(pv)
        new.status.phase = phase
        new.status.last_phase_transition_time.GetCurrentTime()
        return await self.client.persistentvolumes.update_status(new)

    async def _reclaim(self, pv: Any) -> None:
        policy = pv.spec.persistent_volume_reclaim_policy or "Retain"
        if policy == "Delete":
            path = pv.spec.host_path.path if pv.spec.HasField("host_path") else ""
            if path and pv.metadata.annotations.get(PROVISIONED_BY) == PROVISIONER:
                self._remove_directory(path)
            try:
                await self.client.persistentvolumes.delete(
                    pv.metadata.name, preconditions_uid=pv.metadata.uid
                )
            except NotFoundError:
                return
            log.info("deleted released volume", volume=pv.metadata.name)
            return
        if pv.status.phase != "Released":
            await self._set_phase(pv, "Released")
            self.recorder.record(
                pv, "Normal", "VolumeReleased", "the claim was deleted; volume retained"
            )

    def _remove_directory(self, path: str) -> None:
        """Only ever inside --pv-root: a volume's path comes from the API."""
        root = Path(self.options.pv_root).resolve()
        target = Path(path).resolve()
        if target.parent != root:
            log.warning("not removing a volume directory outside --pv-root", path=path)
            return
        shutil.rmtree(target, ignore_errors=True)


def options_from_args(args: Any) -> Options:
    d = Options()
    return Options(
        pv_root=str(getattr(args, "pv_root", d.pv_root)),
        create_default_class=bool(getattr(args, "default_storage_class", True)),
    )


def new_persistentvolume_binder_controller(ctx: ControllerContext) -> Controller:
    client, informers = ctx.client, ctx.informers
    c = PersistentVolumeController(
        client,
        informers.for_resource(client.persistentvolumes),
        informers.for_resource(client.persistentvolumeclaims),
        informers.for_resource(client.storageclasses),
        ctx.recorder,
        options_from_args(ctx.args),
        workers=ctx.workers("persistentvolume-binder", 1),
    )
    return c.controller

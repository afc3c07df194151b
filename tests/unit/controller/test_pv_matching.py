"""Volume selection for claims: class, access modes, size (smallest fit), selector."""

from __future__ import annotations

import pytest
from capstan.api.core.v1 import core_pb2
from controller.pvbinder import claim_class, default_storage_class, find_volume, provisioned_volume

pytestmark = pytest.mark.unit


def pv(name: str, size: str, *, cls: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",),
       labels: dict[str, str] | None = None) -> core_pb2.PersistentVolume:  # fmt: skip
    v = core_pb2.PersistentVolume()
    v.metadata.name = name
    v.metadata.labels.update(labels or {})
    v.spec.capacity["storage"] = size
    v.spec.access_modes.extend(modes)
    v.spec.storage_class_name = cls
    v.status.phase = "Available"
    return v


def claim(
    size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",)
) -> core_pb2.PersistentVolumeClaim:
    c = core_pb2.PersistentVolumeClaim()
    c.metadata.name, c.metadata.namespace, c.metadata.uid = "data", "ns", "u1"
    c.spec.access_modes.extend(modes)
    c.spec.resources.requests["storage"] = size
    return c


def name_of(v: core_pb2.PersistentVolume | None) -> str:
    assert v is not None
    return v.metadata.name


def test_smallest_fitting_volume_wins() -> None:
    vols = [pv("big", "10Gi"), pv("small", "1Gi"), pv("mid", "2Gi")]
    assert name_of(find_volume(vols, claim("1500Mi"), "")) == "mid"
    assert find_volume(vols, claim("20Gi"), "") is None


def test_access_modes_class_and_selector() -> None:
    vols = [pv("rwo", "5Gi"), pv("rwx", "5Gi", modes=("ReadWriteOnce", "ReadWriteMany")),
            pv("fast", "1Gi", cls="fast", labels={"tier": "gold"})]  # fmt: skip
    assert name_of(find_volume(vols, claim("1Gi", modes=("ReadWriteMany",)), "")) == "rwx"
    c = claim("1Gi")
    assert name_of(find_volume(vols, c, "fast")) == "fast"
    c.spec.selector.match_labels["tier"] = "silver"
    assert find_volume(vols, c, "fast") is None


def test_bound_volume_only_for_its_claim() -> None:
    taken = pv("taken", "1Gi")
    taken.spec.claim_ref.name, taken.spec.claim_ref.namespace = "other", "ns"
    assert find_volume([taken], claim("1Gi"), "") is None
    taken.spec.claim_ref.name = "data"
    assert name_of(find_volume([taken], claim("1Gi"), "")) == "taken"


def test_default_class_and_provisioned_volume() -> None:
    c = claim("2Gi")
    assert claim_class(c, "standard") == "standard"
    c.spec.storage_class_name = ""
    assert claim_class(c, "standard") == ""
    sc = default_storage_class()
    v = provisioned_volume(claim("2Gi"), sc, "/srv/pv")
    assert v.metadata.name == "pvc-u1"
    assert v.spec.host_path.path == "/srv/pv/pvc-u1"
    assert v.spec.persistent_volume_reclaim_policy == "Delete"
    assert v.spec.claim_ref.uid == "u1" and v.spec.capacity["storage"] == "2Gi"

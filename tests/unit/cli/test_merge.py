"""The three-way merge behind `apply`."""

from __future__ import annotations

from typing import Any

import pytest
from capstan.cli.merge import three_way_merge

pytestmark = pytest.mark.unit


def test_field_removed_from_manifest_is_removed() -> None:
    original = {"metadata": {"labels": {"app": "web", "tier": "fe"}}}
    modified = {"metadata": {"labels": {"app": "web"}}}
    current = {"metadata": {"labels": {"app": "web", "tier": "fe"}, "uid": "u1"}}
    assert three_way_merge(original, modified, current) == {
        "metadata": {"labels": {"app": "web"}, "uid": "u1"}
    }


def test_fields_set_by_others_are_kept() -> None:
    original = {"metadata": {"labels": {"app": "web"}}}
    modified = {"metadata": {"labels": {"app": "web2"}}}
    current = {
        "metadata": {"labels": {"app": "web", "team": "x"}, "resourceVersion": "7"},
        "status": {"replicas": 2},
    }
    assert three_way_merge(original, modified, current) == {
        "metadata": {"labels": {"app": "web2", "team": "x"}, "resourceVersion": "7"},
        "status": {"replicas": 2},
    }


def test_without_a_last_applied_nothing_is_removed() -> None:
    modified = {"spec": {"replicas": 3}}
    current = {"spec": {"replicas": 2, "paused": True}}
    assert three_way_merge({}, modified, current) == {"spec": {"replicas": 3, "paused": True}}


def test_explicit_null_deletes() -> None:
    assert three_way_merge({}, {"spec": {"paused": None}}, {"spec": {"paused": True}}) == {
        "spec": {}
    }


def test_keyed_lists_merge_per_element_and_keep_server_defaults() -> None:
    original: dict[str, Any] = {
        "containers": [{"name": "a", "image": "x:1", "ports": [{"containerPort": 80}]}]
    }
    modified: dict[str, Any] = {
        "containers": [{"name": "a", "image": "x:2", "ports": [{"containerPort": 80}]}]
    }
    current: dict[str, Any] = {
        "containers": [
            {
                "name": "a",
                "image": "x:1",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            },
            {"name": "sidecar", "image": "s"},
        ]
    }
    assert three_way_merge(original, modified, current) == {
        "containers": [
            {
                "name": "a",
                "image": "x:2",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            },
            {"name": "sidecar", "image": "s"},
        ]
    }


def test_keyed_list_element_removed_from_manifest_goes() -> None:
    original = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    modified = {"env": [{"name": "A", "value": "1"}]}
    current = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    assert three_way_merge(original, modified, current) == {"env": [{"name": "A", "value": "1"}]}


def test_unkeyed_lists_are_replaced() -> None:
    original = {"args": ["a", "b"]}
    modified = {"args": ["c"]}
    current = {"args": ["a", "b"]}
    assert three_way_merge(original, modified, current) == {"args": ["c"]}


def test_manifest_key_order_comes_first() -> None:
    merged = three_way_merge({}, {"b": 1, "a": 2}, {"z": 0, "a": 1})
    assert list(merged) == ["b", "a", "z"]

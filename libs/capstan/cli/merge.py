"""The three-way merge behind `apply`, on Kubernetes-shaped dicts.

original: what the last apply sent (the last-applied-configuration annotation);
modified: what this apply sends; current: the live object. A field the manifest sets wins;
a field the manifest dropped since the last apply is removed; a field the manifest never
set (server defaults, status, other writers' labels) is kept. Lists of objects merge element
by element on the first merge key every element has (name for containers, env and volumes;
containerPort or port for ports; mountPath for mounts...), as Kubernetes' strategic merge
patch does, so server defaults inside list elements survive; other lists are replaced.
"""

from __future__ import annotations

from typing import Any


def three_way_merge(original: Any, modified: Any, current: Any) -> Any:
    if isinstance(modified, dict) and isinstance(current, dict):
        orig = original if isinstance(original, dict) else {}
        out: dict[str, Any] = {}
        for key, value in current.items():
            if key in modified:
                continue
            if key in orig:
                continue  # set by the last apply, dropped from the manifest since: remove
            out[key] = value
        for key, value in modified.items():
            if value is None:
                continue  # explicit null deletes, as in a JSON merge patch
            out[key] = three_way_merge(orig.get(key), value, current.get(key))
        # Keep the manifest's key order first, then the fields others set.
        ordered = {k: out[k] for k in modified if k in out}
        ordered.update({k: v for k, v in out.items() if k not in ordered})
        return ordered
    key = _merge_key(modified, current)
    if key is not None:
        orig_by = {e[key]: e for e in original} if _keyed(original, key) else {}
        cur_by = {e[key]: e for e in current}
        merged = [three_way_merge(orig_by.get(e[key]), e, cur_by.get(e[key])) for e in modified]
        mod_keys = {e[key] for e in modified}
        # Elements someone else added (never in an apply) stay, after the manifest's own.
        merged += [e for e in current if e[key] not in mod_keys and e[key] not in orig_by]
        return merged
    return modified


# Kubernetes' patchMergeKey values, most specific first.
MERGE_KEYS = ("name", "containerPort", "port", "mountPath", "devicePath", "ip", "type", "uid")


def _keyed(value: Any, key: str) -> bool:
    if not isinstance(value, list) or not value:
        return False
    if not all(isinstance(e, dict) and isinstance(e.get(key), str | int) for e in value):
        return False
    return len({e[key] for e in value}) == len(value)


def _merge_key(modified: Any, current: Any) -> str | None:
    for key in MERGE_KEYS:
        if _keyed(modified, key) and _keyed(current, key):
            return key
    return None

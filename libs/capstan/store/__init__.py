"""The apiserver's storage: one Store contract, two backends chosen by URL.

    sqlite:///abs/path.db        embedded SQLite (one apiserver); sqlite://relative.db
    etcd://host:port[,host:port]  an etcd cluster (several apiservers)

SQLite URLs take optional query parameters compaction_interval (seconds) and
retain_revisions, e.g. sqlite:///var/lib/capstan/state.db?retain_revisions=50000.
"""

from __future__ import annotations

import urllib.parse

from capstan.store.interface import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    Store,
    StoreError,
    StoreUnavailableError,
    WatchEvent,
)

__all__ = [
    "CompactedError",
    "ConflictError",
    "EventType",
    "FutureRevisionError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "RangeResult",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "WatchEvent",
    "open_store",
]

_SQLITE_OPTIONS = {"compaction_interval": float, "retain_revisions": int}


async def open_store(url: str) -> Store:
    """Open (and for SQLite, create if missing) the store a URL names. Backends are
    imported lazily so that an SQLite deployment never loads the etcd client."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL {url!r} has no scheme (sqlite:// or etcd://)")
    if scheme == "sqlite":
        return await _open_sqlite(url, rest)
    if scheme == "etcd":
        endpoints = [e.strip() for e in rest.rstrip("/").split(",") if e.strip()]
        if not endpoints:
            raise ValueError(f"store URL {url!r} names no etcd endpoint")
        from capstan.store.etcd import EtcdStore

        return await EtcdStore.connect(endpoints)
    raise ValueError(f"store URL {url!r}: unknown scheme {scheme!r} (sqlite or etcd)")


async def _open_sqlite(url: str, rest: str) -> Store:
    from capstan.store.sqlite import SqliteStore

    path, _, query = rest.partition("?")
    if not path:
        raise ValueError(f"store URL {url!r} names no database file")
    options: dict[str, float] = {}
    for name, value in urllib.parse.parse_qsl(query, strict_parsing=bool(query)):
        convert = _SQLITE_OPTIONS.get(name)
        if convert is None:
            raise ValueError(f"store URL {url!r}: unknown option {name!r}")
        options[name] = convert(value)
    store = SqliteStore(
        path,
        compaction_interval=float(options.get("compaction_interval", 60.0)),
        retain_revisions=int(options.get("retain_revisions", 10000)),
    )
    await store.start()
    return store

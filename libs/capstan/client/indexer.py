"""The informer's cache: objects by "namespace/name" key plus secondary indices, so a
controller asks "pods on node n" or "pods owned by uid u" without scanning every pod."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# An index function: the index values an object is filed under (several, or none).
IndexFunc = Callable[[Any], Iterable[str]]

NAMESPACE_INDEX = "namespace"
NODE_NAME_INDEX = "nodeName"
OWNER_UID_INDEX = "ownerUID"


def object_key(obj: Any) -> str:
    """Kubernetes' MetaNamespaceKeyFunc: "namespace/name", or "name" if cluster-scoped."""
    meta = obj.metadata
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of an object_key."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def index_by_namespace(obj: Any) -> list[str]:
    return [obj.metadata.namespace]


def index_by_node_name(obj: Any) -> list[str]:
    """Pods by spec.nodeName (unscheduled pods under "")."""
    return [obj.spec.node_name]


def index_by_owner_uid(obj: Any) -> list[str]:
    return [ref.uid for ref in obj.metadata.owner_references]


def index_by_label(label: str) -> IndexFunc:
    """Objects by the value of one label; objects without it are not indexed."""

    def fn(obj: Any) -> list[str]:
        labels = obj.metadata.labels
        return [labels[label]] if label in labels else []

    return fn


class Indexer(Generic[T]):
    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, T] = {}
        self._funcs: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexers(indexers or {})

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add indices (built over the objects already cached). Re-adding the same
        function under the same name is a no-op, so several loops sharing one informer
        may each declare what they need."""
        for name, fn in indexers.items():
            existing = self._funcs.get(name)
            if existing is fn:
                continue
            if existing is not None:
                raise ValueError(f"indexer {name!r} already exists with another function")
            self._funcs[name] = fn
            index: dict[str, set[str]] = {}
            for key, obj in self._items.items():
                for value in fn(obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def list(self) -> builtins.list[T]:
        return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        return list(self._items)

    def items(self) -> dict[str, T]:
        """A snapshot copy of the key -> object mapping."""
        return dict(self._items)

    def index_keys(self, index: str, value: str) -> set[str]:
        try:
            return set(self._indices[index].get(value, ()))
        except KeyError:
            raise KeyError(f"no indexer named {index!r}") from None

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        return [self._items[k] for k in sorted(self.index_keys(index, value))]

    def index_values(self, index: str) -> builtins.list[str]:
        return list(self._indices[index])

    def upsert(self, key: str, obj: T) -> T | None:
        old = self._items.get(key)
        self._items[key] = obj
        if self._funcs:
            self._reindex(key, old, obj)
        return old

    def remove(self, key: str) -> T | None:
        old = self._items.pop(key, None)
        if old is not None and self._funcs:
            self._reindex(key, old, None)
        return old

    def _reindex(self, key: str, old: T | None, new: T | None) -> None:
        for name, fn in self._funcs.items():
            index = self._indices[name]
            before = set(fn(old)) if old is not None else set()
            after = set(fn(new)) if new is not None else set()
            for value in before - after:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after - before:
                index.setdefault(value, set()).add(key)

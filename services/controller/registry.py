"""The table of reconcile loops capstan-controller can run, by name (kube-controller-manager's
--controllers names).

A row is name -> factory(ctx). The factory builds one loop on the shared client skeleton
(capstan.client.Controller): it registers the informers it needs from ctx.informers, wires
their events to keys with Controller.watch, and returns the Controller unstarted; main runs
every returned Controller (Controller.run) and stops them together. Rows name their module
and factory as strings so that `--controllers=replicaset` imports only what it runs and a
loop whose module fails to import does not take the others down with it.

Adding a loop is adding a row: ("name", "controller.<module>", "<factory function>").
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from capstan.client import Client, Controller, EventRecorder, SharedInformerFactory


@dataclass
class ControllerContext:
    """What every factory gets: the one client, the shared informers (one watch per kind
    for the whole process), the event recorder, and the parsed flags."""

    client: Client
    informers: SharedInformerFactory
    recorder: EventRecorder
    args: argparse.Namespace
    # name -> worker count from --concurrent-syncs (name=N,...); absent: the row's default.
    concurrency: dict[str, int] = field(default_factory=dict)

    def workers(self, name: str, default: int = 5) -> int:
        """Workers for the named loop: --concurrent-syncs name=N, else the loop's default,
        else --default-concurrent-syncs."""
        if name in self.concurrency:
            return self.concurrency[name]
        flag = getattr(self.args, "default_concurrent_syncs", None)
        return int(flag) if flag else default


Factory = Callable[[ControllerContext], Controller]


@dataclass(frozen=True)
class Row:
    """A loop: where its factory lives, and whether "*" turns it on (Kubernetes keeps a
    few loops off by default; they run only when named)."""

    module: str
    factory: str
    enabled_by_default: bool = True

    def load(self) -> Factory:
        fn: Factory = getattr(importlib.import_module(self.module), self.factory)
        return fn


CONTROLLERS: dict[str, Row] = {
    # ---- workloads
    "replicaset": Row("controller.replicaset", "new_replicaset_controller"),
    "replicationcontroller": Row("controller.replicaset", "new_replicationcontroller_controller"),
    "deployment": Row("controller.deployment", "new_deployment_controller"),
    "daemonset": Row("controller.daemonset", "new_daemonset_controller"),
    "job": Row("controller.job", "new_job_controller"),
    "cronjob": Row("controller.cronjob", "new_cronjob_controller"),
    "statefulset": Row("controller.statefulset", "new_statefulset_controller"),
    # ---- cluster (append rows below)
    "endpoints": Row("controller.endpoints", "new_endpoints_controller"),
    "nodelifecycle": Row("controller.nodelifecycle", "new_nodelifecycle_controller"),
    "garbagecollector": Row("controller.garbagecollector", "new_garbagecollector_controller"),
    "namespace": Row("controller.namespace", "new_namespace_controller"),
    "resourcequota": Row("controller.resourcequota", "new_resourcequota_controller"),
    "persistentvolume-binder": Row("controller.pvbinder", "new_persistentvolume_binder_controller"),
    "horizontalpodautoscaling": Row("controller.hpa", "new_hpa_controller"),
}


def select(spec: str) -> list[str]:
    """Names chosen by a --controllers value, as kube-controller-manager reads it:
    "*" is every loop on by default, "name" adds one, "-name" removes one."""
    chosen: list[str] = []
    removed: set[str] = set()
    star = False
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "*":
            star = True
        elif item.startswith("-"):
            name = item[1:]
            if name not in CONTROLLERS:
                raise ValueError(f"unknown controller {name!r}")
            removed.add(name)
        else:
            if item not in CONTROLLERS:
                raise ValueError(f"unknown controller {item!r}")
            chosen.append(item)
    if star:
        chosen.extend(n for n, row in CONTROLLERS.items() if row.enabled_by_default)
    seen: set[str] = set()
    out: list[str] = []
    for name in chosen:
        if name not in removed and name not in seen:
            seen.add(name)
            out.append(name)
    return out

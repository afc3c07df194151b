"""Flags of the cluster loops (node lifecycle, volumes, HPA), with kube-controller-manager's
names and defaults. The loops read them with getattr and these defaults, so they also run
under a parser that lacks them; main adds them with add_cluster_flags(parser)."""

from __future__ import annotations

import argparse


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("cluster controllers")
    g.add_argument(
        "--node-monitor-grace-period", type=float, default=40.0,
        help="seconds without a node heartbeat before the node is marked Unknown",
    )  # fmt: skip
    g.add_argument(
        "--pod-eviction-timeout", type=float, default=300.0,
        help="seconds pods that do not tolerate an unreachable/not-ready node stay on it",
    )  # fmt: skip
    g.add_argument(
        "--allocate-node-cidrs", action=argparse.BooleanOptionalAction, default=False,
        help="assign each node a pod CIDR from --cluster-cidr",
    )  # fmt: skip
    g.add_argument("--cluster-cidr", default="10.244.0.0/16", help="the pods' address range")
    g.add_argument("--node-cidr-mask-size", type=int, default=24, help="prefix of a node's CIDR")
    g.add_argument(
        "--pv-root", default="/var/lib/capstan/pv",
        help="directory under which the hostpath provisioner creates volumes",
    )  # fmt: skip
    g.add_argument(
        "--default-storage-class", action=argparse.BooleanOptionalAction, default=True,
        help="create the default StorageClass (capstan.dev/hostpath) when none exists",
    )  # fmt: skip
    g.add_argument(
        "--horizontal-pod-autoscaler-sync-period", type=float, default=15.0,
        help="seconds between evaluations of each HPA",
    )  # fmt: skip
    g.add_argument(
        "--horizontal-pod-autoscaler-downscale-stabilization", type=float, default=300.0,
        help="seconds of recommendations a scale-down takes the largest of",
    )  # fmt: skip
    g.add_argument(
        "--horizontal-pod-autoscaler-tolerance", type=float, default=0.1,
        help="utilization ratio distance from 1.0 within which the HPA does not scale",
    )  # fmt: skip

"""One scheduling decision: filter nodes, score the feasible ones, pick the best.

Like kube-scheduler, on a large cluster it stops filtering once it has found enough
feasible nodes (percentageOfNodesToScore, adaptive by default: 50% minus 1% per 125 nodes,
at least 5% and at least 100 nodes) and starts the next pod's search where this one
stopped, so the work per pod does not grow with the cluster and placements spread over
all nodes. Ties between the best scores are broken at random.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.cache import SchedulerCache
from scheduler.nodeinfo import NodeInfo
from scheduler.plugins import (
    AFFINITY_MISMATCH,
    FILTERS,
    SCORES,
    FilterPlugin,
    ScorePlugin,
)
from scheduler.podinfo import PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
DEFAULT_PERCENTAGE = 50  # of the adaptive formula, before the per-125-nodes reduction


def num_feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes to look for before scoring (percentage 0 = adaptive)."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_nodes
    adaptive = percentage
    if adaptive <= 0:
        adaptive = max(DEFAULT_PERCENTAGE - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    return max(num_nodes * adaptive // 100, MIN_FEASIBLE_NODES_TO_FIND)


def summarize(num_nodes: int, reasons: Counter[str]) -> str:
    """Kubernetes' FitError message: "0/3 nodes are available: 2 Insufficient cpu, 1
    node(s) didn't match node selector." (most frequent reason first)."""
    if num_nodes == 0:
        return "0/0 nodes are available: no nodes available to schedule pods."
    parts = [f"{count} {reason}" for reason, count in sorted(reasons.items(), key=_by_count)]
    return f"0/{num_nodes} nodes are available: {', '.join(parts)}."


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


class FitError(Exception):
    def __init__(self, num_nodes: int, reasons: Counter[str]) -> None:
        self.num_nodes = num_nodes
        self.reasons = reasons
        super().__init__(summarize(num_nodes, reasons))

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Decision:
    node: str
    evaluated: int  # nodes filtered
    feasible: int  # nodes scored


class Framework:
    def __init__(
        self,
        filters: Sequence[FilterPlugin] = FILTERS,
        scores: Sequence[ScorePlugin] = SCORES,
        *,
        percentage_of_nodes_to_score: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.filters = tuple(filters)
        self.scores = tuple(scores)
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self._next_start = 0

    def schedule(self, pod: PodInfo, cache: SchedulerCache) -> Decision:
        """The node for pod, or FitError with the per-reason node counts."""
        all_nodes = cache.node_list
        reasons: Counter[str] = Counter()
        if pod.pinned_nodes is not None:
            nodes: list[NodeInfo] = [
                info
                for name in sorted(pod.pinned_nodes)
                if (info := cache.nodes.get(name)) is not None and info.node is not None
            ]
            if len(all_nodes) > len(nodes):
                reasons[AFFINITY_MISMATCH] = len(all_nodes) - len(nodes)
            start = 0
        else:
            nodes = all_nodes
            start = self._next_start % len(nodes) if nodes else 0
        feasible, evaluated = self._find_feasible(pod, nodes, start, reasons)
        if pod.pinned_nodes is None and nodes:
            self._next_start = (start + evaluated) % len(nodes)
        if not feasible:
            raise FitError(len(all_nodes), reasons)
        if len(feasible) == 1:
            return Decision(feasible[0].name, evaluated, 1)
        return Decision(self._select(pod, feasible, cache), evaluated, len(feasible))

    def _find_feasible(
        self, pod: PodInfo, nodes: list[NodeInfo], start: int, reasons: Counter[str]
    ) -> tuple[list[NodeInfo], int]:
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.percentage)
        applicable = [f for f in self.filters if f.applies(pod)]
        every = [f.fn for f in applicable]
        # On clean nodes (most of a healthy cluster) the node-state filters cannot fail.
        on_clean = [f.fn for f in applicable if not f.node_state]
        feasible: list[NodeInfo] = []
        evaluated = 0
        for node in nodes[start:] + nodes[:start] if start else nodes:
            evaluated += 1
            for fn in on_clean if node.clean else every:
                failed = fn(pod, node)
                if failed is not None:
                    for reason in failed:
                        reasons[reason] += 1
                    break
            else:
                feasible.append(node)
                if len(feasible) >= want:
                    break
        return feasible, evaluated

    def _select(self, pod: PodInfo, nodes: list[NodeInfo], cache: SchedulerCache) -> str:
        totals = [0] * len(nodes)
        for plugin in self.scores:
            if not plugin.applies(pod, cache):
                continue
            fn, weight = plugin.fn, plugin.weight
            raw = [fn(pod, node) for node in nodes]
            if plugin.normalize is not None:
                raw = plugin.normalize(raw)
            totals = [t + weight * s for t, s in zip(totals, raw, strict=True)]
        best = max(totals)
        # Reservoir sampling over the best: each tied node equally likely, one pass.
        chosen = 0
        seen = 0
        rand = self.rng.random
        for i, total in enumerate(totals):
            if total == best:
                seen += 1
                if rand() * seen < 1:
                    chosen = i
        return nodes[chosen].name

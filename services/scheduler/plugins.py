"""Filter and score plugins: small pure functions of (PodInfo, NodeInfo).

A filter returns None when the node can run the pod, else the reasons it cannot (the
strings Kubernetes uses, which the FailedScheduling summary counts). A score returns an
integer for one node; a plugin with a normalizer turns the raw scores of all scored nodes
into 0..MAX_SCORE. Each plugin also says whether it applies to a pod at all, so a pod
without host ports or node affinity never pays for those checks on every node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scheduler.nodeinfo import NodeInfo
from scheduler.podinfo import PodInfo, Toleration

if TYPE_CHECKING:
    from scheduler.cache import SchedulerCache

MAX_SCORE = 100

Reasons = tuple[str, ...]
FilterFn = Callable[[PodInfo, NodeInfo], Reasons | None]
ScoreFn = Callable[[PodInfo, NodeInfo], int]
Normalizer = Callable[[list[int]], list[int]]
Applies = Callable[[PodInfo], bool]
# Whether a score can tell nodes apart for this pod on this cluster at all.
ScoreApplies = Callable[[PodInfo, "SchedulerCache"], bool]

NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR_MISMATCH = "node(s) didn't match node selector"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity"
PORTS_IN_USE = "node(s) didn't have free ports for the requested pod ports"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"
TOO_MANY_PODS = "Too many pods"
UNSCHEDULABLE_TAINT = ("node.kubernetes.io/unschedulable", "", "NoSchedule")


def _always(_: PodInfo) -> bool:
    return True


def _always_scores(_: PodInfo, __: SchedulerCache) -> bool:
    return True


# ---------------------------------------------------------------------------- filters
def node_ready(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    return None if node.ready else (NOT_READY,)


def tolerates(tolerations: Sequence[Toleration], taint: tuple[str, str, str]) -> bool:
    key, value, effect = taint
    return any(t.tolerates(key, value, effect) for t in tolerations)


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    """Cordoned nodes take only pods that tolerate the unschedulable taint."""
    if not node.unschedulable or tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
        return None
    return (UNSCHEDULABLE,)


def node_resources_fit(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    # Fast path first: this runs for every candidate node of every pod.
    if (
        node.pod_count < node.alloc_pods
        and node.requested_cpu + pod.milli_cpu <= node.alloc_cpu
        and node.requested_memory + pod.memory <= node.alloc_memory
    ):
        return None
    reasons: list[str] = []
    if node.pod_count + 1 > node.alloc_pods:
        reasons.append(TOO_MANY_PODS)
    if pod.milli_cpu and node.requested_cpu + pod.milli_cpu > node.alloc_cpu:
        reasons.append(INSUFFICIENT_CPU)
    if pod.memory and node.requested_memory + pod.memory > node.alloc_memory:
        reasons.append(INSUFFICIENT_MEMORY)
    return tuple(reasons) if reasons else None


def node_selector(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return (SELECTOR_MISMATCH,)
    return None


def required_node_affinity(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    """Terms are ORed; within a term labels (matchExpressions) and fields (matchFields,
    metadata.name: how DaemonSet pods pin their node) are ANDed."""
    terms = pod.required_terms
    if terms is None or any(t.matches(node.labels, node.fields) for t in terms):
        return None
    return (AFFINITY_MISMATCH,)


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    for taint in node.taints:
        if not tolerates(pod.tolerations, taint):
            key, value, _ = taint
            return (f"node(s) had untolerated taint {{{key}: {value}}}",)
    return None


def _ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    if a[1] != b[1] or a[2] != b[2]:
        return False
    return a[0] == b[0] or "0.0.0.0" in (a[0], b[0])


def node_ports(pod: PodInfo, node: NodeInfo) -> Reasons | None:
    used = node.used_ports
    if not used:
        return None
    for want in pod.host_ports:
        if want in used or any(_ports_conflict(want, have) for have in used):
            return (PORTS_IN_USE,)
    return None


@dataclass(frozen=True)
class FilterPlugin:
    name: str
    fn: FilterFn
    applies: Applies = _always
    # True for filters that pass every pod on a "clean" node (Ready, not cordoned, no
    # NoSchedule/NoExecute taints): the framework skips them there.
    node_state: bool = False


# The order Kubernetes runs them in, cheapest and most selective first; a node fails at
# the first filter that rejects it.
FILTERS: tuple[FilterPlugin, ...] = (
    FilterPlugin("NodeReady", node_ready, node_state=True),
    FilterPlugin("NodeUnschedulable", node_unschedulable, node_state=True),
    FilterPlugin("NodeSelector", node_selector, lambda p: bool(p.node_selector)),
    FilterPlugin("NodeAffinity", required_node_affinity, lambda p: p.required_terms is not None),
    FilterPlugin("TaintToleration", taint_toleration, node_state=True),
    FilterPlugin("NodePorts", node_ports, lambda p: bool(p.host_ports)),
    FilterPlugin("NodeResourcesFit", node_resources_fit),
)


# ---------------------------------------------------------------------------- scores
def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """Prefer the emptiest node: the mean free fraction of cpu and memory after placing
    the pod (non-zero defaults for pods without requests, as in Kubernetes)."""
    score = 0
    alloc, used = node.alloc_cpu, node.nonzero_cpu + pod.nonzero_cpu
    if alloc > 0 and used <= alloc:
        score += (alloc - used) * MAX_SCORE // alloc
    alloc, used = node.alloc_memory, node.nonzero_memory + pod.nonzero_memory
    if alloc > 0 and used <= alloc:
        score += (alloc - used) * MAX_SCORE // alloc
    return score // 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """Prefer nodes whose cpu and memory fill up evenly: (1 - |cpu% - mem%| / 2) * 100."""
    if node.alloc_cpu <= 0 or node.alloc_memory <= 0:
        return 0
    cpu = (node.nonzero_cpu + pod.nonzero_cpu) / node.alloc_cpu
    mem = (node.nonzero_memory + pod.nonzero_memory) / node.alloc_memory
    diff = (cpu if cpu < 1.0 else 1.0) - (mem if mem < 1.0 else 1.0)
    return int((1.0 - (diff if diff >= 0 else -diff) / 2) * MAX_SCORE)


def owner_pod_count(pod: PodInfo, node: NodeInfo) -> int:
    """Pods of the same controller (ReplicaSet, StatefulSet, Job, ...) already on the node;
    normalized so the node with fewest scores highest."""
    return node.owner_counts.get(pod.owner_uid, 0)


def preferred_node_affinity(pod: PodInfo, node: NodeInfo) -> int:
    return sum(w for w, term in pod.preferred_terms if term.matches(node.labels, node.fields))


def intolerable_prefer_no_schedule(pod: PodInfo, node: NodeInfo) -> int:
    if not node.prefer_taints:
        return 0
    return sum(1 for taint in node.prefer_taints if not tolerates(pod.tolerations, taint))


def normalize_max(scores: list[int]) -> list[int]:
    """Higher raw is better: scale so the best node gets MAX_SCORE."""
    top = max(scores, default=0)
    if top <= 0:
        return [0] * len(scores)
    return [s * MAX_SCORE // top for s in scores]


def normalize_reverse(scores: list[int]) -> list[int]:
    """Lower raw is better: the node with the fewest gets MAX_SCORE, the most gets 0."""
    top = max(scores, default=0)
    if top <= 0:
        return [MAX_SCORE] * len(scores)
    return [(top - s) * MAX_SCORE // top for s in scores]


@dataclass(frozen=True)
class ScorePlugin:
    name: str
    fn: ScoreFn
    weight: int
    normalize: Normalizer | None = None
    applies: ScoreApplies = _always_scores


# Weights as Kubernetes' defaults: taints 3, affinity 2, spreading 2, resources 1 each.
SCORES: tuple[ScorePlugin, ...] = (
    ScorePlugin("NodeResourcesLeastAllocated", least_allocated, 1),
    ScorePlugin("NodeResourcesBalancedAllocation", balanced_allocation, 1),
    ScorePlugin(
        "OwnerSpread", owner_pod_count, 2, normalize_reverse, lambda p, _: bool(p.owner_uid)
    ),
    ScorePlugin(
        "NodeAffinity",
        preferred_node_affinity,
        2,
        normalize_max,
        lambda p, _: bool(p.preferred_terms),
    ),
    ScorePlugin(
        "TaintToleration",
        intolerable_prefer_no_schedule,
        3,
        normalize_reverse,
        lambda _, cache: cache.prefer_taint_nodes > 0,
    ),
)

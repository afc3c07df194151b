"""The scheduler's view of the cluster: every node with the pods bound or assumed on it.

Assume: once the scheduler picks a node it adds the pod to that node here at once, before
the Binding is even sent, so the next pod (scheduled while the bind is still in flight)
sees the reservation. When the bound pod arrives through the watch the assumption is
confirmed (the pod simply stays); when the bind fails it is forgotten.

Pods can name nodes the cache has not seen yet (watch order between kinds is not
guaranteed): they are kept on a placeholder NodeInfo that is not offered to filters until
its Node arrives.
"""

from __future__ import annotations

from capstan.api.core.v1 import core_pb2

from scheduler.nodeinfo import NodeInfo
from scheduler.podinfo import PodInfo


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        # Nodes that exist (have a Node object), in a stable order the scheduler rotates over.
        self.node_list: list[NodeInfo] = []
        self._pod_node: dict[str, str] = {}
        self._assumed: set[str] = set()
        # Nodes with PreferNoSchedule taints: while there are none, that score is constant
        # and the framework skips it.
        self.prefer_taint_nodes = 0

    # ------------------------------------------------------------------ nodes
    def set_node(self, node: core_pb2.Node) -> NodeInfo:
        name = node.metadata.name
        info = self.nodes.get(name)
        if info is None:
            info = NodeInfo(name)
            self.nodes[name] = info
        if info.node is None:
            self.node_list.append(info)
        elif info.prefer_taints:
            self.prefer_taint_nodes -= 1
        info.set_node(node)
        if info.prefer_taints:
            self.prefer_taint_nodes += 1
        return info

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None or info.node is None:
            return
        self.node_list.remove(info)
        if info.prefer_taints:
            self.prefer_taint_nodes -= 1
        if info.pods:
            # Pods still name it; keep their totals on a placeholder until they go too.
            info.node = None
        else:
            del self.nodes[name]

    # ------------------------------------------------------------------ pods
    def _place(self, pod: PodInfo, node_name: str) -> None:
        info = self.nodes.get(node_name)
        if info is None:
            info = NodeInfo(node_name)
            self.nodes[node_name] = info
        info.add_pod(pod)
        self._pod_node[pod.key] = node_name

    def _unplace(self, key: str) -> None:
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return
        info = self.nodes.get(node_name)
        if info is None:
            return
        info.remove_pod(key)
        if info.node is None and not info.pods:
            del self.nodes[node_name]

    def set_pod(self, pod: PodInfo) -> None:
        """A bound pod, added or updated: confirms an assumption (wherever it landed)."""
        self._assumed.discard(pod.key)
        self._unplace(pod.key)
        self._place(pod, pod.node_name)

    def confirm(self, key: str, node_name: str) -> bool:
        """The bind of an assumed pod was observed on the node it was assumed on: keep
        the placement (no recomputation). False if the pod was not assumed there."""
        if key in self._assumed and self._pod_node.get(key) == node_name:
            self._assumed.discard(key)
            return True
        return False

    def remove_pod(self, key: str) -> None:
        self._assumed.discard(key)
        self._unplace(key)

    def assume(self, pod: PodInfo, node_name: str) -> None:
        self._unplace(pod.key)
        self._place(pod, node_name)
        self._assumed.add(pod.key)

    def forget(self, key: str) -> None:
        """Undo an assumption whose bind failed; a pod already confirmed bound stays."""
        if key in self._assumed:
            self._assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def node_of(self, key: str) -> str | None:
        return self._pod_node.get(key)

    @property
    def assumed_count(self) -> int:
        return len(self._assumed)

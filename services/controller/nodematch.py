"""Would a pod be allowed on a node: nodeSelector, required node affinity (labels and
metadata.name fields) and NoSchedule/NoExecute taints against tolerations - the checks
the DaemonSet controller makes before it places a daemon pod (the scheduler makes the
same ones when it binds)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from capstan.api.core.v1 import core_pb2


def _requirement(req: core_pb2.NodeSelectorRequirement, values: Mapping[str, str]) -> bool:
    op, present = req.operator, req.key in values
    value = values.get(req.key, "")
    if op == "In":
        return present and value in req.values
    if op == "NotIn":
        return not present or value not in req.values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(req.values) == 1:
        try:
            have, want = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: core_pb2.NodeSelectorTerm, node: core_pb2.Node) -> bool:
    """A term with no requirements matches nothing (Kubernetes' rule)."""
    if not term.match_expressions and not term.match_fields:
        return False
    fields = {"metadata.name": node.metadata.name}
    return all(_requirement(r, node.metadata.labels) for r in term.match_expressions) and all(
        _requirement(r, fields) for r in term.match_fields
    )


def node_affinity_matches(spec: core_pb2.PodSpec, node: core_pb2.Node) -> bool:
    labels = node.metadata.labels
    if any(labels.get(k) != v for k, v in spec.node_selector.items()):
        return False
    if not spec.affinity.node_affinity.HasField(
        "required_during_scheduling_ignored_during_execution"
    ):
        return True
    required = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    return any(term_matches(t, node) for t in required.node_selector_terms)


def tolerates(tolerations: Iterable[core_pb2.Toleration], taint: core_pb2.Taint) -> bool:
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.operator == "Exists":
            if not t.key or t.key == taint.key:
                return True
        elif t.key == taint.key and t.value == taint.value:
            return True
    return False


def untolerated_taints(spec: core_pb2.PodSpec, node: core_pb2.Node) -> list[core_pb2.Taint]:
    return [
        t
        for t in node.spec.taints
        if t.effect in ("NoSchedule", "NoExecute") and not tolerates(spec.tolerations, t)
    ]


def fits(spec: core_pb2.PodSpec, node: core_pb2.Node) -> bool:
    return node_affinity_matches(spec, node) and not untolerated_taints(spec, node)

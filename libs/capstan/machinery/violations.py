"""Field violations: the one shape every validator reports, so the apiserver can turn
any list of them into INVALID_ARGUMENT with google.rpc.BadRequest details and the CLI
can print each bad field by name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    # Kubernetes-style JSON path of the bad field, e.g. "spec.containers[0].image".
    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"

"""A flow's parts: the nodes placed in it (:class:`FlowNode`), its edges (:class:`Edge`)
and the version of the native format (:data:`SCHEMA_VERSION`).

Shared by the flow itself (``_flow``) and its validation (``_validate``), which builds
them from a document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..nodes import Node

__all__ = ["SCHEMA_VERSION", "Edge", "FlowNode"]

#: Version of the native flow format written by this release.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Edge:
    """A connection; ``branch`` set means "only when the source returned that label"
    (``"error"``: only when the source failed)."""

    source: str
    target: str
    branch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "target": self.target}
        if self.branch is not None:
            out["branch"] = self.branch
        return out


@dataclass
class FlowNode:
    """A node placed in a flow: its id, the node (parameters), label and position."""

    id: str
    node: Node
    label: str = ""
    position: tuple[float, float] = (0.0, 0.0)

    @property
    def type(self) -> str:
        return self.node.type_name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.label:
            out["label"] = self.label
        params = self.node.values()
        if params:
            out["params"] = params
        out["position"] = [self.position[0], self.position[1]]
        return out

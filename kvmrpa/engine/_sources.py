"""Running a flow on another video source: ``--source URL`` and ``--source NODE=URL``.

A bare URL replaces the flow's source (what every ``source`` node with an empty ``url``
reads). A flow whose source nodes name several distinct URLs has no one source to
replace: a bare URL is refused, naming those nodes, and ``NODE=URL`` replaces the URL of
one node instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import FlowError
from .._urls import redact_url
from ..nodes.source import Source
from ._flow import Flow

__all__ = ["override_sources", "source_nodes"]


def source_nodes(flow: Flow) -> dict[str, str]:
    """The ``source`` nodes that name their own URL: node id → URL."""
    return {nid: fn.node.url for nid, fn in flow.nodes.items()
            if fn.node.type_name == "source" and isinstance(fn.node, Source) and fn.node.url}


def _is_node_spec(spec: str) -> bool:
    head, sep, _ = spec.partition("=")
    return bool(sep) and bool(head) and ":" not in head and "/" not in head


def override_sources(flow: Flow, specs: str | Iterable[str] | None) -> tuple[Flow, str | None]:
    """``(flow to run, source URL for the run)`` after applying ``specs``.

    ``flow`` itself is never changed: a ``NODE=URL`` spec returns a copy with that node's
    URL replaced. The URL is ``None`` when no bare URL was given (the flow's own).
    Raises :class:`~kvmrpa.FlowError` naming the flow and nodes when a spec cannot
    apply.
    """
    if specs is None:
        return flow, None
    if isinstance(specs, str):
        specs = [specs]
    named = source_nodes(flow)
    source: str | None = None
    changes: dict[str, str] = {}
    for spec in specs:
        if _is_node_spec(spec):
            nid, _, url = spec.partition("=")
            if nid not in named and not (nid in flow.nodes
                                         and flow.nodes[nid].node.type_name == "source"):
                known = ", ".join(sorted(n for n, fn in flow.nodes.items()
                                         if fn.node.type_name == "source")) or "none"
                raise FlowError(f"flow {flow.name!r}: --source {nid}=…: no source node "
                                     f"{nid!r} (source nodes: {known})")
            changes[nid] = url
            continue
        if len(set(named.values())) > 1:
            listing = ", ".join(f"{n} ({redact_url(u)})" for n, u in sorted(named.items()))
            raise FlowError(f"flow {flow.name!r} reads several sources: {listing}; "
                                 f"give --source NODE=URL for the one to replace")
        source = spec
    if not changes:
        return flow, source
    copy = Flow.from_dict(flow.to_dict())
    for nid, url in changes.items():
        node = copy.nodes[nid].node
        assert isinstance(node, Source)  # a "source" node, checked above
        node.url = url
    return copy, source

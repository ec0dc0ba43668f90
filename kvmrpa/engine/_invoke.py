"""Node invocation: one node's attempts, with its timeout, retries and cancellation.

:class:`NodeInvoker` runs a node's ``run`` once per attempt (an async ``run`` on the
loop, a blocking one in the runtime's pool, tracked as abandoned if it outlives its
timeout or a stop), with the node's :class:`~kvmrpa.engine.NodeContext` and the run's
input gate bound to the code's context, and emits ``node_started`` / ``node_finished``
/ ``node_failed`` for each attempt. It returns ``(output, error)``; it never decides
what happens next in the pass (that is the scheduler's job) and raises only
``asyncio.CancelledError``: when the node was cancelled, or when it failed because the
run's input was cut by a stop (then the node counts as stopped, not failed).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import NodeError, NodeTimeoutError
from .._runtime import get_runtime
from ..kvm import bind_gate, unbind_gate
from ._context import CURRENT_NODE, Inputs, NodeContext
from ._events import NodeFailed, NodeFinished, NodeStarted, summarize

if TYPE_CHECKING:  # pragma: no cover
    from . import FlowRun, NodeRecord  # the package's names: the executor imports this module

__all__ = ["NodeInvoker"]


def _run_blocking(ctx_vars: contextvars.Context, fn: Callable[..., Any], *args: Any) -> Any:
    return ctx_vars.run(fn, *args)


class NodeInvoker:
    """Invokes the nodes of one run (see the module docstring)."""

    __slots__ = ("_run",)

    def __init__(self, run: FlowRun) -> None:
        self._run = run

    async def invoke(self, nid: str, inputs: Inputs, pass_index: int, rec: NodeRecord,
                     landed: Callable[[Any, str, dict[str, Any] | None, NodeError | None],
                                      None] | None = None,
                     token: Any = None) -> tuple[dict[str, Any] | None, NodeError | None]:
        """Run ``nid`` on ``inputs``; returns ``(output, error)`` and also hands them to
        ``landed(token, nid, output, error)`` (not when cancelled): as a pass's node task,
        the node's whole life is this one coroutine."""
        run = self._run
        flow = run.flow
        graph = run.graph
        fnode = flow.nodes[nid]
        node = fnode.node
        attempts, timeout, retry_delay, _cont, env_refs = graph.policy[nid]
        blocking = graph.blocking[nid]
        emit = run.emit if run.listened else None
        gate = run.input_gate
        error: NodeError | None = None
        output: dict[str, Any] | None = None
        for attempt in range(attempts):
            rec.attempts = attempt + 1
            if emit is not None:
                emit(NodeStarted, node=nid, type=fnode.type, pass_index=pass_index,
                     attempt=attempt + 1)
            t0 = time.perf_counter()
            ctx = NodeContext(run, nid, attempt)
            node_token = CURRENT_NODE.set(ctx)
            gate_token = bind_gate(gate, nid)
            try:
                runnable = node.resolved(nid) if env_refs else node
                if blocking:
                    call = get_runtime().run_blocking(
                        f"node {nid} of flow {flow.name!r}", _run_blocking,
                        contextvars.copy_context(), runnable.run, inputs, ctx, owner=run)
                else:
                    call = runnable.run(inputs, ctx)
                if timeout:
                    try:
                        async with asyncio.timeout(timeout) as scope:
                            output = await call
                    except TimeoutError as exc:
                        if scope.expired():
                            raise NodeTimeoutError(f"timed out after {timeout:g} s", node_id=nid,
                                                   flow=flow.name, cause=exc) from None
                        raise
                else:
                    output = await call
                if output is not None and not isinstance(output, dict):
                    raise NodeError(f"run() returned {type(output).__name__}, expected a dict "
                                    "or None", node_id=nid, flow=flow.name)
                if output is not None and "branch" in output and output["branch"] is not None:
                    output["branch"] = str(output["branch"])
                error = None
                if emit is not None:
                    emit(NodeFinished, node=nid, type=fnode.type, pass_index=pass_index,
                         duration=time.perf_counter() - t0,
                         branch=output.get("branch") if output else None,
                         summary=summarize(output))
                break
            except asyncio.CancelledError:
                raise
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                if gate.stopped:
                    # it failed because its input was cut by the stop: it is stopped
                    run.request_stop(gate.reason or "stop")
                    raise asyncio.CancelledError from None
                if isinstance(exc, NodeError):
                    error = exc if exc.flow else _name_flow(exc, flow.name)
                else:
                    # user code calling sys.exit() fails its node, not the runtime's loop
                    error = NodeError(f"{type(exc).__name__}: {exc}", node_id=nid,
                                      flow=flow.name, cause=exc,
                                      field=getattr(exc, "field", None))
            finally:
                unbind_gate(gate_token)
                CURRENT_NODE.reset(node_token)
            output = None
            last = attempt + 1 >= attempts
            if emit is not None:
                emit(NodeFailed, node=nid, type=fnode.type, pass_index=pass_index,
                     duration=time.perf_counter() - t0, error=str(error),
                     handled=not last or graph.handled(nid))
            if not last and retry_delay:
                await asyncio.sleep(retry_delay)
        if landed is not None:
            landed(token, nid, output, error)
        return output, error


def _name_flow(exc: NodeError, flow: str) -> NodeError:
    """A node's own ``NodeError`` raised without the flow name gets it (message too)."""
    exc.flow = flow
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (f"flow {flow!r}: {exc.args[0]}", *exc.args[1:])
    return exc

"""The node base class: what every node type is and how the executor calls it.

Writing a node type
-------------------
A node type is a :class:`Node` subclass (a ``param.Parameterized``). Its parameters are
its configuration: typed, bounded where they have bounds, documented with ``doc=``;
they are what a flow file stores under ``params`` and what ``pn.Param`` renders as the
form. Internal parameters are hidden with ``precedence < 0``. The class docstring says
what the node reads from its inputs and what it returns.

A node implements ``run(self, inputs, ctx)``:

* ``async def run(...)`` runs on the runtime's event loop; it must not block (await I/O,
  offload CPU work with ``await ctx.runtime.to_thread(fn, ...)``).
* a plain ``def run(...)`` is treated as blocking: the executor runs it in the runtime's
  bounded thread pool, never on the loop. From there, use ``ctx.call(coro)`` to reach
  async APIs (for example ``ctx.call(ctx.source())``).

``run`` returns a ``dict`` of outputs (or ``None``). Well-known keys: ``frame``,
``texts``, ``matches``, ``detections``, ``point`` and ``branch`` (the label of the
outgoing edges to follow). A node that returns ``branch`` lists the labels it can
produce in :attr:`Node.branches` (validation rejects edges with other labels);
:data:`ANY_BRANCH` means "any label" (for user code). The label ``error`` is reserved
for edges followed when the node fails.

Class attributes a subclass sets:

* :attr:`Node.type_name` — the stable name used in flow files (``"wait"``);
* :attr:`Node.branches` — branch labels the node can return;
* :attr:`Node.required` — parameters that must be non-empty before a run;
* :attr:`Node.category` — a grouping for palettes (``"logic"``, ``"vision"`` …);
* :attr:`Node.evaluates_code` — True for a type that runs user code beyond the safe
  expression language (``python``): a browser may create, edit or run it only as an
  admin of a server started with ``--allow-code``.

Override :meth:`Node.check` for cross-field validation (it returns ``(field, message)``
pairs, reported together with every other problem before anything runs).

Every node also has the common execution parameters ``timeout``, ``retries``,
``retry_delay`` and ``on_error`` (``fail`` fails the pass; ``continue`` records the
failure and lets the pass go on).

String parameters may hold secret references ``${env:NAME}``: they stay as written in
the flow (and in saved files) and are resolved only when the node runs
(:meth:`Node.resolved`).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, overload

import param

from .._errors import NodeError
from .._redact import register_secret

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .._runtime import Runtime
    from .._settings import Settings

__all__ = ["ANY_BRANCH", "COMMON_PARAMS", "ENV_REF", "Inputs", "Node", "NodeContext",
           "resolve_env_refs"]

_T = TypeVar("_T")


class Inputs(Protocol):
    """What a node's ``run`` receives as ``inputs`` (the executor provides it).

    A mapping of each live predecessor's id to its output ``dict``, with accessors for
    the *nearest upstream* value of a well-known key.
    """

    #: The failure of the predecessor when the node runs on an ``error`` edge.
    error: BaseException | None

    def __getitem__(self, key: str) -> Mapping[str, Any]: ...
    def __iter__(self) -> Any: ...
    def __len__(self) -> int: ...
    def keys(self) -> Any: ...
    def values(self) -> Any: ...
    def items(self) -> Any: ...
    @overload
    def get(self, key: str, /) -> Mapping[str, Any] | None: ...
    @overload
    def get(self, key: str, default: Any, /) -> Any: ...
    def merged(self) -> dict[str, Any]: ...
    def nearest(self, key: str, default: Any = None) -> Any: ...
    def frame(self) -> Any: ...
    def texts(self) -> Any: ...
    def matches(self) -> Any: ...
    def detections(self) -> Any: ...
    def point(self) -> Any: ...


class NodeContext(Protocol):
    """What a node's ``run`` receives as ``ctx`` (the executor provides it).

    The flow's video source and input driver (opened on first use, shared, released
    when the run ends), variables and per-node state that persist across passes, the
    audit trail, a logger, the settings and the runtime.
    """

    node_id: str
    attempt: int

    @property
    def flow_name(self) -> str: ...
    @property
    def pass_index(self) -> int: ...
    @property
    def variables(self) -> dict[str, Any]: ...
    @property
    def state(self) -> dict[str, Any]: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def runtime(self) -> Runtime: ...
    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]: ...
    @property
    def stopping(self) -> bool: ...
    def finish_run(self) -> None: ...
    async def source(self, url: str | None = None) -> Any: ...
    async def input(self, url: str | None = None) -> Any: ...
    def record_action(self, action: Mapping[str, Any]) -> None: ...
    def observe(self, frame: Any, **results: Any) -> None: ...
    def call(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T: ...

#: ``Node.branches`` value meaning "may return any branch label".
ANY_BRANCH: tuple[str, ...] = ("*",)

#: ``${env:NAME}``: a secret reference resolved from the environment at run time.
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

#: Parameters every node has (execution policy), not part of a node type's own form.
COMMON_PARAMS: tuple[str, ...] = ("timeout", "retries", "retry_delay", "on_error")


def resolve_env_refs(text: str, *, where: str = "") -> str:
    """Replace every ``${env:NAME}`` in ``text`` by the variable's value.

    Raises :class:`KeyError` naming the variable (never its value) when it is unset.
    Each value is registered with :func:`kvmrpa._redact.register_secret`.
    """

    def _sub(m: re.Match[str]) -> str:
        name = m.group(1)
        value = os.environ.get(name)
        if value is None:
            raise KeyError(f"{where}environment variable {name} is not set")
        register_secret(value)  # hidden from logs, errors and records from now on
        return value

    return ENV_REF.sub(_sub, text)


class Node(param.Parameterized):
    """Base of every node type (see the module docstring for how to write one).

    Inputs: whatever its predecessors returned. Outputs: a ``dict`` or ``None``.
    """

    type_name: ClassVar[str] = ""
    branches: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()
    category: ClassVar[str] = "misc"
    evaluates_code: ClassVar[bool] = False

    timeout = param.Number(default=0.0, bounds=(0, 86400), doc="Seconds the node may run; 0 means no limit.")
    retries = param.Integer(default=0, bounds=(0, 100), doc="Extra attempts after a failure (0: fail at once).")
    retry_delay = param.Number(default=0.0, bounds=(0, 3600), doc="Seconds between attempts.")
    on_error: param.Selector[str] = param.Selector(default="fail", objects=["fail", "continue"], doc="On failure: 'fail' fails the pass (unless an 'error' edge handles it); 'continue' records the failure and goes on.")

    # -- the contract ------------------------------------------------------------------
    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any] | None:  # pragma: no cover - abstract
        """Do the node's work; see the module docstring."""
        raise NotImplementedError(f"node type {self.type_name!r} does not implement run()")

    @classmethod
    def is_blocking(cls) -> bool:
        """True when ``run`` is a plain function (offloaded to the thread pool)."""
        return not inspect.iscoroutinefunction(cls.run)

    def check(self) -> list[tuple[str, str]]:
        """Cross-field problems as ``(field, message)`` pairs; default: :attr:`required`."""
        out: list[tuple[str, str]] = []
        for name in self.required:
            value = getattr(self, name, None)
            if value is None or (isinstance(value, str | list | tuple | dict) and not value):
                out.append((name, "is required"))
        return out

    def can_branch(self, label: str) -> bool:
        """Whether an outgoing edge may carry ``label``."""
        return label == "error" or self.branches == ANY_BRANCH or label in self.branches

    # -- parameters --------------------------------------------------------------------
    def show_params(self, shown: Iterable[tuple[str, bool]]) -> None:
        """Show or hide parameters in the node's form, from ``(name, shown)`` pairs: a
        hidden one keeps its value and its place (its ``precedence`` turns negative)."""
        for name, visible in shown:
            p = self.param[name]
            p.precedence = abs(p.precedence or 0.5) * (1 if visible else -1)

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the parameters stored in a flow file (``name`` excluded)."""
        return [n for n in cls.param if n != "name"]

    def values(self, *, include_defaults: bool = False) -> dict[str, Any]:
        """Parameter values as JSON-ready data; by default only those differing from defaults."""
        out: dict[str, Any] = {}
        for n in self.param_names():
            value = getattr(self, n)
            if include_defaults or value != self.param[n].default:
                out[n] = _jsonable(value)
        return out

    def env_refs(self) -> dict[str, str]:
        """String parameters that hold ``${env:…}`` references (name → raw text)."""
        return {n: v for n in self.param_names()
                if isinstance(v := getattr(self, n), str) and ENV_REF.search(v)}

    def resolved(self, node_id: str = "?") -> Node:
        """This node, or a copy with every ``${env:NAME}`` resolved (the flow keeps the
        reference; the resolved copy exists only for the run)."""
        refs = self.env_refs()
        if not refs:
            return self
        values = {n: getattr(self, n) for n in self.param_names()}
        for n, raw in refs.items():
            try:
                values[n] = resolve_env_refs(raw)
            except KeyError as exc:
                raise NodeError(str(exc.args[0]), node_id=node_id, field=n) from None
        return type(self)(**values)

    def copy(self) -> Node:
        """An independent node with the same parameter values."""
        return type(self)(**{n: getattr(self, n) for n in self.param_names()})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.values().items())
        return f"{type(self).__name__}({shown})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value

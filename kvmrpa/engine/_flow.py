"""The flow model: nodes, edges, variables, metadata; JSON round trip; atomic save.

Build a flow in code::

    flow = Flow("demo")
    check = flow.add("condition", "check", expression="count > 2")
    flow.add(Wait(ms=100), "pause")
    flow.connect("check", "pause", branch="true")
    flow.save("demo.flow.json")

The JSON form (``schema_version`` :data:`SCHEMA_VERSION`) is described by the JSON
Schema shipped beside this module (``kvmrpa schema`` prints it). Saving is atomic: the
data goes to a temporary file in the same folder, is fsynced, then renamed over the
target, so a process killed mid-save leaves the old file or the new one. Secrets are
``${env:NAME}`` references: they are saved as written and resolved only at run time;
a plain-text secret is refused on save (:meth:`Flow.plain_secrets` says where they are
looked for).

Validation (``_validate``) sits below this module; the executor sits above it, so
:meth:`Flow.start` / :meth:`Flow.run` take :class:`FlowRun` from the package
(``kvmrpa.engine``), as the engine's other parts do for the run's types.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import FlowError, FlowValidationError, Problem
from .._redact import is_secret_name, plain_secret_in_url
from ..nodes import ENV_REF, Node, get_node_class
from ._model import SCHEMA_VERSION, Edge, FlowNode
from ._validate import document_fields, flow_problems, parse_document, read_document

if TYPE_CHECKING:  # pragma: no cover
    from . import FlowRun, RunResult

__all__ = ["SCHEMA_VERSION", "Edge", "Flow", "FlowNode"]

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")


def _has_plain_password(url: str) -> bool:
    """A password or secret query value in plain text (not ``${env:NAME}``)."""
    return plain_secret_in_url(url) is not None


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


#: Node parameters naming a file that a flow file keeps relative to its own folder.
PATH_PARAMS: tuple[str, ...] = ("template",)


def _relative_file(value: str) -> bool:
    """A non-empty relative path, not ``~``-based and not a ``${…}`` reference."""
    return bool(value) and not os.path.isabs(value) and not value.startswith(("~", "${"))


@dataclass
class Flow:
    """A flow: a DAG of nodes, plus variables, default source/input URLs and metadata."""

    name: str = "flow"
    description: str = ""
    source: str | None = None
    input: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    passes: int | None = None
    interval: float | None = None
    created: str | None = None
    updated: str | None = None
    nodes: dict[str, FlowNode] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    #: Problems found while importing another format (not saved).
    import_warnings: list[Problem] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------
    def add(self, node: Node | str, id: str | None = None, *, label: str = "",
            position: tuple[float, float] = (0.0, 0.0), **params: Any) -> Node:
        """Add a node (an instance, or a type name plus parameters); returns the node."""
        if isinstance(node, str):
            cls = get_node_class(node)
            if cls is None:
                raise FlowError(f"unknown node type {node!r}", flow=self.name)
            node = cls(**params)
        elif params:
            node.param.update(**params)
        if not isinstance(node, Node):
            raise TypeError(f"Flow.add expects a Node or a type name, got {type(node).__name__}")
        if not node.type_name:
            raise FlowError(f"{type(node).__name__} is not a registered node type", flow=self.name)
        if id is None:
            n = len(self.nodes) + 1
            while f"{node.type_name}{n}" in self.nodes:
                n += 1
            id = f"{node.type_name}{n}"
        if not _ID.match(id):
            raise FlowError(f"node id {id!r} must match {_ID.pattern}", flow=self.name)
        if id in self.nodes:
            raise FlowError(f"node id {id!r} is already used", flow=self.name)
        try:
            pos = (float(position[0]), float(position[1]))
        except (OverflowError, TypeError, ValueError, IndexError):
            raise FlowError(f"node {id}: position {position!r} is not two numbers",
                            flow=self.name) from None
        self.nodes[id] = FlowNode(id, node, label, pos)
        return node

    def _id_of(self, ref: str | Node) -> str:
        if isinstance(ref, str):
            if ref not in self.nodes:
                raise FlowError(f"no node {ref!r} in the flow", flow=self.name)
            return ref
        for fn in self.nodes.values():
            if fn.node is ref:
                return fn.id
        raise FlowError(f"{ref!r} is not a node of this flow", flow=self.name)

    def connect(self, source: str | Node, target: str | Node, branch: str | None = None) -> Edge:
        """Connect two nodes (ids or node objects); ``branch`` labels the edge."""
        edge = Edge(self._id_of(source), self._id_of(target), branch)
        self.edges.append(edge)
        return edge

    def disconnect(self, source: str | Node, target: str | Node) -> None:
        s, t = self._id_of(source), self._id_of(target)
        self.edges = [e for e in self.edges if (e.source, e.target) != (s, t)]

    def remove(self, ref: str | Node) -> None:
        """Remove a node and its edges."""
        nid = self._id_of(ref)
        del self.nodes[nid]
        self.edges = [e for e in self.edges if nid not in (e.source, e.target)]

    def __getitem__(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id].node
        except KeyError:
            raise KeyError(f"flow {self.name!r} has no node {node_id!r}") from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __iter__(self) -> Iterator[FlowNode]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def id_of(self, node: Node) -> str:
        """The id under which ``node`` is in this flow."""
        return self._id_of(node)

    # -- validation ----------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        """Every problem of this flow (node checks and graph checks), all together."""
        return flow_problems(self.nodes, self.edges, self.passes, self.interval,
                             self.variables)

    def validate(self) -> Flow:
        """Raise :class:`FlowValidationError` listing every problem; returns ``self``."""
        problems = self.problems()
        if problems:
            raise FlowValidationError(problems, flow=self.name)
        return self

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The native JSON form (secret references kept as written)."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "name": self.name,
            "description": self.description, "created": self.created, "updated": self.updated,
            "source": self.source, "input": self.input,
            "variables": dict(self.variables), "metadata": dict(self.metadata),
        }
        run: dict[str, Any] = {}
        if self.passes is not None:
            run["passes"] = self.passes
        if self.interval is not None:
            run["interval"] = self.interval
        if run:
            out["run"] = run
        out["nodes"] = [fn.to_dict() for fn in self.nodes.values()]
        out["edges"] = [e.to_dict() for e in self.edges]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON: a NaN or Infinity anywhere raises :class:`FlowValidationError`."""
        try:
            return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)
        except ValueError as exc:
            problems = self.problems() or [Problem(None, None, f"not valid JSON: {exc}")]
            raise FlowValidationError(problems, flow=self.name) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "<dict>") -> Flow:
        """Build a flow from native or original-format data, raising one
        :class:`FlowValidationError` listing every problem."""
        return cls(**document_fields(data, origin=origin))

    @classmethod
    def from_json(cls, text: str | bytes, *, origin: str = "<string>") -> Flow:
        return cls.from_dict(parse_document(text, origin=origin), origin=origin)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Flow:
        """Read a flow file (native or the original system's format, auto-detected).
        A relative file parameter (:data:`PATH_PARAMS`, e.g. a ``templates/x.png``
        saved beside the flow) that names a file next to the flow file is read from
        there, wherever the flow is run from."""
        data = read_document(path)
        folder = Path(path).parent
        nodes = data.get("nodes") if isinstance(data, Mapping) else None
        for raw in nodes if isinstance(nodes, list) else []:
            params = raw.get("params") if isinstance(raw, dict) else None
            if not isinstance(params, dict):
                continue
            for name in PATH_PARAMS:
                value = params.get(name)
                if isinstance(value, str) and _relative_file(value) \
                        and (folder / value).is_file():
                    params[name] = str((folder / value).resolve())
        return cls.from_dict(data, origin=str(path))

    def plain_secrets(self) -> list[Problem]:
        """Plain-text secrets that saving would write: URL passwords and secret query
        values (whitespace around a URL ignored), ``Secret`` parameters, variables whose
        names look secret, and the text of a keyboard node marked ``secret``. Each must
        be a ``${env:NAME}`` reference."""
        from .._settings import Secret

        out: list[Problem] = []
        for fld in ("source", "input"):
            url = getattr(self, fld)
            if isinstance(url, str) and (what := plain_secret_in_url(url)) is not None:
                out.append(Problem(None, fld, f"the URL holds {what}; use ${{env:NAME}}"))
        for name, value in self.variables.items():
            out += [Problem(None, f"variables.{path}", why) for path, why in
                    _secret_values(name, value)]
        for fn in self.nodes.values():
            marked = bool(getattr(fn.node, "secret", False)) if "secret" in fn.node.param else False
            for n in fn.node.param_names():
                p = fn.node.param[n]
                value = getattr(fn.node, n)
                if isinstance(p, Secret) and value and not _env_only(value):
                    out.append(Problem(fn.id, n, "a secret in plain text; use ${env:NAME}"))
                elif marked and n == "text" and isinstance(value, str) and value \
                        and not _env_only(value):
                    out.append(Problem(fn.id, n, "text marked secret is in plain text; "
                                                 "use ${env:NAME}"))
                elif isinstance(value, str) and (what := plain_secret_in_url(value)) is not None:
                    out.append(Problem(fn.id, n, f"a URL with {what}; use ${{env:NAME}}"))
        return out

    def save(self, path: str | os.PathLike[str], *, allow_plain_secrets: bool = False) -> Path:
        """Write the flow atomically (temp file, fsync, rename); returns the path."""
        secrets = [] if allow_plain_secrets else self.plain_secrets()
        if secrets:
            raise FlowValidationError(secrets, flow=self.name)
        target = Path(path)
        self.created = self.created or _now()
        self.updated = _now()
        text = self.to_json()
        folder = target.parent.resolve()
        doc = json.loads(text)
        for node in doc["nodes"]:  # files beside the flow are named relative to it
            params = node.get("params") or {}
            for name in PATH_PARAMS:
                value = params.get(name)
                if isinstance(value, str) and value and os.path.isabs(value):
                    with contextlib.suppress(ValueError):  # elsewhere: kept absolute
                        params[name] = Path(value).resolve().relative_to(folder).as_posix()
        data = (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
                + "\n").encode("utf-8")
        atomic_write(target, data)
        return target

    # -- running -------------------------------------------------------------------------
    def start(self, **options: Any) -> FlowRun:
        """Start a run in the background (see :class:`FlowRun` for the options)."""
        from . import FlowRun

        return FlowRun(self, **options).start()

    def run(self, timeout: float | None = None, **options: Any) -> RunResult:
        """Run (one pass by default) and block until it ends; returns the result."""
        from . import FlowRun

        options.setdefault("passes", 1)
        return FlowRun(self, **options).start().result(timeout)

    async def arun(self, **options: Any) -> RunResult:
        """Async form of :meth:`run`, usable from any event loop."""
        from .._runtime import get_runtime
        from . import FlowRun

        options.setdefault("passes", 1)
        # validation may load models and templates (node checks): not on the caller's loop
        run = await get_runtime().to_thread(lambda: FlowRun(self, **options))
        await run.astart()
        return await run.aresult()

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, nodes={len(self.nodes)}, edges={len(self.edges)})"


def _env_only(text: str) -> bool:
    """Whether ``text`` is made only of ``${env:NAME}`` references (and whitespace)."""
    return not ENV_REF.sub("", text).strip()


def _secret_values(name: str, value: Any, depth: int = 0) -> list[tuple[str, str]]:
    """``(path, why)`` for plain secrets in a variable (by its name, or URLs inside)."""
    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        if is_secret_name(name) and value.strip() and not _env_only(value):
            out.append((name, "looks like a secret (by its name) in plain text; "
                              "use ${env:NAME}"))
        elif (what := plain_secret_in_url(value)) is not None:
            out.append((name, f"a URL with {what}; use ${{env:NAME}}"))
    elif isinstance(value, int | float) and not isinstance(value, bool) and is_secret_name(name):
        out.append((name, "looks like a secret (by its name) in plain text; use ${env:NAME}"))
    elif isinstance(value, Mapping) and depth < 16:
        for k, v in value.items():
            out += _secret_values(f"{name}.{k}", v, depth + 1)
    elif isinstance(value, list) and depth < 16:
        for i, v in enumerate(value):
            out += _secret_values(f"{name}[{i}]", v, depth + 1)
    return out


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so that readers see the old or the new content."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:  # the file keeps its mode; a new one gets the umask's (mkstemp would make it 0600)
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it, racily)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022

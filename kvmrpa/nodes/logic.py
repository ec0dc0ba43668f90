"""Logic nodes: ``wait``, ``variable``, ``condition``, ``loop``, ``python``.

Expressions (``condition`` in expression mode, ``loop`` while-conditions, ``variable``
values computed from an expression) are evaluated by :func:`evaluate`, a *safe*
evaluator (simpleeval: literals, arithmetic, comparisons, ``and``/``or``/``not``,
subscripts, and the functions ``len abs min max round int float str bool``; no
attribute access to dunders, no imports, no calls to anything else). Names are the
flow's variables; ``inputs`` is the merged output of the node's direct predecessors.
``${name}`` is accepted as a variable reference (the original system's style).

``python`` is different on purpose: it runs **trusted** user code in-process, with
``exec``. Only put code you would run yourself in a flow.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import operator
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import param
from simpleeval import DEFAULT_FUNCTIONS, EvalWithCompoundTypes, InvalidExpression

from .._errors import NodeError, VisionError
from ..vision._text import compile_user_regex
from ._base import ANY_BRANCH, Node
from ._registry import register_node

if TYPE_CHECKING:  # pragma: no cover
    from ._base import Inputs, NodeContext

__all__ = [
    "Condition",
    "Loop",
    "PythonCode",
    "Variable",
    "Wait",
    "evaluate",
    "expression_problem",
]

_VAR_REF = re.compile(r"\$\{(?!env:)([A-Za-z_][A-Za-z0-9_]*)\}")
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{k: v for k, v in DEFAULT_FUNCTIONS.items() if k in ("int", "float", "str")},
    "len": len, "abs": abs, "min": min, "max": max, "round": round, "bool": bool,
}


def _prepare(expr: str) -> str:
    return _VAR_REF.sub(r"\1", expr).strip()


def expression_problem(expr: str) -> str | None:
    """Why ``expr`` is not a valid expression (syntax), or ``None``."""
    text = _prepare(expr)
    if not text:
        return "is empty"
    try:
        ast.parse(text, mode="eval")
    except SyntaxError as exc:
        return f"invalid expression at column {exc.offset}: {exc.msg}"
    return None


def evaluate(expr: str, names: Mapping[str, Any]) -> Any:
    """Evaluate a safe expression with ``names`` bound (see the module docstring)."""
    evaluator = EvalWithCompoundTypes(names=dict(names), functions=_FUNCTIONS)
    return evaluator.eval(_prepare(expr))


def _eval_for(node_id: str, field: str, expr: str, names: Mapping[str, Any]) -> Any:
    try:
        return evaluate(expr, names)
    except (InvalidExpression, SyntaxError, TypeError, ValueError, ArithmeticError,
            KeyError, IndexError, AttributeError) as exc:
        raise NodeError(f"expression {expr!r} failed: {exc}", node_id=node_id,
                        field=field, cause=exc) from exc


def _names(inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
    return {**ctx.variables, "inputs": inputs.merged()}


@register_node
class Wait(Node):
    """Wait a number of milliseconds.

    Inputs: none used. Outputs: ``{"waited_ms": ms}``.
    """

    type_name: ClassVar[str] = "wait"
    category: ClassVar[str] = "logic"

    ms = param.Integer(default=1000, bounds=(0, 86_400_000), doc="Milliseconds to wait.")

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        ms = self.ms  # one read: a param attribute access costs ~2 µs
        await asyncio.sleep(ms / 1000)
        return {"waited_ms": ms}


@register_node
class Variable(Node):
    """Set, increment, decrement or append to a flow variable.

    Inputs: the variables (and ``inputs`` when ``value`` is an expression).
    Outputs: ``{"variable": name, "value": new value}``.
    """

    type_name: ClassVar[str] = "variable"
    category: ClassVar[str] = "logic"
    required: ClassVar[tuple[str, ...]] = ("variable",)

    variable = param.String(default="", regex=r"^([A-Za-z_][A-Za-z0-9_]*)?$", doc="Name of the variable.")
    operation: param.Selector[str] = param.Selector(default="set", objects=["set", "increment", "decrement", "append"], doc="What to do with the value.")
    value = param.Parameter(default=None, doc="Value to set or append, or the step of increment/decrement (default 1). A JSON value.")
    expression = param.Boolean(default=False, doc="Treat a string value as a safe expression over the variables.")

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.expression:
            if not isinstance(self.value, str):
                out.append(("value", "must be an expression string when expression is on"))
            elif (why := expression_problem(self.value)) is not None:
                out.append(("value", why))
        if self.operation in ("increment", "decrement") and self.value is not None \
                and not self.expression and (isinstance(self.value, bool)
                                             or not isinstance(self.value, int | float)):
            out.append(("value", f"must be a number to {self.operation}, got {self.value!r}"))
        return out

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        value = self.value
        if self.expression:
            value = _eval_for(ctx.node_id, "value", str(value), _names(inputs, ctx))
        variables = ctx.variables
        name = self.variable
        if self.operation == "set":
            new = value
        elif self.operation == "append":
            current = variables.get(name)
            if current is None:
                current = []
            if not isinstance(current, list):
                raise NodeError(f"cannot append to variable {name!r} holding {type(current).__name__}",
                                node_id=ctx.node_id, field="variable")
            new = [*current, value]
        else:
            step = 1 if value is None else value
            current = variables.get(name, 0)
            if isinstance(current, bool) or not isinstance(current, int | float) \
                    or isinstance(step, bool) or not isinstance(step, int | float):
                raise NodeError(
                    f"cannot {self.operation} variable {name!r} ({current!r}) by {step!r}: not numbers",
                    node_id=ctx.node_id, field="value")
            new = current + step if self.operation == "increment" else current - step
        variables[name] = new
        return {"variable": name, "value": new}


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
    "contains": lambda a, b: b in a, "not_contains": lambda a, b: b not in a,
    "matches": lambda a, b: compile_user_regex(str(b), field="value").search(str(a)),
}


def compare(left: Any, op: str, right: Any) -> bool:
    """Compare with one of ``== != > >= < <= contains not_contains matches``.

    Numbers given as strings compare as numbers with numbers.
    """
    if isinstance(left, int | float) and not isinstance(left, bool) and isinstance(right, str):
        with contextlib.suppress(ValueError):
            right = float(right)
    return bool(_OPERATORS[op](left, right))


@register_node
class Condition(Node):
    """Choose a branch: ``true`` or ``false``.

    ``mode="variable"``: compare a variable with ``value`` using ``operator``;
    ``mode="expression"``: evaluate a safe ``expression`` (see the module docstring).
    Inputs: the variables; ``inputs`` in expressions. Outputs:
    ``{"branch": "true"|"false", "result": bool}``.
    """

    type_name: ClassVar[str] = "condition"
    category: ClassVar[str] = "logic"
    branches: ClassVar[tuple[str, ...]] = ("true", "false")

    mode: param.Selector[str] = param.Selector(default="expression", objects=["expression", "variable"], doc="What to test.")
    expression = param.String(default="", doc="Safe expression (mode 'expression'), e.g. count >= 3 and name == 'x'.")
    variable = param.String(default="", regex=r"^([A-Za-z_][A-Za-z0-9_]*)?$", doc="Variable to compare (mode 'variable').")
    operator: param.Selector[str] = param.Selector(default="==", objects=[*_OPERATORS, "exists"], doc="Comparison (mode 'variable').")
    value = param.Parameter(default=None, doc="Value compared with the variable (mode 'variable'); a JSON value.")

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.mode == "expression":
            why = expression_problem(self.expression)
            if why is not None:
                out.append(("expression", why))
        elif not self.variable:
            out.append(("variable", "is required in mode 'variable'"))
        elif self.operator == "matches":
            try:
                compile_user_regex(str(self.value), field="value")
            except VisionError as exc:
                out.append(("value", str(exc).removeprefix("value: ")))
        return out

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        if self.mode == "expression":
            result = bool(_eval_for(ctx.node_id, "expression", self.expression, _names(inputs, ctx)))
        elif self.operator == "exists":
            result = self.variable in ctx.variables
        else:
            if self.variable not in ctx.variables:
                raise NodeError(f"variable {self.variable!r} is not defined",
                                node_id=ctx.node_id, field="variable")
            try:
                result = compare(ctx.variables[self.variable], self.operator, self.value)
            except (TypeError, ValueError, re.error) as exc:
                raise NodeError(f"cannot compare {ctx.variables[self.variable]!r} "
                                f"{self.operator} {self.value!r}: {exc}",
                                node_id=ctx.node_id, field="operator", cause=exc) from exc
        return {"branch": "true" if result else "false", "result": result}


@register_node
class Loop(Node):
    """Count iterations across passes: branch ``true`` while the loop goes on, ``false``
    once it is done (the counter then starts again).

    A flow is a DAG, so a loop is expressed with passes: run the flow in loop mode and
    put the work on the ``true`` branch. ``mode="count"`` goes on for ``count``
    iterations; ``mode="while"`` goes on while the safe ``condition`` holds. The
    iteration number (1-based) is stored in the variable named by ``index_variable``.
    With ``when_done="end_run"`` the run ends after the pass in which the loop is done,
    so ``kvmrpa run --passes 0`` runs the body ``count`` times and stops.

    Inputs: the variables (in ``condition``). Outputs: ``{"branch": "true"|"false", "index": n}``.
    """

    type_name: ClassVar[str] = "loop"
    category: ClassVar[str] = "logic"
    branches: ClassVar[tuple[str, ...]] = ("true", "false")

    mode: param.Selector[str] = param.Selector(default="count", objects=["count", "while"], doc="Count iterations or test a condition.")
    count = param.Integer(default=1, bounds=(0, 1_000_000_000), doc="Iterations (mode 'count').")
    condition = param.String(default="", doc="Safe expression tested before each iteration (mode 'while').")
    index_variable = param.String(default="loop_index", regex=r"^([A-Za-z_][A-Za-z0-9_]*)?$", doc="Variable receiving the iteration number; empty for none.")
    when_done: param.Selector[str] = param.Selector(default="branch", objects=["branch", "end_run"], doc="Once done: 'branch' takes the false branch and starts counting again; 'end_run' also ends the run after this pass.")

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.mode == "while" and (why := expression_problem(self.condition)) is not None:
            out.append(("condition", why))
        return out

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        state = ctx.state
        index = state.get("index", 0)
        if self.mode == "count":
            going = index < self.count
        else:
            going = bool(_eval_for(ctx.node_id, "condition", self.condition, _names(inputs, ctx)))
        if going:
            index += 1
            state["index"] = index
        else:
            state["index"] = 0
            if self.when_done == "end_run":
                ctx.finish_run()
        if self.index_variable:
            ctx.variables[self.index_variable] = index
        return {"branch": "true" if going else "false", "index": index}


@register_node
class PythonCode(Node):
    """Run trusted Python code in-process (``exec``; never put untrusted code here).

    Bound names: each declared input (the nearest upstream value of that key, or
    ``None``), ``inputs``, ``ctx``, ``variables``. After the code runs, each declared
    output is read from its local variables and returned; assign ``branch`` (and
    declare it) to choose a branch. The code runs in the worker pool, not on the loop.
    """

    type_name: ClassVar[str] = "python"
    category: ClassVar[str] = "logic"
    evaluates_code: ClassVar[bool] = True
    branches: ClassVar[tuple[str, ...]] = ANY_BRANCH
    required: ClassVar[tuple[str, ...]] = ("code",)

    code = param.String(default="", doc="Python statements to run (trusted code).")
    inputs = param.List(default=[], item_type=str, doc="Names bound to the nearest upstream values of those keys.")
    outputs = param.List(default=[], item_type=str, doc="Local names returned as outputs after the code ran.")

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.code:
            try:
                compile(self.code, "<python node>", "exec")
            except SyntaxError as exc:
                out.append(("code", f"line {exc.lineno}: {exc.msg}"))
        for field in ("inputs", "outputs"):
            for name in getattr(self, field):
                if not name.isidentifier():
                    out.append((field, f"{name!r} is not a Python identifier"))
        return out

    def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:  # type: ignore[override]
        scope: dict[str, Any] = {"inputs": inputs, "ctx": ctx, "variables": ctx.variables,
                                 "__name__": f"kvmrpa_node_{ctx.node_id}"}
        for name in self.inputs:
            scope[name] = inputs.nearest(name)
        code = compile(self.code, f"<node {ctx.node_id}>", "exec")
        exec(code, scope)  # trusted code by design (see the class docstring)
        result: dict[str, Any] = {}
        for name in self.outputs:
            if name not in scope:
                raise NodeError(f"declared output {name!r} was not assigned by the code",
                                node_id=ctx.node_id, field="outputs")
            result[name] = scope[name]
        if "branch" in result:
            result["branch"] = str(result["branch"])
        return result

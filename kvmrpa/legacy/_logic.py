"""Import mappers of the original system's logic node types.

``wait``, ``variable``, ``condition`` (types ``variable`` and ``expression``; the vision
kinds are mapped in :mod:`kvmrpa.legacy._vision`) and ``loop``.
"""

from __future__ import annotations

from ._registry import Mapped, OriginalNode, register_import_mapper

__all__: list[str] = []


def _map_wait(o: OriginalNode) -> Mapped:
    out = Mapped([])
    ms = o.number("duration_ms", 1000)
    if isinstance(ms, float) and ms >= 0:
        ms = round(ms)
    if not isinstance(ms, int) or isinstance(ms, bool):
        out.problems.append(o.warn("duration_ms", f"not a number of milliseconds: {ms!r}"))
        ms = 1000
    out.nodes.append(o.native("wait", {"ms": ms}))
    return out


_OPS = {"set": "set", "increment": "increment", "decrement": "decrement",
        "incr": "increment", "decr": "decrement", "append": "append"}


def _map_variable(o: OriginalNode) -> Mapped:
    out = Mapped([])
    op = o.take("operation", "set")
    if op not in _OPS:
        out.problems.append(o.warn("operation", f"operation {op!r} has no equivalent "
                                                f"(supported: {', '.join(_OPS)})"))
        op = "set"
    value = o.number("value") if _OPS[op] in ("increment", "decrement") else o.take("value")
    if value == "":
        value = None
    out.nodes.append(o.native("variable", {"variable": o.take("variable_name", ""),
                                           "operation": _OPS[op], "value": value}))
    return out


_COMPARE = {"==": "==", "=": "==", "equals": "==", "eq": "==", "equal": "==",
            "!=": "!=", "not_equals": "!=", "ne": "!=", "not_equal": "!=",
            ">": ">", "gt": ">", "greater_than": ">",
            ">=": ">=", "ge": ">=", "gte": ">=", "greater_equal": ">=", "greater_than_or_equal": ">=",
            "<": "<", "lt": "<", "less_than": "<",
            "<=": "<=", "le": "<=", "lte": "<=", "less_equal": "<=", "less_than_or_equal": "<=",
            "contains": "contains", "not_contains": "not_contains", "regex": "matches",
            "matches": "matches"}


def _map_condition(o: OriginalNode) -> Mapped:
    out = Mapped([])
    kind = o.take("condition_type", "expression")
    if kind == "variable":
        op = o.take("compare_operator", "==")
        if op not in _COMPARE:
            out.problems.append(o.warn("compare_operator", f"operator {op!r} has no equivalent"))
            op = "=="
        value = o.take("compare_value")
        out.nodes.append(o.native("condition", {
            "mode": "variable", "variable": o.take("variable_name", ""),
            "operator": _COMPARE[op], "value": value}))
    else:
        out.nodes.append(o.native("condition", {"mode": "expression",
                                                "expression": o.take("expression", "")}))
    return out


def _map_loop(o: OriginalNode) -> Mapped:
    out = Mapped([])
    kind = o.take("loop_type", "count")
    if kind == "count":
        count = o.number("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            out.problems.append(o.warn("count", f"not a whole number: {count!r}"))
            count = 1
        out.nodes.append(o.native("loop", {"mode": "count", "count": count}))
    elif kind == "while":
        out.nodes.append(o.native("loop", {"mode": "while", "condition": o.take("while_condition", "")}))
    else:
        out.problems.append(o.warn("loop_type", f"loop type {kind!r} has no equivalent "
                                                "(supported: count, while)"))
    return out


register_import_mapper("wait", _map_wait)
register_import_mapper("variable", _map_variable)
register_import_mapper("condition", _map_condition,
                       accepts=lambda o: o.properties.get("condition_type", "expression")
                       in ("variable", "expression"))
register_import_mapper("loop", _map_loop)

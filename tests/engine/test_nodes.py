"""Node base, registry and the logic nodes (run through real flows)."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import param
import pytest

from kvmrpa import Flow, FlowValidationError, Node, get_runtime, register_node
from kvmrpa.nodes import (
    Condition,
    Loop,
    PythonCode,
    Variable,
    Wait,
    evaluate,
    get_node_class,
    node_types,
)


def test_registry_has_the_logic_types_with_documented_parameters() -> None:
    types = node_types()
    for name, cls in {"wait": Wait, "variable": Variable, "condition": Condition,
                      "loop": Loop, "python": PythonCode}.items():
        assert types[name] is cls
        assert get_node_class(name) is cls
        assert cls.__doc__ is not None and "output" in cls.__doc__.lower()
        for pname in cls.param_names():
            assert cls.param[pname].doc, f"{name}.{pname} has no doc"
    assert get_node_class("no_such_type") is None


def test_every_node_type_of_the_library_documents_its_inputs_outputs_and_parameters() -> None:
    library = {"condition", "crop", "detect", "keyboard", "loop", "match_template", "mouse",
               "ocr", "preprocess", "python", "source", "variable", "vision_condition", "wait",
               "wait_until"}
    types = node_types()
    assert library <= set(types)
    for name in library:
        cls = types[name]
        doc = (cls.__doc__ or "").lower()
        assert "input" in doc and "output" in doc, f"{name}: docstring must state inputs and outputs"
        for pname in cls.param_names():
            assert cls.param[pname].doc, f"{name}.{pname} has no doc"


def test_register_node_rejects_bad_names_and_silent_overrides() -> None:
    class Bad(Node):
        """Outputs nothing."""

        type_name: ClassVar[str] = "Bad Name"

    with pytest.raises(ValueError, match="lower-case"):
        register_node(Bad)

    class Other(Node):
        """Outputs nothing."""

        type_name: ClassVar[str] = "wait"

    with pytest.raises(ValueError, match="already registered"):
        register_node(Other)
    assert get_node_class("wait") is Wait


def test_parameters_are_typed_and_bounded() -> None:
    with pytest.raises(ValueError):
        Wait(ms=-1)
    with pytest.raises(ValueError):
        Wait(retries=1000)
    with pytest.raises(ValueError):
        Condition(operator="~=")


def test_safe_expressions_refuse_code() -> None:
    assert evaluate("a + 1 > 2 and len(b) == 2", {"a": 2, "b": [1, 2]}) is True
    assert evaluate("${a} * 2", {"a": 4}) == 8
    for bad in ("__import__('os')", "open('/etc/passwd')", "(1).__class__"):
        with pytest.raises(Exception):  # noqa: B017 - any refusal, never execution
            evaluate(bad, {})


def _run(flow: Flow, **kw: Any) -> Any:
    return flow.run(timeout=30, record=False, **kw)


def test_variable_operations() -> None:
    flow = Flow("vars", variables={"n": 1, "items": []})
    flow.add("variable", "inc", variable="n", operation="increment", value=2)
    flow.add("variable", "dec", variable="n", operation="decrement")
    flow.add("variable", "app", variable="items", operation="append", value="x")
    flow.add("variable", "set", variable="s", operation="set", value="n * 10", expression=True)
    flow.connect("inc", "dec")
    flow.connect("dec", "app")
    flow.connect("app", "set")
    result = _run(flow)
    assert result.status == "ok"
    assert result.variables == {"n": 2, "items": ["x"], "s": 20}
    assert flow.variables == {"n": 1, "items": []}  # the flow's initial values are untouched


def test_variable_increment_of_a_string_fails_naming_node_and_field() -> None:
    flow = Flow("bad", variables={"n": "text"})
    flow.add("variable", "inc", variable="n", operation="increment")
    result = _run(flow)
    assert result.status == "failed"
    assert "node inc: value" in result.error


def test_condition_variable_and_expression_modes_choose_branches() -> None:
    flow = Flow("cond", variables={"count": 3, "name": "测试2"})
    flow.add("condition", "c1", mode="variable", variable="count", operator=">=", value="3")
    flow.add("condition", "c2", expression="name == '测试2' and count < 3")
    for c in ("c1", "c2"):
        for b in ("true", "false"):
            flow.add("variable", f"{c}_{b}", variable=f"{c}_{b}", value=True)
            flow.connect(c, f"{c}_{b}", branch=b)
    result = _run(flow)
    assert result.variables.get("c1_true") is True and "c1_false" not in result.variables
    assert result.variables.get("c2_false") is True and "c2_true" not in result.variables
    assert result.nodes["c1_false"]["status"] == "skipped"


def test_condition_on_an_undefined_variable_fails_with_the_field() -> None:
    flow = Flow("undef")
    flow.add("condition", "c", mode="variable", variable="missing", value=1)
    result = _run(flow)
    assert result.status == "failed" and "node c: variable" in result.error


def test_loop_counts_across_passes_then_resets() -> None:
    flow = Flow("loop", variables={"body": 0, "done": 0})
    flow.add("loop", "l", count=3)
    flow.add("variable", "body", variable="body", operation="increment")
    flow.add("variable", "done", variable="done", operation="increment")
    flow.connect("l", "body", branch="true")
    flow.connect("l", "done", branch="false")
    result = _run(flow, passes=8)
    # passes 1-3 body, 4 done (reset), 5-7 body, 8 done
    assert result.variables["body"] == 6
    assert result.variables["done"] == 2
    assert result.passes == 8


def test_loop_can_end_the_run_when_done() -> None:
    flow = Flow("loop-end", variables={"body": 0})
    flow.add("loop", "l", count=3, when_done="end_run")
    flow.add("variable", "body", variable="body", operation="increment")
    flow.connect("l", "body", branch="true")
    result = _run(flow, passes=0)
    assert result.status == "ok" and result.passes == 4 and result.variables["body"] == 3


def test_loop_while_condition() -> None:
    flow = Flow("while", variables={"n": 0})
    flow.add("loop", "l", mode="while", condition="n < 2", index_variable="")
    flow.add("variable", "inc", variable="n", operation="increment")
    flow.connect("l", "inc", branch="true")
    result = _run(flow, passes=5)
    assert result.variables["n"] == 2


def test_python_node_runs_in_the_pool_with_declared_inputs_and_outputs() -> None:
    flow = Flow("py", variables={"base": 5})
    flow.add("python", "src", code="value = 21", outputs=["value"])
    flow.add("python", "calc", inputs=["value"],
             code="import threading\nthread = threading.current_thread().name\n"
                  "doubled = value * 2 + variables['base']\nbranch = 'big' if doubled > 40 else 'small'",
             outputs=["doubled", "thread", "branch"])
    flow.add("variable", "big", variable="was_big", value=True)
    flow.connect("src", "calc")
    flow.connect("calc", "big", branch="big")
    run = flow.start(passes=1, record=False)
    result = run.result(30)
    assert result.status == "ok", result.error
    out = run.nodes["calc"].output
    assert out["doubled"] == 47
    assert out["thread"] != get_runtime().thread.name
    assert out["thread"] != threading.main_thread().name
    assert result.variables["was_big"] is True


def test_python_node_checks_syntax_and_missing_outputs() -> None:
    flow = Flow("py-bad")
    flow.add("python", "p", code="x = (")
    with pytest.raises(FlowValidationError, match=r"node p: params\.code: line 1"):
        flow.validate()
    flow2 = Flow("py-missing")
    flow2.add("python", "p", code="y = 1", outputs=["x"])
    result = _run(flow2)
    assert result.status == "failed" and "node p: outputs" in result.error


def test_a_custom_async_node_type_runs_and_sees_nearest_upstream_values() -> None:
    @register_node
    class Produce(Node):
        """Outputs ``{"texts": [...], "point": (x, y)}``."""

        type_name: ClassVar[str] = "test_produce"
        x = param.Integer(default=1, bounds=(0, 100), doc="x coordinate")

        async def run(self, inputs: Any, ctx: Any) -> dict[str, Any]:
            return {"texts": ["测试"], "point": (self.x, 2)}

    @register_node
    class Consume(Node):
        """Inputs: nearest texts and point. Outputs ``{"seen": ...}``."""

        type_name: ClassVar[str] = "test_consume"

        async def run(self, inputs: Any, ctx: Any) -> dict[str, Any]:
            ctx.variables["seen"] = [inputs.texts(), inputs.point(), inputs.frame(), sorted(inputs)]
            return {"seen": True}

    flow = Flow("custom")
    flow.add("test_produce", "p", x=7)
    flow.add("wait", "w", ms=0)
    flow.add("test_consume", "c")
    flow.connect("p", "w")
    flow.connect("w", "c")
    result = _run(flow)
    assert result.variables["seen"] == [["测试"], (7, 2), None, ["w"]]


def test_a_lookup_during_the_first_registry_load_waits_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kvmrpa.nodes import _registry

    entered, go = threading.Event(), threading.Event()

    class LateType(Node):
        """Registered by the (slow) loading of the built-in modules."""

        type_name: ClassVar[str] = "test_late_type"

    def slow_builtins() -> None:
        entered.set()
        go.wait(20)
        register_node(LateType)

    monkeypatch.setattr(_registry, "_entry_points_loaded", False)
    monkeypatch.setattr(_registry, "_load_builtins", slow_builtins)
    _registry.unregister_node("test_late_type")
    loader = threading.Thread(target=_registry.node_types)
    loader.start()
    assert entered.wait(20)
    found: list[Any] = []
    lookup = threading.Thread(target=lambda: found.append(get_node_class("test_late_type")))
    lookup.start()
    lookup.join(1.0)  # a lookup that does not wait for the load answers None at once
    go.set()
    lookup.join(20)
    loader.join(20)
    assert found == [LateType]
    _registry.unregister_node("test_late_type")

"""Every parameter a component syncs with the browser accepts what the browser sends
back (JSON: lists for tuples, null for None, integers as floats), through the same path
Panel's property changes take."""

from __future__ import annotations

import json
from typing import Any

import kvmrpa.widgets as widgets
import param
import pytest
from kvmrpa.widgets._params import from_browser, to_browser_json
from panel.custom import ReactiveESM
from panel.viewable import Viewable


def _components() -> list[type]:
    """Every browser-synced component class kvmrpa.widgets defines (exported or not)."""
    found, todo = [], list(ReactiveESM.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("kvmrpa.widgets") and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


COMPONENTS = _components()

# A value of each kind that is not the default, so that a no-op would be seen.
SAMPLES: dict[str, Any] = {
    "point": (12.0, 34.5), "region": (1, 2, 30, 40), "overlays": [{"kind": "text", "bbox": [1, 2, 3, 4], "label": "a"}],
    "states": {"a": "done"}, "breakpoints": ["a"], "selected": "a",
    "graph": {"nodes": [{"id": "a", "x": 0, "y": 0}], "edges": []},
    "items": [{"name": "a", "state": "idle"}], "value": "a",
}


def synced(cls: type) -> list[str]:
    """The parameters of ``cls`` (its own, not Panel's layout ones) that reach the page."""
    renamed = getattr(cls, "_rename", {})
    own = [n for n, p in cls.param.objects("existing").items()
           if n not in Viewable.param and renamed.get(n, n) is not None
           and not n.startswith("_") and not p.constant]  # constant: never set by a page
    return own


def sample(p: param.Parameter, name: str) -> Any:
    if name in SAMPLES:
        return SAMPLES[name]
    if isinstance(p, param.Boolean):
        return not p.default
    if isinstance(p, param.Integer):
        lo = (p.bounds or (None, None))[0]
        return (lo or 0) + 3
    if isinstance(p, param.Number):
        lo = (p.bounds or (None, None))[0]
        return float(lo or 0) + 1.5
    if isinstance(p, param.Selector):
        return next(o for o in p.objects if o != p.default)
    if isinstance(p, param.String):
        return "x"
    raise AssertionError(f"no sample for {name} ({type(p).__name__}); add one to SAMPLES")


def browser(value: Any) -> Any:
    """``value`` after a trip through the page: JSON, integral floats where JS has them."""
    return json.loads(json.dumps(to_browser_json(value)))


def test_the_components_are_found() -> None:
    names = {c.__name__ for c in COMPONENTS}
    assert {"LiveView", "FlowView", "FlowTabs"} <= names


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.__name__)
def test_every_synced_parameter_round_trips_through_json(cls: type) -> None:
    names = synced(cls)
    assert names, f"{cls.__name__} syncs no parameters?"
    for name in names:
        component = cls()
        p = component.param[name]
        value = sample(p, name)
        component.param.update(**{name: value})
        prop = (cls._rename or {}).get(name, name)
        component._process_events({prop: browser(value)})  # as Panel applies a browser change
        got = getattr(component, name)
        assert got == value and type(got) is type(value), f"{cls.__name__}.{name}: {got!r}"
        if p.allow_None:
            component._process_events({prop: None})
            assert getattr(component, name) is None, f"{cls.__name__}.{name} null"


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.__name__)
def test_numbers_arrive_as_floats_or_ints(cls: type) -> None:
    component = cls()
    for name in synced(cls):
        p = component.param[name]
        if isinstance(p, param.Integer) and not isinstance(p, param.Boolean):
            lo = (p.bounds or (None, None))[0] or 0
            component._process_events({name: float(lo + 2)})  # JS numbers have no int type
            assert getattr(component, name) == lo + 2 and type(getattr(component, name)) is int
        elif isinstance(p, param.Number):
            lo = (p.bounds or (None, None))[0] or 0
            component._process_events({name: int(lo) + 1})
            assert getattr(component, name) == int(lo) + 1


def test_a_wrong_value_still_fails_with_params_message() -> None:
    view = widgets.LiveView()
    with pytest.raises(ValueError, match="region"):
        view._process_events({"region": [1, 2, 3]})
    assert from_browser(view.param["zoom"], "2") == "2"  # no guessing from strings
    assert from_browser(view.param["view_width"], 2.5) == 2.5  # not silently truncated

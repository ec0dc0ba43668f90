"""What the browser sends, made into what a parameter accepts: one coercion for every
component whose parameters sync with the page.

The page speaks JSON: a tuple comes back as a list, ``None`` as ``null``, an integer may
arrive as ``3.0`` and a number as ``3``. :func:`from_browser` turns such a value into
the type its ``param`` parameter declares (recursively for tuple and list items), and
:class:`BrowserParams` applies it to every property change a Panel component receives
from the browser, before ``param`` validates it. Values that are not JSON-shaped pass
through unchanged, so a wrong value still fails with param's own message.

The other way, a change that does not touch ``stylesheets`` goes to the page without
Panel looking the component's design up again (which it does for every change, stat-ing
the theme's files, though it uses the answer only for stylesheets): a live view's
states or frames change many times a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import param
from bokeh.document import Document

if TYPE_CHECKING:  # a mixin of Panel components: checked as one
    from panel.reactive import Reactive as _Component
else:
    _Component = object

__all__ = ["BrowserParams", "from_browser", "to_browser_json"]

_TUPLES = (param.NumericTuple, param.Tuple, param.Range, param.XYCoordinates,
           param.DateRange, param.CalendarDateRange)


def _number(p: param.Parameter, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(p, param.Integer):
        return int(value) if float(value).is_integer() else value
    return value


def from_browser(p: param.Parameter, value: Any) -> Any:
    """``value`` as sent by the browser, converted to what parameter ``p`` accepts."""
    if value is None:
        return None
    if isinstance(p, _TUPLES) and isinstance(value, list):
        return tuple(value)
    if isinstance(p, (param.Integer, param.Number)):
        return _number(p, value)
    if isinstance(p, param.List) and isinstance(value, list):
        item = getattr(p, "item_type", None) or getattr(p, "class_", None)
        if item is tuple:
            return [tuple(v) if isinstance(v, list) else v for v in value]
        return value
    if isinstance(p, param.ClassSelector) and isinstance(value, list):
        classes = p.class_ if isinstance(p.class_, tuple) else (p.class_,)
        if tuple in classes and list not in classes:
            return tuple(value)
    return value


def to_browser_json(value: Any) -> Any:
    """``value`` as the browser would send it back: tuples become lists (for tests and
    for anything that mimics the page)."""
    if isinstance(value, tuple | list):
        return [to_browser_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_browser_json(v) for k, v in value.items()}
    return value


class BrowserParams(_Component):
    """Mixin for a Panel component: property changes from the browser are coerced with
    :func:`from_browser` before they reach the parameters.

    List it before the Panel base class: ``class LiveView(BrowserParams, JSComponent)``.
    """

    def _process_property_change(self, props: dict[str, Any]) -> dict[str, Any]:
        params = super()._process_property_change(props)
        out = {}
        for name, value in params.items():
            p = self.param[name] if name in self.param and "." not in name else None
            out[name] = from_browser(p, value) if p is not None else value
        return out

    def _update_properties(self, *events: param.parameterized.Event,
                           doc: Document) -> dict[str, Any]:
        # Panel's Reactive._update_properties asks the design for its parameters and uses
        # them only when the change includes stylesheets
        if any(e.name == "stylesheets" for e in events):
            return super()._update_properties(*events, doc=doc)
        return self._process_param_change({e.name: e.new for e in events})

"""LiveHTML: a block of HTML (made and escaped by kvmrpa) that changes often.

Panel's HTML pane re-sends its styling with every change of its text (and Bokeh then
re-walks the whole document); status lines, the run log and metrics change with every
run event, so they use this component instead: one string property, patched into the
page as it is.
"""

from __future__ import annotations

from typing import Any, ClassVar

import param
from panel.custom import JSComponent

__all__ = ["LiveHTML"]


class LiveHTML(JSComponent):
    """HTML set from Python (``object``); the caller escapes what it puts in."""

    object = param.String(default="", doc="The HTML shown (already escaped by the caller).")

    _esm: ClassVar[str] = """
export function render({ model, el }) {
  const box = document.createElement("div")
  box.style.cssText = "width:100%"
  el.appendChild(box)
  const show = () => { box.innerHTML = model.object || "" }
  model.on("object", show)
  show()
}
"""

    def __init__(self, object: str = "", **params: Any) -> None:
        super().__init__(object=object, **params)

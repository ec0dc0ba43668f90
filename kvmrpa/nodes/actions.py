"""Action nodes: ``mouse`` and ``keyboard``, sent through the flow's input driver.

Points are in full source pixels (the driver maps them to the target's screen). A
node's actions run inside ``driver.session()``, so a sequence (move, press, release;
a hotkey) is never interleaved with another flow's actions on the same target, and
every action lands in the run's audit trail through the driver's action records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import param

from .._errors import InputError, KvmrpaError, NodeError
from .._frame import Frame
from ..vision import MATCH_MODES, Detections, Matches, TextBoxes
from ._base import ENV_REF, Node
from ._registry import register_node
from .image import as_frame, frame_from_context
from .vision import find_texts, read_texts, text_problems

if TYPE_CHECKING:  # pragma: no cover
    from ._base import Inputs, NodeContext

__all__ = ["Keyboard", "Mouse", "place"]

Box = tuple[float, float, float, float]


def place(bbox: Box, position: str = "center", distance: float = 0.0) -> tuple[float, float]:
    """The point to act on for a found box ``(x, y, w, h)``.

    ``center`` is its centre; ``below`` / ``above`` / ``left`` / ``right`` are
    ``distance`` pixels beyond that edge, on the centre line (a label's input box is
    typically just below or right of the label).
    """
    x, y, w, h = bbox
    cx, cy = x + w / 2, y + h / 2
    if position == "center":
        return cx, cy
    if position == "below":
        return cx, y + h + distance
    if position == "above":
        return cx, y - distance
    if position == "left":
        return x - distance, cy
    if position == "right":
        return x + w + distance, cy
    raise ValueError(f"unknown position {position!r}")


@register_node
class Mouse(Node):
    """Click, double-click, right-click, move, drag or scroll at a point.

    The point comes from ``target``: ``point`` (``x``, ``y``), ``text`` (an OCR line
    matching ``text``), ``match`` (a template match), ``detection`` (a detection of
    ``object_label``) or ``upstream`` (the nearest upstream ``point``). For found boxes,
    ``anchor`` picks the centre or a spot ``distance`` pixels below / above / left /
    right of the box; ``offset_x`` / ``offset_y`` are added last.
    Inputs: the nearest upstream ``texts`` / ``matches`` / ``detections`` / ``point``;
    for ``text`` with no OCR upstream the frame is read here (``read_if_missing``).
    Outputs: ``{"point": (x, y) in source pixels, "action": action}``.
    """

    type_name: ClassVar[str] = "mouse"
    category: ClassVar[str] = "action"

    action: param.Selector[str] = param.Selector(default="click", objects=["click", "double_click", "right_click", "move", "drag", "scroll"], doc="What to do at the point.")
    button: param.Selector[str] = param.Selector(default="left", objects=["left", "right", "middle"], doc="Button for click, double_click and drag.")
    target: param.Selector[str] = param.Selector(default="point", objects=["point", "text", "match", "detection", "upstream"], doc="Where the point comes from.")
    x = param.Number(default=0.0, bounds=(0, None), doc="X of the point in source pixels (target 'point').", precedence=0.21)
    y = param.Number(default=0.0, bounds=(0, None), doc="Y of the point in source pixels (target 'point').", precedence=0.22)
    text = param.String(default="", doc="Text to act on (target 'text').", precedence=0.23)
    match_mode: param.Selector[str] = param.Selector(default="contains", objects=list(MATCH_MODES), doc="How text is compared (target 'text').", precedence=0.24)
    max_distance = param.Integer(default=None, allow_None=True, bounds=(0, 100), doc="Fuzzy: most edits allowed; empty for one per four characters.", precedence=0.25)
    ignore_case = param.Boolean(default=False, doc="Compare text ignoring case (target 'text').", precedence=0.26)
    object_label = param.String(default="", doc="Class label (target 'detection') or template label (target 'match'); empty accepts any.", precedence=0.27)
    pick: param.Selector[str] = param.Selector(default="first", objects=["first", "best", "last"], doc="Which of several found: first / last in reading order, or the best score.", precedence=0.28)
    anchor: param.Selector[str] = param.Selector(default="center", objects=["center", "below", "above", "left", "right"], doc="Act on the found box's centre or beside it.", precedence=0.29)
    distance = param.Number(default=10.0, bounds=(0, None), doc="Pixels beyond the box edge for anchor below/above/left/right.", precedence=0.30)
    offset_x = param.Number(default=0.0, doc="Pixels added to the point's x.")
    offset_y = param.Number(default=0.0, doc="Pixels added to the point's y.")
    to_x = param.Number(default=0.0, bounds=(0, None), doc="Drag: end x in source pixels.", precedence=0.41)
    to_y = param.Number(default=0.0, bounds=(0, None), doc="Drag: end y in source pixels.", precedence=0.42)
    scroll_dy = param.Integer(default=3, bounds=(-1000, 1000), doc="Scroll: vertical wheel steps; positive scrolls down (as a browser wheel turned towards you).", precedence=0.43)
    scroll_dx = param.Integer(default=0, bounds=(-1000, 1000), doc="Scroll: horizontal wheel steps.", precedence=0.44)
    read_if_missing = param.Boolean(default=True, doc="Target 'text': when no OCR node runs upstream, read the frame here (default engine).", precedence=0.31)
    retry_click = param.Boolean(default=False, doc="Clicks: resend after a connection failure (may click twice if the first one did arrive).", precedence=0.45)

    @param.depends("action", "target", "anchor", "match_mode", watch=True, on_init=True)
    def _show_relevant(self) -> None:
        found = self.target in ("text", "match", "detection")
        text = self.target == "text"
        self.show_params((("x", self.target == "point"), ("y", self.target == "point"),
                          ("text", text), ("match_mode", text), ("ignore_case", text),
                          ("max_distance", text and self.match_mode == "fuzzy"),
                          ("read_if_missing", text),
                          ("object_label", self.target in ("match", "detection")),
                          ("pick", found), ("anchor", found),
                          ("distance", found and self.anchor != "center"),
                          ("to_x", self.action == "drag"), ("to_y", self.action == "drag"),
                          ("scroll_dy", self.action == "scroll"),
                          ("scroll_dx", self.action == "scroll"),
                          ("retry_click", self.action in ("click", "double_click", "right_click"))))

    def check(self) -> list[tuple[str, str]]:
        out = super().check()
        if self.target == "text":
            out += text_problems(self.text, self.match_mode, self.max_distance, "target 'text'")
        return out

    # -- locating --------------------------------------------------------------------------
    def _choose(self, items: Any, what: str) -> Any:
        if not len(items):
            raise LookupError(what)
        if self.pick == "best":
            return items.best()
        ordered = sorted(items, key=lambda i: (i.bbox[1] + i.bbox[3] / 2, i.bbox[0]))
        return ordered[0] if self.pick == "first" else ordered[-1]

    def locate(self, *, texts: TextBoxes | None = None, matches: Matches | None = None,
               detections: Detections | None = None,
               point: tuple[float, float] | None = None) -> tuple[float, float]:
        """The point to act on, from the given results (source pixels).

        Raises :class:`LookupError` saying what was not found.
        """
        if self.target == "point":
            px, py = float(self.x), float(self.y)
        elif self.target == "upstream":
            if point is None:
                raise LookupError("no point upstream")
            px, py = float(point[0]), float(point[1])
        else:
            found: TextBoxes | Matches | Detections
            if self.target == "text":
                found = find_texts(texts or TextBoxes(), self.text, self.match_mode,
                                   max_distance=self.max_distance, ignore_case=self.ignore_case)
                item = self._choose(found, f"text {self.text!r} ({self.match_mode}) not found "
                                           f"among {len(texts or ())} OCR lines "
                                           f"{[t.text for t in (texts or ())][:8]}")
            elif self.target == "match":
                found = (matches or Matches()).filter(label=self.object_label or None)
                item = self._choose(found, "no template match" + (f" of {self.object_label!r}" if self.object_label else ""))
            else:
                found = (detections or Detections()).filter(label=self.object_label or None)
                item = self._choose(found, "no detection" + (f" of {self.object_label!r}" if self.object_label else ""))
            px, py = place(item.bbox, self.anchor, self.distance)
            if self.target == "match" and self.anchor == "center" and item.click_offset is not None:
                px, py = item.target
        return px + self.offset_x, py + self.offset_y

    def try_on(self, frame: Frame | np.ndarray | None = None, *, texts: TextBoxes | None = None,
               matches: Matches | None = None, detections: Detections | None = None,
               point: tuple[float, float] | None = None) -> dict[str, Any]:
        """Where this node would act, without acting (blocking; reads ``frame`` by OCR
        for target 'text' when no ``texts`` are given)."""
        if self.target == "text" and texts is None and frame is not None:
            texts = read_texts(as_frame(frame))
        return {"point": self.locate(texts=texts, matches=matches, detections=detections,
                                     point=point), "action": self.action}

    # -- acting ----------------------------------------------------------------------------
    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        texts = inputs.texts()
        if self.target == "text" and texts is None:
            if not self.read_if_missing:
                raise NodeError("no ocr node upstream produced texts (connect one, or turn "
                                "read_if_missing on)", node_id=ctx.node_id, flow=ctx.flow_name,
                                field="target")
            frame = await frame_from_context(inputs, ctx)
            texts = await ctx.runtime.to_thread(read_texts, frame)
            ctx.observe(frame, texts=texts)  # what it searched, for the run's report
        try:
            point = self.locate(texts=texts, matches=inputs.matches(),
                                detections=inputs.detections(), point=inputs.point())
        except LookupError as exc:
            raise NodeError(str(exc.args[0]), node_id=ctx.node_id, flow=ctx.flow_name,
                            field=self.target if self.target != "point" else None) from None
        x, y = round(point[0]), round(point[1])
        driver = await ctx.input()
        try:
            async with driver.session():
                await self._act(driver, x, y)
        except InputError as exc:
            raise NodeError(f"{self.action} at ({x}, {y}) failed: {exc}", node_id=ctx.node_id,
                            flow=ctx.flow_name, field="action", cause=exc) from exc
        ctx.log.info("%s at (%d, %d)%s", self.action, x, y,
                     f" on text {self.text!r}" if self.target == "text" else "")
        return {"point": (x, y), "action": self.action}

    async def _act(self, driver: Any, x: int, y: int) -> None:
        if self.action == "click":
            await driver.click(x, y, button=self.button, retry=self.retry_click)
        elif self.action == "double_click":
            await driver.click(x, y, button=self.button, double=True, retry=self.retry_click)
        elif self.action == "right_click":
            await driver.click(x, y, button="right", retry=self.retry_click)
        elif self.action == "move":
            await driver.move(x, y)
        elif self.action == "drag":
            await driver.drag(x, y, round(self.to_x), round(self.to_y), button=self.button)
        else:
            await driver.scroll(self.scroll_dy, self.scroll_dx, x=x, y=y)


@register_node
class Keyboard(Node):
    """Type text, press a key, or press a key combination.

    ``key`` takes X keysym names or aliases (``Return``/``ENTER``, ``Tab``, ``Escape``/
    ``ESC``, ``F1``…``F12``, ``a``); ``hotkey`` takes ``ctrl+c``, ``alt+tab``, ``win+d``.
    ``text`` may hold ``${env:NAME}`` (a password), resolved only when the node runs.
    Inputs: none used. Outputs: ``{"action": action, "sent": what was sent}`` (typed
    text is not echoed: ``sent`` is its length).
    """

    type_name: ClassVar[str] = "keyboard"
    category: ClassVar[str] = "action"

    action: param.Selector[str] = param.Selector(default="type", objects=["type", "key", "hotkey"], doc="Type text, press one key, or press a combination.")
    text = param.String(default="", doc="Text to type (action 'type'); ${env:NAME} for secrets.", precedence=0.11)
    key = param.String(default="Return", doc="Key to press (action 'key'): Return, Tab, Escape, F5, a, … (aliases ENTER, ESC accepted).", precedence=0.12)
    hotkey = param.String(default="", doc="Combination (action 'hotkey'), keys joined by '+': ctrl+c, alt+tab, win+d.", precedence=0.13)
    secret = param.Boolean(default=False, doc="Keep the typed text out of the audit trail and run record (only its length is kept); turned on when text holds ${env:…}.", precedence=0.14)
    repeat = param.Integer(default=1, bounds=(1, 1000), doc="Times to send it.")

    @param.depends("text", watch=True, on_init=True)
    def _mark_secret(self) -> None:
        if ENV_REF.search(self.text):
            self.secret = True

    @param.depends("action", watch=True, on_init=True)
    def _show_relevant(self) -> None:
        self.show_params((("secret", self.action == "type"), ("text", self.action == "type"),
                          ("key", self.action == "key"), ("hotkey", self.action == "hotkey")))

    def check(self) -> list[tuple[str, str]]:
        from ..kvm import normalize_key, parse_hotkey

        out = super().check()
        try:
            if self.action == "key":
                normalize_key(self.key)
            elif self.action == "hotkey":
                if not self.hotkey.strip():
                    out.append(("hotkey", "is required for action 'hotkey'"))
                else:
                    parse_hotkey([self.hotkey])
        except KvmrpaError as exc:
            out.append((self.action, str(exc)))
        return out

    async def run(self, inputs: Inputs, ctx: NodeContext) -> dict[str, Any]:
        driver = await ctx.input()
        try:
            async with driver.session():
                for _ in range(self.repeat):
                    if self.action == "type":
                        await driver.type_text(self.text, secret=self.secret)
                    elif self.action == "key":
                        await driver.key(self.key)
                    else:
                        await driver.hotkey(self.hotkey)
        except InputError as exc:
            raise NodeError(f"{self.action} failed: {exc}", node_id=ctx.node_id,
                            flow=ctx.flow_name, field=self.action if self.action != "type" else "text",
                            cause=exc) from exc
        sent: Any = len(self.text) if self.action == "type" else (
            self.key if self.action == "key" else self.hotkey)
        return {"action": self.action, "sent": sent}

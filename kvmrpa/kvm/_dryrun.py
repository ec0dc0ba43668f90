"""``dryrun://``: a driver that records what it would send, and sends nothing.

``dryrun://[name][?size=WxH&keep=N]``: ``size`` is the pretend target screen (so
calibration from a capture resolution can be checked), ``keep`` bounds the record
(default 10000 primitives, oldest dropped). :attr:`DryRunDriver.actions` lists the
primitives in target pixels, for example ``{"op": "move", "x": 10, "y": 20}``,
``{"op": "button", "button": "left", "down": True}``, ``{"op": "key", "key": "Return",
"down": True}``, ``{"op": "scroll", "dx": 0, "dy": 3}``, ``{"op": "text", "text": "hi"}``.
"""

from __future__ import annotations

import collections
from typing import Any, ClassVar

from .._errors import UrlError
from .._urls import parse_size, query_params
from ._driver import DriverCapabilities, InputDriver, MouseButton

__all__ = ["DryRunDriver"]


class DryRunDriver(InputDriver):
    """Records primitives instead of sending them; every capability is on."""

    scheme: ClassVar[str] = "dryrun"
    capabilities: ClassVar[DriverCapabilities] = DriverCapabilities(unicode_text=True)

    def __init__(self, url: str = "dryrun://", **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        q = query_params(url)
        self._size = parse_size(q["size"], "dryrun size") if "size" in q else None
        try:
            keep = int(q.get("keep", "10000"))
        except ValueError:
            keep = 0
        if not 1 <= keep <= 10_000_000:
            raise UrlError(f"{self.display_url}: keep must be 1..10000000, got {q.get('keep')!r}")
        self._actions: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)

    @property
    def actions(self) -> list[dict[str, Any]]:
        """The primitives recorded so far, oldest first (target pixels)."""
        return list(self._actions)

    def clear(self) -> None:
        self._actions.clear()

    def target_size(self) -> tuple[int, int] | None:
        return self._size

    async def _move(self, x: int, y: int) -> None:
        if self._size is not None and not (0 <= x < self._size[0] and 0 <= y < self._size[1]):
            from .._errors import CoordinateError

            raise CoordinateError(
                f"{self.display_url}: target point ({x}, {y}) is outside the "
                f"{self._size[0]}x{self._size[1]} screen (check the calibration)")
        self._actions.append({"op": "move", "x": x, "y": y})

    async def _button(self, button: MouseButton, down: bool) -> None:
        self._actions.append({"op": "button", "button": button, "down": down})

    async def _scroll(self, dx: int, dy: int) -> None:
        self._actions.append({"op": "scroll", "dx": dx, "dy": dy})

    async def _key(self, key: str, down: bool) -> None:
        self._actions.append({"op": "key", "key": key, "down": down})

    async def _type_text(self, text: str) -> None:
        self._actions.append({"op": "text", "text": text})

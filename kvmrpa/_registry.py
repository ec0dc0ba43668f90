"""The one registry type and the one reference-counted pool type.

:class:`Registry` maps names (URL schemes, node type names) to plug-ins (source and
driver factories, node classes). Every registry has the same operations and the same
rules: :meth:`~Registry.register` refuses a name already taken by another object
(a clear error) unless ``replace=True``; :meth:`~Registry.unregister` takes one away;
:meth:`~Registry.temporarily` registers for the length of a ``with`` block (tests) and
puts back what was there; other packages add entries through an entry-point group
(``[project.entry-points."<group>"]``, name → object), loaded the first time the name
is asked for or the names are listed. An entry point that cannot be loaded is an error
naming it, raised where it is used.

:class:`RefPool` holds one shared object per key with a count of its users: the source
hub and the driver hub are built on it, so both share, count and release alike.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

__all__ = ["RefPool", "Registry"]

T = TypeVar("T")
_UNSET: Any = object()


class Registry(Generic[T]):
    """Names → plug-ins, with entry points (see the module docstring).

    ``what`` names an entry in messages (``"source scheme"``); ``error`` is the
    exception class raised for a refused registration or a broken entry point;
    ``normalize`` turns a name into its key (``str.lower`` for URL schemes);
    ``check(name, obj)`` raises on an invalid entry.
    """

    def __init__(self, what: str, group: str | None = None, *,
                 error: type[Exception] = ValueError,
                 normalize: Callable[[str], str] = str,
                 check: Callable[[str, T], None] | None = None) -> None:
        self.what = what
        self.group = group
        self._error = error
        self._normalize = normalize
        self._check = check
        self._lock = threading.RLock()
        self._items: dict[str, T] = {}
        self._pending: dict[str, EntryPoint] | None = None  # entry points not loaded yet

    # -- registering -----------------------------------------------------------------------
    def register(self, name: str, obj: T, *, replace: bool = False) -> T:
        """Register ``obj`` as ``name``; another object under that name is refused unless
        ``replace``. Registering the same object again does nothing."""
        key = self._normalize(name)
        if self._check is not None:
            self._check(key, obj)
        with self._lock:
            waiting = self._entry_points()
            old = self._items.get(key, _UNSET)
            if old is not _UNSET and old is not obj and not replace:
                raise self._error(f"{self.what} {key!r} is already registered "
                                  f"({_describe(old)}); pass replace=True to replace it")
            waiting.pop(key, None)
            self._items[key] = obj
        return obj

    def unregister(self, name: str) -> T | None:
        """Take ``name`` away; returns what was registered (``None`` when nothing was)."""
        key = self._normalize(name)
        with self._lock:
            self._entry_points().pop(key, None)
            return self._items.pop(key, None)

    @contextlib.contextmanager
    def temporarily(self, name: str, obj: T) -> Iterator[T]:
        """``with registry.temporarily(name, obj):`` registered inside the block only;
        whatever was registered before is put back after it."""
        key = self._normalize(name)
        with self._lock:
            before = self._items.get(key, _UNSET)
            pending = self._entry_points().get(key)
        self.register(key, obj, replace=True)
        try:
            yield obj
        finally:
            with self._lock:
                if before is _UNSET:
                    self._items.pop(key, None)
                else:
                    self._items[key] = before
                if pending is not None:
                    self._entry_points()[key] = pending

    # -- looking up ------------------------------------------------------------------------
    def get(self, name: str) -> T | None:
        """The entry for ``name`` (its entry point loaded on first use), or ``None``."""
        key = self._normalize(name)
        with self._lock:
            pending = self._entry_points()
            if key in self._items:
                return self._items[key]
            ep = pending.pop(key, None)
        if ep is None:
            return None
        try:
            obj = ep.load()
        except Exception as exc:
            raise self._error(f"{self.what} {key!r}: entry point {ep.value!r} "
                              f"(group {self.group}) cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from exc
        with self._lock:
            return self._items.setdefault(key, obj)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._normalize(name)
        with self._lock:
            return key in self._items or key in self._entry_points()

    def names(self) -> list[str]:
        """Every registered name, entry points included (not loaded), sorted."""
        with self._lock:
            return sorted({*self._items, *self._entry_points()})

    def items(self) -> dict[str, T]:
        """Every entry, entry points loaded, by name."""
        for name in self.names():
            self.get(name)
        with self._lock:
            return dict(sorted(self._items.items()))

    def _entry_points(self) -> dict[str, EntryPoint]:
        if self._pending is None:
            self._pending = {}
            if self.group:
                for ep in entry_points(group=self.group):
                    key = self._normalize(ep.name)
                    if key not in self._items:
                        self._pending.setdefault(key, ep)
        return self._pending

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, group={self.group!r}, names={self.names()})"


def _describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{getattr(obj, '__module__', '?')}.{name}"


@dataclass
class _Held(Generic[T]):
    obj: T
    refs: int


class RefPool(Generic[T]):
    """One shared object per key, with a count of its users (thread-safe).

    :meth:`acquire` returns the object for a key (made by ``create()`` on first use,
    under the pool's lock so two users never make two) and counts one more user;
    :meth:`release` counts one fewer and says whether it was the last. The pool never
    closes anything itself: the hub that owns it does, on its own terms.
    """

    def __init__(self, what: str, *, error: type[Exception] = RuntimeError) -> None:
        self.what = what
        self._error = error
        self.lock = threading.RLock()
        self._held: dict[str, _Held[T]] = {}

    def acquire(self, key: str, create: Callable[[], T],
                reuse: Callable[[T], bool] | None = None) -> T:
        """The object for ``key`` with one more user; ``reuse(obj)`` False makes a new one."""
        with self.lock:
            held = self._held.get(key)
            if held is not None and (reuse is None or reuse(held.obj)):
                held.refs += 1
                return held.obj
            obj = create()
            self._held[key] = _Held(obj, 1)
            return obj

    def release(self, obj: T) -> tuple[str, int]:
        """One user fewer: ``(key, users left)``. Raises when ``obj`` has no users."""
        with self.lock:
            for key, held in self._held.items():
                if held.obj is obj:
                    if held.refs <= 0:
                        break
                    held.refs -= 1
                    return key, held.refs
        raise self._error(f"{self.what} {_display(obj)} released more often than opened")

    def discard(self, key: str, obj: T | None = None) -> T | None:
        """Forget ``key`` (only while it holds ``obj``, when given); returns what it held."""
        with self.lock:
            held = self._held.get(key)
            if held is None or (obj is not None and held.obj is not obj):
                return None
            del self._held[key]
            return held.obj

    def get(self, key: str) -> T | None:
        """The object held for ``key`` (no user counted), or ``None``."""
        with self.lock:
            held = self._held.get(key)
            return None if held is None else held.obj

    def key_of(self, obj: T) -> str | None:
        """The key ``obj`` is held under, or ``None``."""
        with self.lock:
            return next((k for k, h in self._held.items() if h.obj is obj), None)

    def refs(self, obj: T) -> int:
        """How many users hold ``obj`` (0 when not in the pool)."""
        with self.lock:
            return next((h.refs for h in self._held.values() if h.obj is obj), 0)

    def refcounts(self) -> dict[str, int]:
        """``{key: users}`` of every object held."""
        with self.lock:
            return {k: h.refs for k, h in self._held.items()}

    def objects(self) -> list[T]:
        """Every object held."""
        with self.lock:
            return [h.obj for h in self._held.values()]

    def drain(self) -> list[T]:
        """Forget everything; returns the objects (for the owner to close)."""
        with self.lock:
            out = [h.obj for h in self._held.values()]
            self._held.clear()
            return out


def _display(obj: Any) -> str:
    return str(getattr(obj, "display_url", None) or obj)

"""``sim://`` URLs and the one-desktop-per-URL registry shared by the source and driver.

``sim://<scenario>[?seed=N&fps=F&width=W&height=H&realism=0|1&reset=S]``. Without a
seed the desktop draws a random one when it is created, so positions vary per run. The
source and the driver opened on the same URL (parameters in any order) share one
:class:`SimDesktop`; it lives while either of them (or a test) holds it.
"""

from __future__ import annotations

import secrets
import threading
import weakref

from .._errors import UrlError
from .._options import url_option
from .._settings import SimSettings, get_settings
from .._urls import query_params, redact_url, split_url
from ._desktop import DesktopOptions, SimDesktop
from ._scenarios import SCENARIOS

__all__ = ["get_desktop", "parse_sim_url", "reset", "sim_key"]

_PARAMS = ("seed", "fps", "width", "height", "realism", "reset")
_lock = threading.Lock()
_desktops: weakref.WeakValueDictionary[str, SimDesktop] = weakref.WeakValueDictionary()


def _number(url: str, name: str, raw: str, lo: float, hi: float, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise UrlError(f"{redact_url(url)}: {name}={raw!r} is not {kind}") from None
    if not lo <= value <= hi:
        raise UrlError(f"{redact_url(url)}: {name}={raw} is outside [{lo:g}, {hi:g}]")
    return value


def parse_sim_url(url: str) -> tuple[DesktopOptions, str]:
    """Validate a ``sim://`` URL: ``(options, key)``; the key names the shared desktop."""
    parts = split_url(url)
    if parts.scheme.lower() != "sim":
        raise UrlError(f"{redact_url(url)}: not a sim:// URL")
    scenario = (parts.netloc.rpartition("@")[2] or parts.path.strip("/") or "desktop").lower()
    if scenario not in SCENARIOS:
        raise UrlError(f"{redact_url(url)}: unknown scenario {scenario!r}; "
                       f"known: {', '.join(SCENARIOS)}")
    params = query_params(url)
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise UrlError(f"{redact_url(url)}: unknown parameter(s) {', '.join(unknown)}; "
                       f"known: {', '.join(_PARAMS)}")
    sim = get_settings().sim
    realism = url_option(url, "realism", SimSettings.param.realism, bool(sim.realism),
                         query=params)
    seed = (int(_number(url, "seed", params["seed"], 0, 2**63 - 1, True))
            if "seed" in params else None)
    options = DesktopOptions(
        scenario=scenario,
        seed=secrets.randbelow(2**31) if seed is None else seed,
        width=int(_number(url, "width", params["width"], 320, 4096, True)) if "width" in params else sim.width,
        height=int(_number(url, "height", params["height"], 240, 4096, True)) if "height" in params else sim.height,
        fps=_number(url, "fps", params["fps"], 1, 120, False) if "fps" in params else float(sim.fps),
        realism=realism,
        reset=_number(url, "reset", params["reset"], 0, 3600, False) if "reset" in params else 0.0,
    )
    return options, sim_key(url)


def sim_key(url: str) -> str:
    """The canonical name of the desktop a URL addresses (parameter order ignored)."""
    parts = split_url(url)
    scenario = (parts.netloc.rpartition("@")[2] or parts.path.strip("/") or "desktop").lower()
    params = query_params(url)
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return f"sim://{scenario}" + (f"?{query}" if query else "")


def reset(url: str) -> bool:
    """Put the desktop ``url`` addresses back to how it was created (same positions,
    nothing pressed, typed or shown in the taskbar), for a notebook or a test that runs
    again. Returns False when no such desktop is open (the next one starts fresh)."""
    _, key = parse_sim_url(url)
    with _lock:
        desktop = _desktops.get(key)
    if desktop is None:
        return False
    desktop.reset(restart=True)
    return True


def get_desktop(url: str) -> SimDesktop:
    """The desktop ``url`` addresses, created on first use and shared while referenced."""
    options, key = parse_sim_url(url)
    with _lock:
        desktop = _desktops.get(key)
        if desktop is None:
            desktop = SimDesktop(options, SCENARIOS[options.scenario], key)
            _desktops[key] = desktop
        return desktop

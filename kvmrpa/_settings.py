"""Settings: every tunable of kvmrpa in one object.

Defaults live here, documented. A TOML file (``KVMRPA_CONFIG`` or ``--config``) overrides
them, and ``KVMRPA_<SECTION>_<NAME>`` environment variables override the file, for
example ``KVMRPA_CAPTURE_STALL_TIMEOUT=5``. Every value is checked against its type and
bounds; a bad one raises :class:`ConfigError` naming the setting, the value and the range.
"""

from __future__ import annotations

import math
import os
import threading
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import param

from ._errors import ConfigError
from ._redact import is_secret_name

__all__ = [
    "CaptureSettings",
    "EngineSettings",
    "InputSettings",
    "RuntimeSettings",
    "ServerSettings",
    "Settings",
    "SimSettings",
    "StoreSettings",
    "StreamSettings",
    "VisionSettings",
    "coerce_value",
    "configure",
    "get_settings",
    "load_settings",
    "parse_bool",
    "unknown_env",
    "warn_unknown_env",
]

ENV_PREFIX = "KVMRPA_"
_DEFAULT_HOME = Path(os.environ.get("KVMRPA_HOME", Path.home() / ".kvmrpa"))


class Secret(param.String):
    """A string parameter whose value is never shown in plain text."""


class RuntimeSettings(param.Parameterized):
    """The background event loop and its worker pool."""

    pool_size = param.Integer(default=4, bounds=(1, 64), doc="Threads for CPU work (decode, OCR, matching, JPEG).")
    shutdown_timeout = param.Number(default=2.0, bounds=(0.1, 60), doc="Seconds shutdown waits for tasks to cancel.")
    native_threads = param.Integer(default=0, bounds=(0, 256), doc="Threads each native library may use per call in this process (onnxruntime intra-op threads of every OCR/detection model, OpenCV); 0: their defaults, one per core. Fleet worker processes set it to their thread count.")


class CaptureSettings(param.Parameterized):
    """Video sources: timeouts, reconnect policy, sharing."""

    open_timeout = param.Number(default=3.0, bounds=(0.1, 120), inclusive_bounds=(True, True), doc="Seconds allowed to open a stream.")
    read_timeout = param.Number(default=3.0, bounds=(0.1, 120), doc="Seconds a single read may block inside FFmpeg.")
    stall_timeout = param.Number(default=3.0, bounds=(0, 600), inclusive_bounds=(False, True), doc="Seconds without a new frame before the capture is abandoned and reopened (must be > 0).")
    reconnect_initial = param.Number(default=0.5, bounds=(0.01, 60), doc="First reconnect delay in seconds.")
    reconnect_max = param.Number(default=10.0, bounds=(0.1, 3600), doc="Largest reconnect delay in seconds.")
    reconnect_jitter = param.Number(default=0.2, bounds=(0, 1), doc="Random fraction added to or taken from each delay.")
    max_reconnects = param.Integer(default=0, bounds=(0, None), doc="Reconnect attempts before giving up; 0 means never give up.")
    transport: param.Selector[str] = param.Selector(default="tcp", objects=["tcp", "udp"], doc="RTSP transport.")
    probe_options = param.String(default="analyzeduration;100000|probesize;100000", doc="Extra FFmpeg options for short probing (opens in ~0.2 s instead of ~1.9 s).")
    hub_linger = param.Number(default=2.0, bounds=(0, 600), doc="Seconds a shared source stays open after its last user releases it.")
    next_frame_timeout = param.Number(default=5.0, bounds=(0.01, 600), doc="Default seconds next_frame() waits.")
    fps_window = param.Number(default=2.0, bounds=(0.1, 60), doc="Seconds over which fps is measured.")
    default_width = param.Integer(default=1280, bounds=(16, 8192), doc="Default frame width of synthetic sources.")
    default_height = param.Integer(default=720, bounds=(16, 8192), doc="Default frame height of synthetic sources.")
    default_fps = param.Number(default=15.0, bounds=(0.1, 240), doc="Default frame rate of synthetic and file sources.")


class InputSettings(param.Parameterized):
    """Keyboard / mouse drivers."""

    connect_timeout = param.Number(default=3.0, bounds=(0.1, 120), doc="Seconds allowed to connect to an input target.")
    action_timeout = param.Number(default=5.0, bounds=(0.1, 120), doc="Seconds one action may take.")
    lock_timeout = param.Number(default=10.0, bounds=(0.1, 600), doc="Seconds a flow waits for another flow's action sequence on the same target.")
    retries = param.Integer(default=2, bounds=(0, 20), doc="Retries of actions that are safe to repeat (moves, key releases).")
    retry_delay = param.Number(default=0.1, bounds=(0, 10), doc="Seconds between retries.")
    type_interval = param.Number(default=0.0, bounds=(0, 1), doc="Seconds between typed characters.")
    http_token = Secret(default="", doc="Bearer token for the HTTP keystroke service, when not in the URL.")


class VisionSettings(param.Parameterized):
    """OCR, template matching, detection."""

    ocr_engine: param.Selector[str] = param.Selector(default="rapidocr", objects=["rapidocr", "tesseract"], doc="Default OCR engine.")
    det_limit_type: param.Selector[str] = param.Selector(default="max", objects=["max", "min"], doc="RapidOCR detector resize rule; 'max' never scales small crops up.")
    det_limit_side_len = param.Integer(default=960, bounds=(32, 8192), doc="RapidOCR detector side limit in pixels.")
    match_threshold = param.Number(default=0.8, bounds=(0, 1), doc="Default template match score threshold.")
    font_path = param.String(default="", doc="CJK font for overlays and the simulator; empty finds Noto Sans CJK.")
    max_pixels = param.Integer(default=50_000_000, bounds=(1, 1_000_000_000), doc="Largest image (width x height, read from its header before decoding) accepted as a template or an image/folder source.")
    regex_timeout = param.Number(default=0.1, bounds=(0.001, 0.1), doc="Seconds one user regular expression (OCR text, condition 'matches') may run on one text before its node fails.")
    cache = param.Boolean(default=True, doc="Share OCR, template matching and detection results per (frame, region, engine, parameters) among every node, flow and view: one computation per key, concurrent asks wait for it.")
    cache_entries = param.Integer(default=512, bounds=(1, 1_000_000), doc="Recognition results kept in the shared cache (least recently used go first).")
    cache_bytes = param.Integer(default=32 * 2**20, bounds=(2**16, None), doc="Bytes the shared recognition cache may hold (results and change signatures).")
    change_detection = param.Boolean(default=True, doc="Reuse a region's last result while its pixels have not changed since it was recognised (waits, conditions, views); a full-frame read re-reads only the changed areas.")
    change_threshold = param.Number(default=4.0, bounds=(0.0, 255.0), doc="Largest change of a cell's mean colour (0-255, any channel) still counted as unchanged: above capture noise and JPEG artefacts (the simulator's realism noise moves cell means by at most 2), below a text change (a clock digit ticking moves them by 7 or more).")
    change_cell = param.Integer(default=8, bounds=(1, 64), doc="Side in pixels of the cells whose mean colours change detection compares.")
    change_max_area = param.Number(default=0.4, bounds=(0.0, 1.0), doc="Largest share of a region re-read on its own after a change; above it (or 0) the whole region is read again.")


class EngineSettings(param.Parameterized):
    """The flow executor."""

    event_buffer = param.Integer(default=1000, bounds=(1, 1_000_000), doc="Events buffered per subscriber before the oldest are dropped.")
    max_nodes = param.Integer(default=20000, bounds=(1, 1_000_000), doc="Largest flow accepted.")
    keep_passes = param.Integer(default=1, bounds=(1, 100), doc="Passes whose node inputs/outputs are kept for inspection.")
    stop_grace = param.Number(default=0.1, bounds=(0, 60), doc="Seconds stop waits for in-flight nodes to finish after cancelling.")


class StreamSettings(param.Parameterized):
    """Live video to viewers."""

    jpeg_quality = param.Integer(default=80, bounds=(1, 100), doc="JPEG quality of streamed frames.")
    display_fps = param.Number(default=15.0, bounds=(0.5, 120), doc="Cap on frames per second sent to a viewer.")
    max_width = param.Integer(default=1280, bounds=(64, 8192), doc="Widest frame sent to a viewer; larger frames are downscaled.")
    cdn_resources = param.Boolean(default=False, doc="Load BokehJS and Panel's JS/CSS from a CDN in notebooks; by default they come from the local installation (works offline).")
    overlay_ttl = param.Number(default=10.0, bounds=(0.5, 3600), doc="Seconds a result stays drawn over the live view (it fades sooner when the screen changes).")
    patches = param.Boolean(default=True, doc="Send a viewer only the parts of a frame that changed since the frame it has (whole frames when most of it changed); off sends every frame whole.")
    patch_threshold = param.Integer(default=8, bounds=(0, 255), doc="A pixel counts as changed for patches when a channel moved by more than this (0: any change); smaller changes show at the next whole frame.")
    keyframe_interval = param.Number(default=2.0, bounds=(0.1, 3600), doc="Most seconds between whole frames sent to a viewer that gets patches.")


class StoreSettings(param.Parameterized):
    """Where kvmrpa keeps files."""

    home = param.Foldername(default=None, check_exists=False, allow_None=True, doc="Root folder of kvmrpa's files (default ~/.kvmrpa, or KVMRPA_HOME).")
    runs_keep = param.Integer(default=500, bounds=(1, None), doc="Run records kept; older ones are deleted.")
    runs_max_age_days = param.Number(default=30, bounds=(0, None), doc="Run records older than this many days are deleted; 0 keeps all.")
    record_max_bytes = param.Integer(default=64 * 2**20, bounds=(4096, None), doc="Size at which a run record continues in a new file (<run>-<flow>.<n>.jsonl).")
    record_detail_passes = param.Integer(default=10, bounds=(0, None), doc="Passes of a loop run recorded in full; after them only failed passes are, the others as counters.")
    frames = param.Boolean(default=True, doc="Keep in the run record the frame each vision node decided on (JPEG), its results and each action's point, for kvmrpa report and replay:// (passes recorded in full only; failed ones always).")
    frame_quality = param.Integer(default=75, bounds=(20, 100), doc="JPEG quality of the frames kept in run records.")
    frames_max_bytes = param.Integer(default=32 * 2**20, bounds=(0, None), doc="Bytes of frames one run keeps; past it only the frames of failed passes are kept.")
    frames_total_bytes = param.Integer(default=1024 * 2**20, bounds=(2**20, None), doc="Bytes of frames the whole run store keeps; the oldest runs' frames are deleted first (their records stay).")

    @property
    def home_path(self) -> Path:
        home = self.home  # read once: another thread may reset it in between
        return Path(home) if home else _DEFAULT_HOME

    @property
    def runs_dir(self) -> Path:
        return self.home_path / "runs"

    @property
    def templates_dir(self) -> Path:
        return self.home_path / "templates"


class ServerSettings(param.Parameterized):
    """The dashboard server."""

    address = param.String(default="127.0.0.1", doc="Address the dashboard binds; any other than loopback requires auth.")
    port = param.Integer(default=5006, bounds=(0, 65535), doc="Port the dashboard listens on.")
    auth_file = param.String(default="", doc="File with 'user:scrypt-hash:role' lines (made by kvmrpa passwd) for logins.")
    cookie_secret = Secret(default="", doc="Secret signing session cookies when auth is on.")
    tls_cert = param.String(default="", doc="PEM certificate (chain) for HTTPS; required off loopback unless --insecure-http.")
    tls_key = param.String(default="", doc="PEM private key of tls_cert.")
    login_attempts = param.Integer(default=5, bounds=(1, 1000), doc="Failed logins per user and per client address within login_window before attempts are delayed.")
    login_window = param.Number(default=60.0, bounds=(1, 86400), doc="Seconds over which failed logins are counted.")
    login_delay = param.Number(default=1.0, bounds=(0.01, 600), doc="Delay in seconds of the first attempt over the limit; it doubles with each further failure.")
    login_delay_max = param.Number(default=30.0, bounds=(0.01, 3600), doc="Longest delay in seconds between login attempts.")


class SimSettings(param.Parameterized):
    """The simulated desktop."""

    width = param.Integer(default=1280, bounds=(320, 4096), doc="Simulated screen width.")
    height = param.Integer(default=720, bounds=(240, 4096), doc="Simulated screen height.")
    fps = param.Number(default=20.0, bounds=(1, 120), doc="Frames per second the simulator renders.")
    realism = param.Boolean(default=True, doc="Add JPEG artefacts, noise and a moving clock, as a real capture has.")


SECTIONS: dict[str, type[param.Parameterized]] = {
    "runtime": RuntimeSettings,
    "capture": CaptureSettings,
    "input": InputSettings,
    "vision": VisionSettings,
    "engine": EngineSettings,
    "stream": StreamSettings,
    "store": StoreSettings,
    "server": ServerSettings,
    "sim": SimSettings,
}


def _fields(section: param.Parameterized | type[param.Parameterized]) -> dict[str, param.Parameter]:
    return {n: p for n, p in section.param.objects("existing").items() if n != "name"}


def _describe_range(p: param.Parameter) -> str:
    if isinstance(p, param.Selector):
        return "one of " + ", ".join(map(str, p.objects))
    if isinstance(p, param.Boolean):
        return "true or false"
    if isinstance(p, param.Number) and p.bounds is not None:
        lo, hi = p.bounds
        inc = getattr(p, "inclusive_bounds", (True, True))
        left = ("[" if inc[0] else "(") + ("-inf" if lo is None else f"{lo:g}")
        right = ("inf" if hi is None else f"{hi:g}") + ("]" if inc[1] else ")")
        kind = "an integer" if isinstance(p, param.Integer) else "a number"
        return f"{kind} in {left}, {right}"
    if isinstance(p, param.Integer):
        return "an integer"
    if isinstance(p, param.Number):
        return "a number"
    return "a string"


#: The spellings of a boolean in files, the environment and URLs.
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(raw: Any) -> bool:
    """``True`` for 1/true/yes/on, ``False`` for 0/false/no/off (any case); else
    :class:`ValueError`."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(raw)


def coerce_value(p: param.Parameter, raw: Any) -> Any:
    """Turn a file, environment or URL value into the parameter's type (strings
    allowed); :class:`ValueError` when it is not one."""
    if isinstance(p, param.Boolean):
        return parse_bool(raw)
    if isinstance(p, param.Integer):
        if isinstance(raw, bool):
            raise ValueError(raw)
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        return int(str(raw).strip())
    if isinstance(p, param.Number):
        if isinstance(raw, bool):
            raise ValueError(raw)
        value = float(raw) if not isinstance(raw, int | float) else raw
        if not math.isfinite(value):  # NaN passes every bounds check
            raise ValueError(raw)
        return value
    if raw is None:
        return None
    return str(raw)


class Settings:
    """Effective settings: one attribute per section, plus where each value came from."""

    def __init__(self) -> None:
        self._sections: dict[str, param.Parameterized] = {n: cls() for n, cls in SECTIONS.items()}
        self._origins: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    runtime: RuntimeSettings
    capture: CaptureSettings
    input: InputSettings
    vision: VisionSettings
    engine: EngineSettings
    stream: StreamSettings
    store: StoreSettings
    server: ServerSettings
    sim: SimSettings

    def set(self, key: str, raw: Any, origin: str = "code") -> None:
        """Set ``section.name`` from ``raw``, checking type and bounds."""
        section_name, _, name = key.partition(".")
        section = self._sections.get(section_name)
        if section is None or not name:
            raise ConfigError(f"unknown setting {key!r}; sections: {', '.join(self._sections)}")
        fields = _fields(section)
        p = fields.get(name)
        if p is None:
            raise ConfigError(f"unknown setting {key!r}; {section_name} has: {', '.join(fields)}")
        shown = "<redacted>" if isinstance(p, Secret) else repr(raw)
        try:
            value = coerce_value(p, raw)
            section.param.update(**{name: value})
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"setting {key} ({origin}): invalid value {shown}; expected {_describe_range(p)}"
            ) from exc
        self._origins[key] = origin

    def items(self) -> Iterator[tuple[str, Any, str, param.Parameter]]:
        """Yield ``(key, value, origin, parameter)`` for every setting."""
        for section_name, section in self._sections.items():
            for name, p in _fields(section).items():
                key = f"{section_name}.{name}"
                yield key, getattr(section, name), self._origins.get(key, "default"), p

    def display_value(self, key: str) -> str:
        section_name, _, name = key.partition(".")
        p = _fields(self._sections[section_name])[name]
        value = getattr(self._sections[section_name], name)
        if isinstance(p, Secret):
            return "<redacted>" if value else "''"
        if key == "store.home" and not value:
            return repr(str(self.store.home_path))
        return repr(value)

    def as_dict(self, redact: bool = True) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, value, _origin, p in self.items():
            section_name, _, name = key.partition(".")
            if redact and isinstance(p, Secret) and value:
                value = "<redacted>"
            out.setdefault(section_name, {})[name] = value
        return out


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from defaults, then the TOML file, then ``KVMRPA_*`` variables."""
    env = os.environ if env is None else env
    settings = Settings()
    path = config_file or env.get(ENV_PREFIX + "CONFIG") or None
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except IsADirectoryError as exc:
            raise ConfigError(f"config file {path} is a directory, not a TOML file") from exc
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        for section_name, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"config file {path}: [{section_name}] must be a table")
            for name, raw in values.items():
                settings.set(f"{section_name}.{name}", raw, origin=f"file {path}")
    for section_name, section in settings._sections.items():
        for name in _fields(section):
            var = f"{ENV_PREFIX}{section_name}_{name}".upper()
            if var in env:
                settings.set(f"{section_name}.{name}", env[var], origin=f"env {var}")
    return settings


def unknown_env(env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``(variable, closest setting's variable or None)`` for every ``KVMRPA_*``
    environment variable that names no setting."""
    import difflib

    env = os.environ if env is None else env
    known = {f"{ENV_PREFIX}{s}_{n}".upper() for s, cls in SECTIONS.items() for n in _fields(cls)}
    known |= {ENV_PREFIX + extra for extra in _OTHER_ENV}
    out = []
    for var in sorted(env):
        name = var.upper()
        if not name.startswith(ENV_PREFIX) or name in known or is_secret_name(name):
            continue  # secrets flows reference as ${env:KVMRPA_…} are no settings
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        section = name[len(ENV_PREFIX):].partition("_")[0].lower()
        # a variable of a known section, or one close to a setting's: a misspelt setting
        if section in SECTIONS or difflib.get_close_matches(name, sorted(known), n=1,
                                                            cutoff=0.8):
            out.append((var, close[0] if close else None))
    return out


#: ``KVMRPA_*`` variables that are not settings but are read elsewhere.
_OTHER_ENV = ("CONFIG", "HOME", "ALLOW_CODE", "VENV")


def warn_unknown_env(env: Mapping[str, str] | None = None) -> list[str]:
    """One warning line per unknown ``KVMRPA_*`` variable, naming the closest setting."""
    out = []
    for var, close in unknown_env(env):
        hint = f"; did you mean {close}?" if close else ""
        out.append(f"environment variable {var} is not a kvmrpa setting (ignored){hint}")
    return out


_lock = threading.Lock()
_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = load_settings()
        return _current


def configure(settings: Settings | None = None, **overrides: Any) -> Settings:
    """Replace the process-wide settings, or apply ``section__name=value`` overrides."""
    global _current
    with _lock:
        if settings is not None:
            _current = settings
        elif _current is None:
            _current = load_settings()
        for key, value in overrides.items():
            _current.set(key.replace("__", "."), value, origin="code")
        return _current

"""Settings: defaults, TOML file, KVMRPA_* environment, validation, CLI display."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kvmrpa import ConfigError, load_settings


def test_defaults_are_documented_and_typed() -> None:
    s = load_settings(env={})
    assert s.capture.stall_timeout == 3.0
    assert s.server.address == "127.0.0.1"
    for key, _value, origin, p in s.items():
        assert origin == "default"
        assert p.doc, f"{key} has no doc"


def test_file_then_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text("[capture]\nstall_timeout = 7.5\nopen_timeout = 2\n[stream]\njpeg_quality = 60\n")
    s = load_settings(cfg, env={"KVMRPA_CAPTURE_STALL_TIMEOUT": "4"})
    assert s.capture.stall_timeout == 4.0
    assert s.capture.open_timeout == 2.0
    assert s.stream.jpeg_quality == 60
    origins = {k: o for k, _v, o, _p in s.items()}
    assert origins["capture.stall_timeout"] == "env KVMRPA_CAPTURE_STALL_TIMEOUT"
    assert origins["capture.open_timeout"] == f"file {cfg}"
    assert origins["runtime.pool_size"] == "default"


def test_config_file_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text("[runtime]\npool_size = 3\n")
    s = load_settings(env={"KVMRPA_CONFIG": str(cfg)})
    assert s.runtime.pool_size == 3


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"KVMRPA_CAPTURE_STALL_TIMEOUT": "0"}, "capture.stall_timeout"),
        ({"KVMRPA_CAPTURE_STALL_TIMEOUT": "-1"}, "(0, 600]"),
        ({"KVMRPA_CAPTURE_STALL_TIMEOUT": "soon"}, "'soon'"),
        ({"KVMRPA_STREAM_JPEG_QUALITY": "101"}, "an integer in [1, 100]"),
        ({"KVMRPA_STREAM_JPEG_QUALITY": "7.5"}, "stream.jpeg_quality"),
        ({"KVMRPA_CAPTURE_TRANSPORT": "carrier-pigeon"}, "one of tcp, udp"),
        ({"KVMRPA_SIM_REALISM": "maybe"}, "true or false"),
    ],
)
def test_invalid_values_name_setting_value_and_range(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert fragment in str(info.value)


def test_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture\nstall_timeout = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[capture]\nstal_timeout = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'capture\.stal_timeout'"):
        load_settings(unknown, env={})


def test_secrets_are_redacted() -> None:
    s = load_settings(env={"KVMRPA_SERVER_COOKIE_SECRET": "hunter2"})
    assert s.server.cookie_secret == "hunter2"
    assert s.display_value("server.cookie_secret") == "<redacted>"
    assert "hunter2" not in repr(s.as_dict())


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "kvmrpa", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


def test_cli_config_shows_env_override_with_origin() -> None:
    out = _cli("config", env={"KVMRPA_CAPTURE_STALL_TIMEOUT": "5",
                              "KVMRPA_SERVER_COOKIE_SECRET": "hunter2"})
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("capture.stall_timeout"))
    assert "5.0" in line and "(env KVMRPA_CAPTURE_STALL_TIMEOUT)" in line
    assert "hunter2" not in out.stdout
    assert "runtime.pool_size" in out.stdout and "(default)" in out.stdout


def test_cli_config_bad_value_exits_2_with_one_line() -> None:
    out = _cli("config", env={"KVMRPA_CAPTURE_STALL_TIMEOUT": "-3"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "capture.stall_timeout" in lines[0] and "'-3'" in lines[0]
    assert "Traceback" not in out.stderr


def test_cli_config_file_option(tmp_path: Path) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text("[stream]\njpeg_quality = 55\n")
    out = _cli("--config", str(cfg), "config")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("stream.jpeg_quality"))
    assert "55" in line and f"(file {cfg})" in line


def test_one_boolean_and_url_option_parser_for_settings_and_urls() -> None:
    import param
    import pytest

    from kvmrpa import UrlError
    from kvmrpa._options import url_option
    from kvmrpa._settings import SimSettings, parse_bool

    assert [parse_bool(w) for w in ("1", "TRUE", " yes", "On")] == [True] * 4
    assert [parse_bool(w) for w in ("0", "False", "no", "OFF")] == [False] * 4
    with pytest.raises(ValueError):
        parse_bool("maybe")
    url = "sim://desktop?realism=off&fps=30&bad=x"
    assert url_option(url, "realism", SimSettings.param.realism) is False
    assert url_option(url, "missing", SimSettings.param.realism) is True  # its default
    assert url_option(url, "fps", SimSettings.param.fps) == 30.0
    with pytest.raises(UrlError, match=r"bad='x' must be 0 or 1"):
        url_option(url, "bad", param.Boolean())
    with pytest.raises(UrlError, match=r"fps='30' must be a number within \[1, 10\]"):
        url_option(url, "fps", param.Number(default=1, bounds=(1, 10)))

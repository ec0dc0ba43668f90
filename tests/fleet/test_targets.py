"""Targets files: parsing, one-line errors, selection, ``kvmrpa targets check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kvmrpa import TargetsError
from kvmrpa.cli import main
from kvmrpa.engine import Flow
from kvmrpa.fleet import load_targets, parse_selector, select
from kvmrpa.fleet._worker import run_target

from .conftest import json_lines, sim_targets, write_targets

GOOD = '''
[[target]]
id = "b2-01"
source = "sim://scenario1?seed=1"
input = "vnc://${env:B2_PASS}@127.0.0.1:5900"
labels = { room = "b2", os = "win11" }
variables = { asset = "PC-1", retries = 3 }
secrets = { bios = "${env:B2_BIOS}" }

[[target]]
id = "c3-07"
source = "sim://scenario2?seed=2"
input = "sim://scenario2?seed=2"
labels = { room = "c3" }
'''


def test_load_and_select(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(GOOD, "utf-8")
    targets = load_targets(path)
    assert [t.id for t in targets] == ["b2-01", "c3-07"]
    first = targets[0]
    assert first.labels == {"room": "b2", "os": "win11"}
    assert first.variables == {"asset": "PC-1", "retries": 3}
    assert first.secrets == {"bios": "${env:B2_BIOS}"}
    assert [t.id for t in select(targets, parse_selector(["room=b2"]))] == ["b2-01"]
    assert [t.id for t in select(targets, parse_selector("room=b2,os=win10"))] == []
    assert [t.id for t in select(targets, {"id": "c3-07"})] == ["c3-07"]
    assert len(select(targets, None)) == 2
    assert first.as_dict()["secrets"] == {"bios": "${env:B2_BIOS}"}


@pytest.mark.parametrize(("snippet", "message"), [
    ('secrets = { bios = "hunter2" }',
     "target 'x': secrets.bios: a secret in plain text; use ${env:NAME}"),
    ('secrets = { bios = "pre-${env:A}" }',
     "target 'x': secrets.bios: a secret in plain text; use ${env:NAME}"),
    ('labels = { room = ["b2"] }', "target 'x': labels.room: must be a name = a string"),
    ('colour = "red"', "target 'x': unknown field(s) colour"),
])
def test_bad_target_is_one_line_naming_target_and_field(tmp_path: Path, snippet: str,
                                                       message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f'[[target]]\nid = "x"\nsource = "sim://desktop"\ninput = "sim://desktop"\n'
                    f"{snippet}\n", "utf-8")
    with pytest.raises(TargetsError) as err:
        load_targets(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"targets file {path}: ") and message in text


def test_plain_password_in_url_and_other_errors(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[[target]]\nid = "x"\nsource = "sim://desktop"\n'
                    'input = "vnc://:swordfish@10.0.0.5:5900"\n', "utf-8")
    assert main(["targets", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"kvmrpa targets: error: targets file {path}: target 'x': input: "
                           "a URL with a plain-text password; use ${env:NAME}")
    assert "swordfish" not in err
    path.write_text('[[target]]\nid = "x"\nsource = "sim://desktop"\n', "utf-8")
    with pytest.raises(TargetsError, match=r"target 'x': input: is required"):
        load_targets(path)
    path.write_text('[[target]]\nid = "x"\nsource = "a"\ninput = "b"\n[[target]]\nid = "x"\n'
                    'source = "a"\ninput = "b"\n', "utf-8")
    with pytest.raises(TargetsError, match=r"target 'x': id: named twice"):
        load_targets(path)
    path.write_text("[[target]\n", "utf-8")
    with pytest.raises(TargetsError, match=r"^targets file .*t.toml: "):
        load_targets(path)
    with pytest.raises(TargetsError, match="does not exist"):
        load_targets(tmp_path / "missing.toml")
    with pytest.raises(TargetsError, match="expected LABEL=VALUE"):
        parse_selector(["room"])


def test_targets_check_probes_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = sim_targets(3)
    targets[2]["source"] = "rtsp://127.0.0.1:9/nothing-listens"
    path = write_targets(tmp_path / "t.toml", targets)
    assert main(["targets", "check", str(path), "--json", "--timeout", "1"]) == 1
    out = json_lines(capsys.readouterr().out)
    by_id = {o["target"]: o for o in out if o["kind"] == "target"}
    assert by_id["sim-00"]["ok"] and by_id["sim-01"]["ok"]
    assert by_id["sim-00"]["source"]["size"] == [1280, 720]
    down = by_id["sim-02"]
    assert not down["ok"] and not down["source"]["ok"] and down["input"]["ok"]
    assert "rtsp://127.0.0.1:9/nothing-listens" in down["source"]["error"]
    assert out[-1] == {"kind": "summary", "targets": 3, "ok": 2, "failed": 1}
    assert main(["targets", "check", str(path), "--select", "room=b2"]) == 0
    assert "1/1 target(s) healthy" in capsys.readouterr().out


def test_secrets_resolve_on_the_worker_and_never_come_back(
        monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """The task itself, called directly: the flow sees the secret's value, the result
    shows the reference; a missing variable fails the target in one line."""
    monkeypatch.setenv("FLEET_TEST_SECRET", "s3cret")
    flow = Flow("secret-check")
    flow.add("python", "check", code="assert variables['pw'] == 's3cret', 'wrong secret'")
    target = {**sim_targets(1)[0], "secrets": {"pw": "${env:FLEET_TEST_SECRET}"}}
    out = run_target(flow.to_dict(), target, {}, "")
    assert out["status"] == "ok", out["error"]
    assert out["variables"]["pw"] == "${env:FLEET_TEST_SECRET}"
    assert not any("s3cret" in line for line in out["record_lines"])
    assert out["record_lines"] and not list((home / "runs").glob("*.jsonl"))  # spool emptied
    monkeypatch.delenv("FLEET_TEST_SECRET")
    out = run_target(flow.to_dict(), target, {}, "")
    assert out["status"] == "failed"
    assert out["error"] == ("target 'sim-00': secrets.pw: environment variable "
                            "FLEET_TEST_SECRET is not set")


def test_importing_kvmrpa_does_not_import_dask() -> None:
    code = ("import sys, kvmrpa, kvmrpa.fleet, kvmrpa.cli; kvmrpa.cli.build_parser(); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_readme_targets_example_loads(tmp_path: Path) -> None:
    import re

    readme = Path(__file__).resolve().parents[2] / "README.md"
    (block,) = re.findall(r"```toml\n(.*?)```", readme.read_text("utf-8"), re.S)
    path = tmp_path / "lab.toml"
    path.write_text(block, "utf-8")
    first, second = load_targets(path)
    assert first.secrets == {"bios_password": "${env:B2_BIOS_PASSWORD}"}
    assert (first.labels["room"], second.id) == ("b2", "c3-07")

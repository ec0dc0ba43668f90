"""The README's Python example runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no Python example"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["result"].status == "ok", namespace["result"].error  # type: ignore[attr-defined]
    actions = namespace["result"].actions  # type: ignore[attr-defined]
    assert [a["node"] for a in actions] == ["click"]


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick, re.S)
    commands = [ln.split("#")[0].strip() for ln in block.splitlines() if ln.strip()]
    assert commands == ["./dev serve", "./dev test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "exec ./dev test" in ci

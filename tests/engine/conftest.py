"""Engine test helpers: a private run store per test and small flow builders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmrpa import configure, get_settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """Run records of this test go to a fresh folder (restored afterwards)."""
    settings = get_settings()
    old = settings.store.home
    configure(store__home=str(tmp_path / "home"))
    try:
        yield settings.store.runs_dir
    finally:
        settings.store.home = old

"""Test-wide setup: an isolated kvmrpa home, and the lab fixtures plugin."""

from __future__ import annotations

import os
import tempfile

import pytest

# Every test run gets its own store so run records never leak between runs.
os.environ.setdefault("KVMRPA_HOME", tempfile.mkdtemp(prefix="kvmrpa-test-home-"))

pytest_plugins = ["tests.fixtures.lab"]


@pytest.fixture
def artifacts_dir() -> str:
    """Folder for screenshots and other test artefacts (kept after the run)."""
    path = os.path.join(os.path.dirname(__file__), "..", "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)

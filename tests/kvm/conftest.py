"""Fixtures of the input-driver tests (helpers live in tests/kvm/_support.py)."""

from ._support import blackhole, fast_input, http_server

__all__ = ["blackhole", "fast_input", "http_server"]

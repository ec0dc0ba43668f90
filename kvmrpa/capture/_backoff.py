"""Reconnect delays: exponential backoff with jitter."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays ``initial * 2**n`` capped at ``maximum``, each moved by a random fraction
    in ``[-jitter, +jitter]`` so that many clients of one KVM do not reconnect in step.

    :meth:`next` returns the next delay; :meth:`reset` starts over (after a success).
    """

    def __init__(self, initial: float, maximum: float, jitter: float,
                 rng: random.Random | None = None) -> None:
        if initial <= 0 or maximum <= 0:
            raise ValueError(f"backoff delays must be > 0, got initial={initial}, max={maximum}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"backoff jitter must be in [0, 1], got {jitter}")
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.jitter = jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        base = min(self.maximum, self.initial * (2 ** min(self.attempt, 60)))
        self.attempt += 1
        if self.jitter:
            base *= 1 + self._rng.uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def reset(self) -> None:
        self.attempt = 0

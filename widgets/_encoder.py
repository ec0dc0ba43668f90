"""The frame encoder the live views use: :mod:`kvmrpa.capture._encoder` (it needs no UI
package, so the stream benchmark uses the same one)."""

from __future__ import annotations

from kvmrpa.capture._encoder import (
    WIDTH_STEP,
    EncodedFrame,
    FrameEncoder,
    FrameStreamer,
    Patch,
    choose_width,
    encode_jpeg,
    get_encoder,
)

__all__ = [
    "WIDTH_STEP",
    "EncodedFrame",
    "FrameEncoder",
    "FrameStreamer",
    "Patch",
    "choose_width",
    "encode_jpeg",
    "get_encoder",
]

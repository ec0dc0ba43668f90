"""Video sources: the latest-frame mailbox contract and its implementations."""

from ._source import FrameSource, SourceMetrics, SourceState

__all__ = ["FrameSource", "SourceMetrics", "SourceState"]

"""Every error kvmrpa raises, in one tree.

::

    KvmrpaError                      root: catch this to catch everything of ours
    ├── ConfigError                  a setting has a bad value (names setting, value, range)
    ├── RuntimeClosedError           the background runtime was shut down
    ├── UrlError                     a source or input URL cannot be understood
    ├── FlowError                    anything about a flow (carries ``flow`` name)
    │   ├── FlowFormatError          unreadable file: JSON syntax, encoding, schema version
    │   ├── FlowValidationError      one or more problems found before running (``problems``)
    │   ├── NodeError                a node failed while running (``node_id``, ``cause``)
    │   │   └── NodeTimeoutError     a node ran past its timeout
    │   ├── FlowStateError           an operation not allowed in the run's current state
    │   └── ImportWarningError       an imported flow cannot run as the original did
    ├── CaptureError                 video sources
    │   ├── SourceOpenError          a source could not be opened within its timeout
    │   └── FrameTimeoutError        no newer frame arrived in time (also a TimeoutError)
    ├── InputError                   keyboard / mouse drivers (names driver and action)
    │   ├── DriverConnectionError    transport down, refused, unreachable, bad auth
    │   ├── UnsupportedActionError   the driver cannot do this (names keys or characters)
    │   ├── CoordinateError          a point outside the frame
    │   └── ArbitrationTimeoutError  another flow held the target too long (also a TimeoutError)
    ├── VisionError                  OCR, template matching, detection
    │   └── ModelNotFoundError       a model or template file is missing
    ├── LabError                     a lab program (Xvfb, test app, RTSP/VNC server) failed
    └── AccessDenied                 the dashboard user's role does not allow the action
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AccessDenied",
    "ArbitrationTimeoutError",
    "CaptureError",
    "ConfigError",
    "CoordinateError",
    "DriverConnectionError",
    "FleetError",
    "FlowError",
    "FlowFormatError",
    "FlowStateError",
    "FlowValidationError",
    "FrameTimeoutError",
    "ImportWarningError",
    "InputError",
    "InputStoppedError",
    "KvmrpaError",
    "LabError",
    "ModelNotFoundError",
    "NodeError",
    "NodeTimeoutError",
    "PatternTimeoutError",
    "PoolExhaustedError",
    "Problem",
    "RuntimeClosedError",
    "SourceOpenError",
    "TargetsError",
    "UnsupportedActionError",
    "UrlError",
    "VisionError",
]


class KvmrpaError(Exception):
    """Root of every error kvmrpa raises on purpose. Its text is redacted (URL
    credentials, secret query values, resolved secrets) wherever it is shown."""

    def __str__(self) -> str:
        from ._redact import redact

        return redact(super().__str__())


class ConfigError(KvmrpaError, ValueError):
    """A setting (file, environment or code) has a value outside what it accepts."""


class RuntimeClosedError(KvmrpaError, RuntimeError):
    """The background runtime has been shut down; nothing more can be submitted."""


class PoolExhaustedError(KvmrpaError, RuntimeError):
    """Every worker thread is held by a blocking call that timed out or was stopped."""


class UrlError(KvmrpaError, ValueError):
    """A source or input URL has an unknown scheme or a malformed part."""


class FlowError(KvmrpaError):
    """An error about a flow; ``flow`` names it when known."""

    def __init__(self, message: str, *, flow: str | None = None) -> None:
        super().__init__(message)
        self.flow = flow


class FlowFormatError(FlowError):
    """A flow file that cannot be read: bad JSON (with line/column), encoding, version."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is and what is wrong."""

    node: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"node {self.node}" if self.node is not None else "flow"
        field = f": {self.field}" if self.field else ""
        return f"{where}{field}: {self.message}"


class FlowValidationError(FlowError):
    """Problems found before any node ran; ``problems`` lists them all."""

    def __init__(self, problems: Iterable[Problem], *, flow: str | None = None) -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        head = f"flow {flow!r}: " if flow else ""
        lines = "; ".join(str(p) for p in self.problems) or "invalid flow"
        super().__init__(f"{head}{lines}", flow=flow)


class NodeError(FlowError):
    """A node failed while running. ``node_id`` and ``cause`` say which and why."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str,
        flow: str | None = None,
        field: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.node_id = node_id
        self.field = field
        self.cause = cause
        where = f"node {node_id}" + (f": {field}" if field else "")
        head = f"flow {flow!r}: " if flow else ""
        super().__init__(f"{head}{where}: {message}", flow=flow)


class NodeTimeoutError(NodeError, TimeoutError):
    """A node ran past its per-node timeout."""


class FlowStateError(FlowError, RuntimeError):
    """An operation not allowed in the run's current state (for example step while running)."""


class ImportWarningError(FlowError):
    """An imported flow uses something that cannot be mapped and would run wrongly."""


class CaptureError(KvmrpaError):
    """A video source failed."""


class SourceOpenError(CaptureError):
    """A source could not be opened (within its open timeout)."""


class FrameTimeoutError(CaptureError, TimeoutError):
    """No frame newer than the one asked about arrived within the timeout."""


class InputError(KvmrpaError):
    """A keyboard or mouse action failed; the message names the driver and the action."""


class DriverConnectionError(InputError, ConnectionError):
    """The driver's transport is down, refused, unreachable or rejected the credentials."""


class UnsupportedActionError(InputError):
    """The driver cannot perform this action (names the keys or characters concerned)."""


class CoordinateError(InputError, ValueError):
    """A point lies outside the frame the driver maps from."""


class ArbitrationTimeoutError(InputError, TimeoutError):
    """Another flow held the input target longer than the lock timeout."""


class InputStoppedError(InputError):
    """An action was cut (nothing more sent) because its run was stopped."""


class VisionError(KvmrpaError):
    """OCR, template matching or detection failed."""


class ModelNotFoundError(VisionError, FileNotFoundError):
    """A model, names file or template image is not on disk."""


class LabError(KvmrpaError, RuntimeError):
    """A lab program (Xvfb, the test app, the RTSP or VNC server) did not start or answer."""


class AccessDenied(KvmrpaError, PermissionError):
    """A dashboard user's role does not allow an action (names user, role and action)."""


class FleetError(KvmrpaError):
    """A fleet run cannot start or go on (no cluster, no workers, the extra missing)."""


class TargetsError(FleetError, ValueError):
    """A targets file is unreadable or wrong; the message names the file, target and field."""


class PatternTimeoutError(VisionError, TimeoutError):
    """A user-supplied regular expression ran past its time budget; ``field`` names the
    parameter it came from."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

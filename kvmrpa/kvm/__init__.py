"""Input drivers: keyboard and mouse injection into a target, in frame pixels."""

from ._driver import ActionRecord, Calibration, DriverCapabilities, InputDriver, MouseButton

__all__ = ["ActionRecord", "Calibration", "DriverCapabilities", "InputDriver", "MouseButton"]

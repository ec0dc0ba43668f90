"""The built-in driver schemes (:data:`BUILTIN_DRIVERS`); each driver module is imported
on its first use. Other packages add schemes through the ``kvmrpa.drivers`` entry points."""

from __future__ import annotations

from collections.abc import Callable

from ._driver import InputDriver

__all__ = ["BUILTIN_DRIVERS"]


def _vnc(url: str) -> InputDriver:
    from ._vnc import VncDriver

    return VncDriver(url)


def _pikvm(url: str) -> InputDriver:
    from ._pikvm import PiKvmDriver

    return PiKvmDriver(url)


def _ch9329(url: str) -> InputDriver:
    from ._ch9329 import Ch9329Driver

    return Ch9329Driver(url)


def _http(url: str) -> InputDriver:
    from ._http import HttpKeysDriver

    return HttpKeysDriver(url)


def _dryrun(url: str) -> InputDriver:
    from ._dryrun import DryRunDriver

    return DryRunDriver(url)


#: URL scheme → factory of the drivers this package ships.
BUILTIN_DRIVERS: dict[str, Callable[[str], InputDriver]] = {
    "vnc": _vnc,
    "pikvm+http": _pikvm,
    "pikvm+https": _pikvm,
    "ch9329": _ch9329,
    "http+keys": _http,
    "https+keys": _http,
    "dryrun": _dryrun,
}

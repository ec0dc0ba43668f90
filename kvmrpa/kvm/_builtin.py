"""Registers the built-in driver schemes; each driver module is imported on first use."""

from __future__ import annotations

from ._driver import InputDriver
from ._hub import register_driver


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


register_driver("vnc", _vnc)
register_driver("pikvm+http", _pikvm)
register_driver("pikvm+https", _pikvm)
register_driver("ch9329", _ch9329)
register_driver("http+keys", _http)
register_driver("https+keys", _http)
register_driver("dryrun", _dryrun)


def _sim(url: str) -> InputDriver:
    from ..sim import SimDriver  # importing kvmrpa.sim also registers it directly

    return SimDriver(url)


register_driver("sim", _sim)

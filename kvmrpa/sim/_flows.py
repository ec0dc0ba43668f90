"""The example flows of the three reference scenarios, shipped with the package.

``kvmrpa/sim/flows/<scenario>.json`` (native format) are the same files as the
repository's ``notebooks/flows/`` (a test keeps them identical), so ``kvmrpa demo`` works
from an installed package too.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import FlowError

__all__ = ["EXAMPLE_FLOWS", "flow_path"]

#: The scenarios that ship an example flow, in demo order.
EXAMPLE_FLOWS: tuple[str, ...] = ("scenario1", "scenario2", "scenario3")

_DIR = Path(__file__).resolve().parent / "flows"


def flow_path(scenario: str) -> Path:
    """Path of the example flow for ``scenario`` (``scenario1`` … ``scenario3``)."""
    if scenario not in EXAMPLE_FLOWS:
        raise FlowError(f"no example flow for scenario {scenario!r}; "
                        f"examples: {', '.join(EXAMPLE_FLOWS)}", flow=scenario)
    path = _DIR / f"{scenario}.json"
    if not path.is_file():
        raise FlowError(f"example flow file {path} is missing from the installation",
                        flow=scenario)
    return path

"""``kvmrpa notebooks [DIR]``: copy the example notebooks and flows into a folder.

The notebooks ship in the package as ``kvmrpa._notebooks`` (the repository's
``notebooks/``, mapped there at build time) and the flows as ``kvmrpa.sim.flows``; both
are read through :mod:`importlib.resources`. An editable install cannot map a data-only
folder into the package, so there the checkout's ``notebooks/`` is read (the folder
the install's ``direct_url.json`` names). Existing files are never overwritten without
``--force``.
"""

from __future__ import annotations

import argparse
import json
import shlex
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from .._errors import ConfigError

__all__ = ["DEFAULT_DIR", "example_files", "register"]

#: Where the examples go when no folder is named (relative to the working folder).
DEFAULT_DIR = "kvmrpa-notebooks"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "notebooks", help="copy the example notebooks and flows into a folder",
        description="Copy the example notebooks (explore, debug, dashboard) and the example "
                    "flows into DIR, then open them with 'jupyter lab DIR'.")
    p.add_argument("dir", nargs="?", default=DEFAULT_DIR, metavar="DIR",
                   help=f"folder to copy into (default: ./{DEFAULT_DIR}; created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite files already in DIR")
    p.set_defaults(func=run)


def _editable_checkout() -> Path | None:
    """The source folder of an editable install of kvmrpa, else ``None``."""
    for dist in metadata.distributions(name="kvmrpa"):  # a stale egg-info may come first
        try:
            info = json.loads(dist.read_text("direct_url.json") or "{}")
        except ValueError:
            continue
        url = urlsplit(str(info.get("url", "")))
        if info.get("dir_info", {}).get("editable") and url.scheme == "file":
            return Path(url2pathname(url.path))
    return None


def _folder(package: str) -> Traversable | None:
    try:
        return resources.files(package)
    except ModuleNotFoundError:
        if package != "kvmrpa._notebooks":
            return None
        checkout = _editable_checkout()
        return checkout / "notebooks" if checkout is not None else None


def example_files() -> dict[str, Traversable]:
    """The shipped examples: relative destination path → packaged file."""
    out: dict[str, Traversable] = {}
    for package, prefix, suffix in (("kvmrpa._notebooks", "", ".ipynb"),
                                    ("kvmrpa.sim.flows", "flows/", ".json")):
        folder = _folder(package)
        try:
            entries = list(folder.iterdir()) if folder is not None else []
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        found = sorted((e for e in entries if e.is_file() and e.name.endswith(suffix)),
                       key=lambda e: e.name)
        if not found:
            raise ConfigError(f"the example files of {package} are missing from this "
                              f"installation (reinstall kvmrpa)")
        out.update((prefix + e.name, e) for e in found)
    return out


def run(args: argparse.Namespace) -> int:
    from ..engine._flow import atomic_write

    target = Path(args.dir)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"notebooks {target}: exists and is not a folder")
    files = example_files()
    clashes = [rel for rel in files if (target / rel).exists()]
    if clashes and not args.force:
        raise ConfigError(f"notebooks {target}: {len(clashes)} file(s) already there "
                          f"({', '.join(clashes)}); use --force to overwrite them")
    for rel, src in files.items():
        try:
            atomic_write(target / rel, src.read_bytes())
        except OSError as exc:
            raise ConfigError(f"notebooks {target / rel}: cannot write it "
                              f"({exc.strerror or exc})") from exc
    notebooks = sum(rel.endswith(".ipynb") for rel in files)
    print(f"kvmrpa notebooks: copied {notebooks} notebooks and {len(files) - notebooks} "
          f"flows to {target}{' (overwriting)' if clashes else ''}")
    print(f"open them with: jupyter lab {shlex.quote(str(target))}")
    return 0

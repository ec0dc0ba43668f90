"""``kvmrpa serve``: serve the dashboard (flows, live view, debugger) with Panel's server.

With no arguments it opens on the simulated desktop (``sim://desktop``) with the three
scenario flows of ``notebooks/flows/`` loaded and the first one selected; every flow runs
on that desktop, which the live view shows. With ``--flows DIR`` each flow runs on (and
the live view shows) its own source, ``sim://desktop`` for flows that name none;
``--source`` / ``--input`` make every flow run on the given URLs instead. It binds
127.0.0.1 by default and refuses any other address unless authentication is on
(``--auth-file`` with ``user:password`` lines; Panel's basic auth, cookies signed with
settings.server.cookie_secret or a generated secret). Panel is imported only when the
command runs, so the rest of the CLI stays free of UI packages.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import secrets
import socket
import sys
from pathlib import Path

from .._errors import ConfigError

__all__ = ["default_flows_dir", "is_loopback", "read_auth_file", "register", "websocket_origins"]

log = logging.getLogger("kvmrpa.serve")

DEFAULT_SOURCE = "sim://desktop"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve the dashboard in a browser (default: the simulated desktop)",
        description="Serve the kvmrpa dashboard. With no arguments: the simulated desktop "
                    "with the three scenario flows, on http://127.0.0.1:5006/.")
    p.add_argument("--flows", metavar="DIR", help="folder of flow JSON files "
                   "(default: the scenario flows in notebooks/flows/)")
    p.add_argument("--source", metavar="URL", default=None,
                   help="video source every flow runs on and the live view shows (default: "
                        f"{DEFAULT_SOURCE} for the built-in scenarios; with --flows, each "
                        "flow's own source)")
    p.add_argument("--input", metavar="URL", default=None,
                   help="input driver every flow and console mode use (default: each flow's "
                        "own input; for a sim:// source, the same sim:// desktop)")
    p.add_argument("--address", default=None,
                   help="address to bind (default: settings.server.address, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="port to listen on (default: settings.server.port, 5006)")
    p.add_argument("--auth-file", metavar="FILE", default=None,
                   help="enable basic auth with 'user:password' lines from FILE "
                        "(required for a non-loopback address)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=run)


def is_loopback(address: str) -> bool:
    """Whether ``address`` only accepts connections from this machine."""
    if address in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def websocket_origins(address: str, port: int) -> list[str]:
    """The ``host:port`` origins whose pages may open the dashboard's websocket.

    A browser's Origin names the host it browsed to, never a wildcard bind address: for
    ``0.0.0.0`` / ``::`` that is this machine's name or one of its addresses, so those are
    allowed (with the loopback names); for any other address, that address (IPv6 in
    brackets), plus ``localhost`` / ``127.0.0.1`` when it is loopback.
    """
    def origin(host: str) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    hosts = {address}
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if is_loopback(address):
        hosts |= {"localhost", "127.0.0.1"}
    elif ip is not None and ip.is_unspecified:
        hosts = {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()}
        for name in (socket.gethostname(), socket.getfqdn()):
            try:
                infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            except OSError:  # a name that does not resolve: the name itself still counts
                continue
            hosts |= {str(info[4][0]).split("%")[0] for info in infos}
    return sorted(origin(h) for h in hosts if h)


def read_auth_file(path: str | Path) -> dict[str, str]:
    """``user:password`` lines (blank lines and ``#`` comments ignored) → a dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"auth file {path}: cannot read it ({exc.strerror})") from exc
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"auth file {path}, line {n}: expected 'user:password'")
        users[user] = password
    if not users:
        raise ConfigError(f"auth file {path}: no 'user:password' line")
    return users


def default_flows_dir() -> Path | None:
    """The scenario flows shipped with the repository (``notebooks/flows``), if present."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "notebooks" / "flows"
        if candidate.is_dir():
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    from .._settings import get_settings

    server = get_settings().server
    address = args.address or server.address
    port = server.port if args.port is None else args.port
    auth_file = args.auth_file or server.auth_file or None
    if not is_loopback(address) and not auth_file:
        print(f"kvmrpa serve: refusing to serve on {address} without authentication; "
              "enable it with --auth-file FILE ('user:password' lines) or "
              "KVMRPA_SERVER_AUTH_FILE, or bind 127.0.0.1", file=sys.stderr)
        return 2
    basic_auth = read_auth_file(auth_file) if auth_file else None
    flows_dir = Path(args.flows) if args.flows else default_flows_dir()
    if flows_dir is not None and not flows_dir.is_dir():
        raise ConfigError(f"--flows {flows_dir}: not a folder")
    source = args.source or DEFAULT_SOURCE
    input_url = args.input or (source if source.startswith("sim://") else None)

    import panel as pn

    from kvmrpa.widgets import DashboardApp

    # The demo (no --flows, no --source): every scenario flow runs on the one simulated
    # desktop the live view shows. Otherwise flows keep their own URLs unless --source.
    demo = not args.flows and not args.source
    app = DashboardApp(flows_dir=flows_dir, source_url=source, input_url=input_url,
                       override=bool(args.source) or demo)
    origins = websocket_origins(address, port)
    kwargs: dict[str, object] = {}
    if basic_auth is not None:
        kwargs["basic_auth"] = basic_auth
        kwargs["cookie_secret"] = server.cookie_secret or secrets.token_urlsafe(32)
    print(f"kvmrpa serve: dashboard at http://{address}:{port}/ "
          f"(flows: {flows_dir or 'none'}, source: {app.display_source})", file=sys.stderr,
          flush=True)
    try:
        pn.serve(app.view, address=address, port=port, websocket_origin=origins,
                 show=args.show, start=True, title="kvmrpa", **kwargs)
    finally:
        app.close()
    return 0

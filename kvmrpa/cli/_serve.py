"""``kvmrpa serve``: serve the dashboard (flows, live view, debugger) with Panel's server.

With no arguments it opens on the simulated desktop (``sim://desktop``) with the three
scenario flows of ``notebooks/flows/`` loaded and the first one selected; every flow runs
on that desktop, which the live view shows. With ``--flows DIR`` each flow runs on (and
the live view shows) its own source, ``sim://desktop`` for flows that name none;
``--source`` / ``--input`` make every flow run on the given URLs instead.
``--fleet FILE`` serves the fleet dashboard of a targets file instead (the flows of
``--flows`` run on its targets through Dask: ``--local N`` workers, or ``--scheduler``).

Security: it binds 127.0.0.1 by default, where the single local user is admin. Any other
address needs an auth file (``user:scrypt-hash:role`` lines, made with ``kvmrpa passwd``)
and TLS (``--tls-cert``/``--tls-key``) unless ``--insecure-http`` is given. Roles and the
audit log are enforced by ``kvmrpa.widgets._auth``. Panel is imported only when the
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

from .._auth import AuthFile, LoginThrottle, parse_auth_file
from .._errors import ConfigError

__all__ = ["default_flows_dir", "is_loopback", "read_auth_file", "register", "websocket_origins"]

log = logging.getLogger("kvmrpa.serve")

DEFAULT_SOURCE = "sim://desktop"


SECURITY_HELP = """\
security model:
  roles, weakest first: viewer (watch), operator (run, stop, pause, step, run a node
  on the current frame, console mode), editor (edit and save flows, save templates),
  admin (everything). Every mutating action is checked on the server and written to
  <store>/audit.jsonl (who, what, when). Python nodes (and any node type that
  evaluates code) can be created, edited or tried from a browser only by an admin on
  a server started with --allow-code; otherwise they are not in the palette and the
  server refuses them. A Python node loaded from a flow file still runs.
  Without --auth-file (loopback only) the single local user is admin. An auth file
  holds 'user:scrypt-hash:role' lines made by `kvmrpa passwd USER --role ROLE FILE`;
  plain-text passwords are refused. A non-loopback address needs --auth-file and TLS
  (--tls-cert/--tls-key) unless --insecure-http is given. Logins are limited per user
  and per client address (settings.server.login_*: a few free failures a minute, then
  an exponential delay, logged); cookies are HttpOnly, SameSite=Strict, and Secure
  with TLS.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve the dashboard in a browser (default: the simulated desktop)",
        description="Serve the kvmrpa dashboard. With no arguments: the simulated desktop "
                    "with the three scenario flows, on http://127.0.0.1:5006/.",
        epilog=SECURITY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
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
                   help="log users in from FILE's 'user:scrypt-hash:role' lines (made by "
                        "`kvmrpa passwd`; required for a non-loopback address)")
    p.add_argument("--allow-code", action="store_true",
                   help="let admins create, edit and try Python nodes from the browser "
                        "(a dashboard login is then a shell on this machine)")
    p.add_argument("--tls-cert", metavar="FILE", default=None,
                   help="serve HTTPS with this PEM certificate (chain) "
                        "(default: settings.server.tls_cert)")
    p.add_argument("--tls-key", metavar="FILE", default=None,
                   help="the certificate's PEM private key (default: settings.server.tls_key)")
    p.add_argument("--insecure-http", action="store_true",
                   help="allow plain HTTP on a non-loopback address (passwords and cookies "
                        "travel unencrypted; the page shows a warning)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--fleet", metavar="FILE", default=None,
                   help="serve the fleet dashboard of a targets file instead: a grid of "
                        "the targets (thumbnails, states, pass rates, start/stop) running "
                        "the flows of --flows on Dask (kvmrpa[fleet])")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="with --fleet: a running Dask scheduler (tcp://host:8786)")
    where.add_argument("--local", type=int, default=2, metavar="N",
                       help="with --fleet: start a LocalCluster of N worker processes (default 2)")
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
    """The roles of an auth file's accounts, by user (``ConfigError`` for a plain-text
    password, naming ``kvmrpa passwd``)."""
    return {user: acc.role for user, acc in parse_auth_file(path).items()}


def _tls_files(cert: str | None, key: str | None) -> tuple[str, str] | None:
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("--tls-cert and --tls-key go together: give both")
    import ssl

    for flag, name in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(name).is_file():
            raise ConfigError(f"{flag} {name}: not a readable file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate "
                          f"and its key ({getattr(exc, 'reason', None) or exc})") from None
    return cert, key


def default_flows_dir() -> Path | None:
    """The demo's flows: the user's copy in ``<home>/flows``, seeded with each scenario
    flow shipped in the package (``kvmrpa/sim/flows``) that is not there yet, so that
    the dashboard's Save never writes into the installed package. The package's own
    folder when the home cannot be written."""
    import shutil

    from .._settings import get_settings
    from ..sim import EXAMPLE_FLOWS, flow_path

    shipped = flow_path(EXAMPLE_FLOWS[0]).parent
    mine = get_settings().store.home_path / "flows"
    try:
        mine.mkdir(parents=True, exist_ok=True)
        for path in sorted(shipped.glob("*.json")):
            if not (mine / path.name).exists():
                tmp = mine / f".{path.name}.tmp"
                shutil.copyfile(path, tmp)
                tmp.replace(mine / path.name)
    except OSError as exc:
        log.warning("cannot copy the demo flows to %s (%s); serving the package's own",
                    mine, exc.strerror)
        return shipped
    return mine


def _port_in_use(address: str, port: int) -> bool:
    """Whether ``port`` cannot be bound on ``address`` (tested as the server binds it,
    with SO_REUSEADDR, so a port in TIME_WAIT is not reported busy)."""
    import errno

    try:
        infos = socket.getaddrinfo(address or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError:
        return False  # let the server report a bad address itself
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def run(args: argparse.Namespace) -> int:
    from .._settings import get_settings

    settings = get_settings()
    server = settings.server
    address = args.address or server.address
    port = server.port if args.port is None else args.port
    auth_file = args.auth_file or server.auth_file or None
    loopback = is_loopback(address)
    if not loopback and not auth_file:
        print(f"kvmrpa serve: refusing to serve on {address} without authentication; "
              "enable it with --auth-file FILE ('user:hash:role' lines from kvmrpa passwd) or "
              "KVMRPA_SERVER_AUTH_FILE, or bind 127.0.0.1", file=sys.stderr)
        return 2
    tls = _tls_files(args.tls_cert or server.tls_cert or None,
                     args.tls_key or server.tls_key or None)
    if not loopback and tls is None and not args.insecure_http:
        print(f"kvmrpa serve: refusing to serve on {address} over plain HTTP; give "
              "--tls-cert FILE --tls-key FILE, or --insecure-http to send passwords "
              "unencrypted", file=sys.stderr)
        return 2
    accounts = AuthFile(auth_file) if auth_file else None
    flows_dir = Path(args.flows) if args.flows else default_flows_dir()
    if flows_dir is not None and not flows_dir.is_dir():
        raise ConfigError(f"--flows {flows_dir}: not a folder")
    source = args.source or DEFAULT_SOURCE
    input_url = args.input or (source if source.startswith("sim://") else None)

    import panel as pn

    from kvmrpa.widgets import DashboardApp
    from kvmrpa.widgets._auth import AuditLog, Policy, auth_provider, configure, session_banner

    cookie_secret = server.cookie_secret or secrets.token_urlsafe(32)
    audit = AuditLog(settings.store.home_path / "audit.jsonl")
    throttle = LoginThrottle(free=server.login_attempts, window=server.login_window,
                             delay=server.login_delay, max_delay=server.login_delay_max)
    configure(Policy(accounts=accounts, allow_code=args.allow_code, audit=audit,
                     cookie_secret=cookie_secret, tls=tls is not None,
                     insecure_http=tls is None and (args.insecure_http or not loopback),
                     throttle=throttle))

    # The demo (no --flows, no --source): every scenario flow runs on the one simulated
    # desktop the live view shows. Otherwise flows keep their own URLs unless --source.
    demo = not args.flows and not args.source
    if args.fleet:
        from kvmrpa.widgets import FleetApp

        app = FleetApp.open(args.fleet, flows_dir=flows_dir, scheduler=args.scheduler,
                            local=args.local)
    else:
        app = DashboardApp(flows_dir=flows_dir, source_url=source, input_url=input_url,
                           override=bool(args.source) or demo)

    def page() -> object:
        dash = app.view()
        banner = session_banner()
        if not banner:
            return dash
        return pn.Column(pn.pane.HTML(banner, sizing_mode="stretch_width", margin=(0, 5)),
                         dash, sizing_mode="stretch_width")

    from kvmrpa.widgets._frameroute import frame_route_patterns

    origins = websocket_origins(address, port)
    # the live views' frames travel on a websocket route of their own (same auth)
    kwargs: dict[str, object] = {"cookie_secret": cookie_secret,
                                 "extra_patterns": frame_route_patterns()}
    if accounts is not None:
        kwargs["auth_provider"] = auth_provider()
    if tls is not None:
        kwargs["ssl_certfile"], kwargs["ssl_keyfile"] = tls
    scheme = "https" if tls is not None else "http"
    if tls is None and not loopback:
        log.warning("serving %s over plain HTTP (--insecure-http): passwords and session "
                    "cookies travel unencrypted", address)
        print("kvmrpa serve: WARNING: plain HTTP off loopback (--insecure-http)",
              file=sys.stderr)
    users = "local user is admin" if accounts is None else \
        f"{len(accounts.accounts())} user(s) from {auth_file}"
    if port and _port_in_use(address, port):
        print(f"kvmrpa serve: port {port} is in use; pick another with --port",
              file=sys.stderr)
        app.close()
        configure(None)
        return 2
    print(f"kvmrpa serve: dashboard at {scheme}://{address}:{port}/ "
          f"(flows: {flows_dir or 'none'}, source: {app.display_source}; {users}; "
          f"code nodes from the browser: {'admins' if args.allow_code else 'off'}; "
          f"audit: {audit.path})", file=sys.stderr, flush=True)
    try:
        pn.serve(page, address=address, port=port, websocket_origin=origins,
                 show=args.show, start=True, title="kvmrpa", verbose=False,
                 **kwargs)  # our own line above says where
    finally:
        configure(None)
        app.close()
        audit.flush()  # count the last coalesced console lines and refusals
    return 0

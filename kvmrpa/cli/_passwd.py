"""``kvmrpa passwd``: create or update a dashboard account (``user:hash:role``) in an
auth file, with a salted scrypt hash of the password (prompted, or read from stdin)."""

from __future__ import annotations

import argparse
import getpass
import sys

from .._auth import ROLES, set_account
from .._errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "passwd", help="set a dashboard user's password and role in an auth file",
        description="Create or update USER's line in FILE ('user:scrypt-hash:role'), the "
                    "auth file `kvmrpa serve --auth-file FILE` reads. Roles, weakest first: "
                    "viewer (watch), operator (run, stop, pause, console mode), editor (edit "
                    "and save flows, save templates), admin (everything; Python nodes only "
                    "on a server started with --allow-code). The file is replaced "
                    "atomically; other lines are kept.")
    p.add_argument("user", metavar="USER", help="the user name (no ':')")
    p.add_argument("file", metavar="FILE", help="the auth file (created if missing, mode 0600)")
    p.add_argument("--role", choices=ROLES, default=None,
                   help="the user's role (required for a new user; default: keep it)")
    p.add_argument("--stdin", action="store_true",
                   help="read the password from the first line of stdin instead of prompting")
    p.set_defaults(func=run)


def _read_password(args: argparse.Namespace) -> str:
    if args.stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        try:
            password = getpass.getpass(f"password for {args.user}: ")
            again = getpass.getpass("again: ")
        except EOFError:
            raise ConfigError("no password given (use --stdin to pipe one)") from None
        if password != again:
            raise ConfigError("the passwords differ; nothing changed")
    if not password:
        raise ConfigError("the password is empty; nothing changed")
    return password


def run(args: argparse.Namespace) -> int:
    password = _read_password(args)
    role = set_account(args.file, args.user, password, args.role)
    print(f"kvmrpa passwd: {args.user} ({role}) set in {args.file}", file=sys.stderr)
    return 0

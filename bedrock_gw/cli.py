"""``bedrock-gw``: run the daemon, check a config file, or print usage per key."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bedrock_gw import __version__
from bedrock_gw.config import ConfigError, Settings, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bedrock-gw", description="OpenAI-compatible gateway to Amazon Bedrock"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=_default_config(),
        help="TOML config file (default: $BEDROCK_GW_CONFIG; every key may also come from "
        "BEDROCK_GW_<SECTION>__<KEY> variables)",
    )
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    check.add_argument("config_path", nargs="?", type=Path, help=argparse.SUPPRESS)
    usage = commands.add_parser(
        "usage",
        help="print usage and estimated cost per key",
        description="Usage per key and model (or user, or day) from the daemon's usage store.",
    )
    usage.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    usage.add_argument(
        "--since",
        help="today, month (the default: this UTC month), 90m, 24h, 7d, or an ISO date/time",
    )
    usage.add_argument("--key", help="only this key name")
    usage.add_argument(
        "--by", choices=("model", "user", "day"), default="model", help="second column"
    )
    usage.add_argument(
        "--database",
        type=Path,
        help="the usage.sqlite3 file (default: from [usage] directory, $STATE_DIRECTORY, "
        f"else {_PACKAGED_DATABASE})",
    )
    return parser


# Where the packaged unit (StateDirectory=bedrock-gw) keeps it, for an admin's shell.
_PACKAGED_DATABASE = Path("/var/lib/bedrock-gw/usage.sqlite3")


def _default_config() -> Path | None:
    value = os.environ.get("BEDROCK_GW_CONFIG")
    return Path(value) if value else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        path = getattr(args, "config_path", None) or args.config
        return _check_config(path)
    if args.command == "usage":
        return _usage(args)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        _print_problems(error)
        return 1
    from bedrock_gw.logs import configure_logging
    from bedrock_gw.server import run

    configure_logging(settings.logging)
    # The path is kept: SIGHUP (systemctl reload) reads the same file again.
    return run(settings, config_path=args.config)


def _check_config(path: Path | None) -> int:
    if path is None:
        print("check-config: give the file with --config PATH", file=sys.stderr)
        return 2
    try:
        settings: Settings = load_settings(path)
    except ConfigError as error:
        _print_problems(error)
        return 1
    print(f"{path}: OK ({len(settings.auth.api_keys)} inline API keys)")
    return 0


def _print_problems(error: ConfigError) -> None:
    print(f"{error.source}: invalid configuration", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def _usage(args: argparse.Namespace) -> int:
    from bedrock_gw.governance.report import format_report, parse_since
    from bedrock_gw.governance.usage_store import report, usage_database

    database: Path | None = args.database
    if database is None:
        try:
            settings = load_settings(args.config)
        except ConfigError as error:
            _print_problems(error)
            return 1
        database = usage_database(settings, os.environ) or _PACKAGED_DATABASE
    try:
        since = parse_since(args.since, time.time())
    except ValueError as error:
        print(f"usage: {error}", file=sys.stderr)
        return 2
    try:
        rows = report(database, since=since, key=args.key, by=args.by)
    except (OSError, sqlite3.Error) as error:
        print(f"usage: cannot read {database}: {error}", file=sys.stderr)
        return 1
    print(format_report(rows, by=args.by, since=since))
    return 0

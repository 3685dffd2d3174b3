"""``bedrock-gw``: run the daemon, or check a config file."""

from __future__ import annotations

import argparse
import os
import sys
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
    return parser


def _default_config() -> Path | None:
    value = os.environ.get("BEDROCK_GW_CONFIG")
    return Path(value) if value else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        path = getattr(args, "config_path", None) or args.config
        return _check_config(path)
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

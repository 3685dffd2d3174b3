"""Run the benchmark: ``python -m bench`` (or ``python bench/run.py``); ``--help`` for options.

Starts the fake Bedrock and the gateway as separate processes on 127.0.0.1, waits until the
gateway serves, runs the load generator in a third process, stops everything, prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.report import Machine, render

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"  # on demand, streaming, in the fake's catalogue


def _concurrency(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive client counts, e.g. 1,16")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the gateway against the fake Bedrock, on this machine.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about 30 s: one short round, a shorter hold of the slow streams",
    )
    parser.add_argument("--rounds", type=int, help="rounds per cell; medians are shown (3)")
    parser.add_argument("--duration", type=float, help="seconds per cell and round (3)")
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=(1, 16),
        help="client counts, comma-separated (1,16)",
    )
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per target and mode (1)")
    parser.add_argument(
        "--streams",
        type=int,
        default=500,
        help="slow streams held open at once through the gateway; 0 skips (500)",
    )
    parser.add_argument(
        "--stream-delay",
        type=float,
        default=0.5,
        help="seconds between the fake's events in the slow streams (0.5)",
    )
    parser.add_argument(
        "--stream-hold",
        type=float,
        help="seconds all slow streams are held open while RSS is sampled (8)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="the gateway's aws.max_connections (default: --streams + 64, at least 256)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.duration = args.duration or (1.5 if quick else 3.0)
    args.warmup = args.warmup or (0.5 if quick else 1.0)
    args.stream_hold = args.stream_hold or (3.0 if quick else 8.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    except procs.ChildFailed as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    # Each slow stream costs a socket in the load generator and two in the gateway.
    fd_limit = procs.raise_fd_limit(3 * args.streams + 1024)
    # Other work on the machine skews every figure; the header shows how busy it was.
    load_before = os.getloadavg()[0]
    api_key = f"bench-{secrets.token_hex(8)}"
    with tempfile.TemporaryDirectory(prefix="bedrock-gw-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        fake, fake_url = procs.start_fake(workdir)
        stack.callback(fake.stop)
        # The pool to Bedrock must admit every slow stream at once (the default is 256).
        max_connections = args.max_connections or max(256, args.streams + 64)
        gateway, gateway_url = procs.start_gateway(workdir, fake_url, api_key, max_connections)
        stack.callback(gateway.stop)
        procs.wait_until_serving(gateway, gateway_url, api_key, MODEL)
        print(
            f"fake Bedrock at {fake_url}, gateway at {gateway_url} (pid {gateway.pid}); "
            f"fd limit {fd_limit}; gateway aws.max_connections {max_connections}",
            file=sys.stderr,
            flush=True,
        )
        plan = {
            "gateway": gateway_url,
            "fake": fake_url,
            "api_key": api_key,
            "model": MODEL,
            "gateway_pid": gateway.pid,
            "fake_pid": fake.pid,
            "rounds": args.rounds,
            "duration": args.duration,
            "concurrency": list(args.concurrency),
            "warmup": args.warmup,
            "streams": args.streams,
            "stream_delay": args.stream_delay,
            "stream_hold": args.stream_hold,
            "stream_ramp_timeout": 30.0,
            "stream_open_parallel": 64,
        }
        loader = subprocess.run(
            [sys.executable, "-m", "bench.load"],
            input=json.dumps(plan).encode(),
            stdout=subprocess.PIPE,
            cwd=procs.REPO_ROOT,
            env=procs.child_environ(),
            check=False,
            timeout=600,
        )
        gateway_loop = "uvloop" if procs.uses_uvloop(gateway.pid) else "asyncio"
        gateway.check_alive()
        if loader.returncode != 0:
            print(f"the load generator failed (status {loader.returncode})", file=sys.stderr)
            print(f"gateway log tail:\n{gateway.tail()}", file=sys.stderr)
            return 1
    result = json.loads(loader.stdout)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    machine = Machine(
        python=platform.python_version(),
        gateway_loop=gateway_loop,
        load_loop=result["load_loop"],
        cores=os.cpu_count() or 0,
        load_before=load_before,
        rounds=args.rounds,
        duration=args.duration,
    )
    print(render(result, machine, args.concurrency), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

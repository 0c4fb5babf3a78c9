"""Run a build of the demo app as its own process, or seed both databases.

    python -m shadow.demo.apps seed      --db demo.sqlite3 --dsn postgresql://...
    python -m shadow.demo.apps coach     --port 5103 --delay 0.5 3
    python -m shadow.demo.apps legacy    --port 5101 --db demo.sqlite3 --coach http://127.0.0.1:5103
    python -m shadow.demo.apps candidate --port 5102 --dsn postgresql://... --bugs all \
                                         --coach http://127.0.0.1:5103

The legacy build keeps its achievements next to `--db` (`demo-achievements.sqlite3`).

Both builds must share the session secret (`--secret`, or the environment variable
SHADOW_DEMO_SECRET, else the demo's built-in secret) so that their cookies are valid on
each other. The app factories are `make_legacy_app` and `make_candidate_app`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from .auth import DEMO_SECRET, SessionCodec
from .bugs import BUG_NAMES, UnknownBug, parse_bugs
from .candidate import make_candidate_app
from .coach import make_coach_app
from .legacy import make_legacy_app
from .seed import seed

__all__ = ["main", "make_candidate_app", "make_legacy_app", "run_candidate", "run_legacy"]

SECRET_ENV = "SHADOW_DEMO_SECRET"


def _sessions(secret: str | None) -> SessionCodec:
    value = secret or os.environ.get(SECRET_ENV)
    return SessionCodec(secret=value.encode() if value else DEMO_SECRET)


def run_legacy(host: str, port: int, db_path: str | Path, *, secret: str | None = None,
               coach_url: str | None = None) -> None:
    """Serve the legacy build on host:port until interrupted."""
    app = make_legacy_app(db_path, sessions=_sessions(secret), coach_url=coach_url)
    web.run_app(app, host=host, port=port,
                print=lambda text: print(f"legacy: {text}", flush=True))


def run_candidate(host: str, port: int, dsn: str, bugs: str | None = None, *,
                  secret: str | None = None, coach_url: str | None = None) -> None:
    """Serve the candidate build on host:port until interrupted; `bugs` as in
    `shadow.demo.bugs.parse_bugs`."""
    app = make_candidate_app(dsn, bugs, sessions=_sessions(secret), coach_url=coach_url)
    web.run_app(app, host=host, port=port,
                print=lambda text: print(f"candidate: {text}", flush=True))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shadow.demo.apps",
                                     description="Run one build of the demo app.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("legacy", "candidate"):
        cmd = sub.add_parser(name, help=f"serve the {name} build")
        cmd.add_argument("--host", default="127.0.0.1")
        cmd.add_argument("--port", type=int, required=True)
        cmd.add_argument("--secret", help=f"session secret (default: ${SECRET_ENV})")
        cmd.add_argument("--coach", help="base URL of the AI coach (none: the slow route "
                                         "answers 503)")
        if name == "legacy":
            cmd.add_argument("--db", required=True, help="SQLite file")
        else:
            cmd.add_argument("--dsn", required=True, help="PostgreSQL DSN")
            cmd.add_argument("--bugs", default="none",
                             help=f"all, none, or a comma list of: {', '.join(sorted(BUG_NAMES))}")
    cmd = sub.add_parser("coach", help="serve the AI coach stand-in")
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, required=True)
    cmd.add_argument("--delay", type=float, nargs=2, default=(0.5, 3.0),
                     metavar=("LOW", "HIGH"), help="seconds each reply waits")
    cmd = sub.add_parser("seed", help="write the same starting data into both databases")
    cmd.add_argument("--db", help="SQLite file")
    cmd.add_argument("--dsn", help="PostgreSQL DSN")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "seed":
        if not (args.db or args.dsn):
            print("seed: give --db, --dsn or both", file=sys.stderr)
            return 2
        asyncio.run(seed(args.db, args.dsn))
        done = [f"SQLite file {args.db}"] if args.db else []
        done += ["the PostgreSQL database"] if args.dsn else []
        print(f"seeded {' and '.join(done)}")
        return 0
    if args.command == "coach":
        web.run_app(make_coach_app(tuple(args.delay)), host=args.host, port=args.port,
                    print=lambda text: print(f"coach: {text}", flush=True))
        return 0
    if args.command == "legacy":
        run_legacy(args.host, args.port, args.db, secret=args.secret, coach_url=args.coach)
        return 0
    try:
        parse_bugs(args.bugs)
    except UnknownBug as exc:
        print(f"--bugs: {exc}", file=sys.stderr)
        return 2
    run_candidate(args.host, args.port, args.dsn, args.bugs, secret=args.secret,
                  coach_url=args.coach)
    return 0


if __name__ == "__main__":
    sys.exit(main())

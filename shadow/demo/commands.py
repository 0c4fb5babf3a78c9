"""The `shadow demo` and `shadow traffic` commands."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from shadow.demo.bugs import BUG_NAMES, UnknownBug, parse_bugs


@click.command("demo")
@click.option("--duration", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="Seconds of traffic.")
@click.option("--bugs", default="all", show_default=True,
              help=f"Bugs of the candidate build: all, none, or a comma list of {', '.join(BUG_NAMES)}.")
@click.option("--users", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="Proxy address.")
@click.option("--admin-listen", default="127.0.0.1:8081", show_default=True,
              help="Admin address (API, /metrics, mismatch browser).")
@click.option("--think", type=click.FloatRange(min=0), default=None,
              help="Seconds each group of users pauses between actions, on average  "
                   "[default: 0.05; 0: back to back, a load test]")
@click.option("--keep-running", is_flag=True, help="After the summary, keep everything up until Ctrl-C.")
def demo(duration: float, bugs: str, users: int, listen: str, admin_listen: str,
         think: float | None, keep_running: bool) -> None:
    """Run the legacy and candidate demo builds behind the proxy and summarise what differs."""
    from shadow import logs
    from shadow.cli import run_loop
    from shadow.demo.runner import THINK, PortBusy, run_demo

    logs.setup("warning")
    try:
        parse_bugs(bugs)
    except UnknownBug as exc:
        raise click.BadParameter(str(exc), param_hint="--bugs") from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # run_demo watches `stop` itself, so its clean-up always runs to the end.
        await run_demo(duration=duration, bugs=bugs, users=users, listen=listen,
                       admin_listen=admin_listen, keep_running=keep_running,
                       think=THINK if think is None else think,
                       say=lambda line: click.echo(line), until=stop)

    try:
        run_loop(main())
    except PortBusy as exc:
        click.echo(f"shadow demo: {exc}", err=True)
        sys.exit(2)


@click.command("traffic")
@click.option("--target", required=True, help="Base URL to send traffic to (only this one).")
@click.option("--users", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--duration", type=click.FloatRange(min=0.1), default=None, help="Seconds.")
@click.option("--requests", "requests_", type=click.IntRange(min=1), default=None,
              help="Stop after this many requests.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixed seed: same flows.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Groups of users sending at the same time (1: one request at a time, "
                   "the same sequence for the same seed).")
@click.option("--think", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds each group pauses between actions, on average (0: back to back).")
def traffic(target: str, users: int, duration: float | None, requests_: int | None,
            seed: int, concurrency: int, think: float) -> None:
    """Drive realistic user flows (register, log in with CSRF, write, read back, search,
    message, ask the slow AI coach)."""
    from shadow.demo.traffic import run_traffic

    if duration is None and requests_ is None:
        raise click.UsageError("give --duration or --requests (or both)")
    try:
        report = asyncio.run(run_traffic(target, users=users, requests=requests_,
                                         duration=duration, seed=seed,
                                         concurrency=concurrency, think=think))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(report.format())
    sys.exit(1 if report.errors else 0)


COMMANDS = [demo, traffic]

"""The `shadow` command.

    shadow run -c FILE            run the proxy (and its admin listener)
    shadow check-config FILE      validate a config, print every problem, exit 2 if any
    shadow demo                   the whole idea on an embedded pair of apps
    shadow traffic ...            drive realistic traffic at one URL

Exit codes: 0 done (`run`: stopped by SIGTERM or SIGINT), 1 refused (e.g. by the cutover
gate) or an unexpected crash, 2 usage, config, connection or start-up error (`run` prints
one line, `shadow: cannot start: ...`, and exits within a second).
"""

from __future__ import annotations

import asyncio
import sys

import click

from shadow import __version__, logs
from shadow.config import ConfigError, load_config


def _load(path: str):
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
        sys.exit(2)


def run_loop(coro) -> None:
    """Run a coroutine on uvloop when available (the proxy's hot path is loop-bound)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(coro)
        return
    uvloop.run(coro)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shadow")
def main() -> None:
    """shadow: send every request to the legacy and the candidate build, serve the
    primary's reply, and compare what both answered and wrote."""


@main.command("run")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML configuration file.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log line format (default: the config's log.format).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default=None, help="Log level (default: the config's log.level).")
def run_command(config_path: str, log_format: str | None, log_level: str | None) -> None:
    """Run the proxy until SIGINT or SIGTERM."""
    from shadow.app import StartError, run_forever
    from shadow.privacy import PrivacyKeyError

    config = _load(config_path)
    logs.setup(log_level or config.log.level, log_format or config.log.format)
    try:
        run_loop(run_forever(config))
    except (StartError, PrivacyKeyError) as exc:
        click.echo(f"shadow: cannot start: {exc}", err=True)
        sys.exit(2)


@main.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def check_config(config_path: str) -> None:
    """Validate a configuration file and report every problem at once."""
    config = _load(config_path)
    click.echo(f"{config_path}: ok (mode {config.mode}, {len(config.routes)} routes, "
               f"row verification {'on' if config.rows_enabled else 'off'})")


def register(command: click.Command) -> None:
    main.add_command(command)


from shadow import commands as _commands  # noqa: E402  (subcommands of other modules)

_commands.register_all(main)

if __name__ == "__main__":  # pragma: no cover
    main()

"""Subcommands contributed by other modules (demo, traffic, rows, cutover), attached to
the `shadow` group here so that `shadow.cli` stays one screen long. A module whose
optional dependencies are missing simply contributes nothing."""

from __future__ import annotations

import importlib

import click

_PROVIDERS = ("shadow.cutover_cli", "shadow.findings_cli", "shadow.routes_cli",
              "shadow.noise_cli", "shadow.demo.commands", "shadow.rows.cli",
              "shadow.privacy.cli")


def register_all(group: click.Group) -> None:
    for module_name in _PROVIDERS:
        module = importlib.import_module(module_name)
        for command in module.COMMANDS:
            group.add_command(command)

"""`shadow routes`: the route templates a running proxy names its traffic by.

Configured templates (`[[routes]]`) come first; then the templates learned from traffic,
most used first, with how many requests each named. A learned template is pinned or
renamed by adding it to `[[routes]]` (e.g. `/api/users/{user}/records` for a learned
`/api/users/{param}/records`). Talks to the admin API like the cutover commands.
"""

from __future__ import annotations

import click
import orjson

from shadow.cutover_cli import _Admin, _common


@click.command("routes")
@_common
def routes_command(admin: _Admin) -> None:
    """List configured route templates and those learned from traffic."""
    answer = admin.call("GET", "/api/routes")
    if admin.as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"configured ({len(answer['configured'])})")
    for template in answer["configured"]:
        click.echo(f"  {template}")
    learned = answer["learned"]
    click.echo(f"learned ({len(learned)} of at most {answer['max_learned']}; "
               "unknown shapes are named {other})")
    for route in learned:
        click.echo(f"  {route['hits']:>10}  {route['template']}")


COMMANDS = [routes_command]

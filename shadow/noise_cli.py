"""`shadow noise`: what A/A calibration learnt, and the operator's word on it.

    shadow noise list                                  routes, calibration, learnt places
                                                       (route `*`: values fresh per reply)
    shadow noise accept ROUTE PATH --reason T          keep hiding it (audit-logged)
    shadow noise reject ROUTE PATH --reason T          compare it again (audit-logged)

ROUTE is `METHOD /template` as listed. Talks to a running proxy like the cutover commands.
"""

from __future__ import annotations

import click
import orjson

from shadow.cutover_cli import _Admin, _common


@click.group("noise")
def noise_group() -> None:
    """What varies by itself in the primary's own replies (learnt, accepted, rejected)."""


@noise_group.command("list")
@_common
def list_command(admin: _Admin) -> None:
    """Routes, how many A/A pairs each has, and the places that varied."""
    answer = admin.call("GET", "/api/noise")
    if admin.as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    if not answer["routes"]:
        click.echo("no A/A pairs yet: calibration needs safe requests (GET, HEAD) to arrive")
    for route in answer["routes"]:
        if route.get("how") == "fresh":
            click.echo(f"{route['route']}  every route: values drawn fresh per reply")
            for place in route["places"]:
                click.echo(f"    {place['state']:<9} {place['path']}  ({place['evidence']}; "
                           + (f"hides it, {place['hidden']} hidden)" if place["hiding"]
                              else "not hidden)"))
            continue
        state = (f"calibrating ({route['pairs']} of {answer['min_pairs']} pairs)"
                 if route["calibrating"] else f"{route['pairs']} pairs")
        click.echo(f"{route['route']}  {state}"
                   + (f", status varied {route['unstable_status']}x" if route["unstable_status"]
                      else ""))
        for place in route["places"]:
            click.echo(f"    {place['state']:<9} {place['path']}  ({place['kind']}, varied in "
                       f"{place['varied']} of {route['pairs']} pairs; "
                       + (f"hides it, {place['hidden']} hidden)" if place["hiding"]
                          else "not hidden)"))


def _decide(state: str):
    @_common
    def command(admin: _Admin, route: str, path: str, reason: str) -> None:
        answer = admin.call("POST", "/api/noise",
                            {"route": route, "path": path, "state": state, "reason": reason})
        if admin.as_json:
            click.echo(orjson.dumps(answer).decode())
        else:
            click.echo(f"{answer['state']}: {route} {answer['path']}")

    command = click.option("--reason", required=True, help="Why; kept in the audit log.")(command)
    command = click.argument("path")(command)
    return click.argument("route")(command)


noise_group.command("accept", help="Keep hiding a learnt place (audit-logged).")(_decide("accepted"))
noise_group.command("reject", help="Compare a learnt place again (audit-logged).")(_decide("rejected"))

COMMANDS = [noise_group]

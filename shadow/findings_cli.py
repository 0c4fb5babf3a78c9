"""The findings commands: they talk to a running proxy's admin API.

    shadow findings [--state S] [--route T] [--method M] [--kind K] [--table T]
                    [--version V] [--search TEXT] [--limit N] [--check] [--json]
    shadow triage ID --state STATE --reason TEXT
    shadow candidate-version [VERSION --reason TEXT]

Exit codes: 0 done; 1 with `--check` when any finding listed still blocks the gate (new,
acknowledged or fixed); 2 usage, refused change (unknown finding, no reason) or
connection error. `--admin`, `--token-env` and `--json` work as for the cutover commands.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import click
import orjson

from shadow.cutover_cli import _Admin, _common
from shadow.findings.group import KINDS
from shadow.findings.triage import STATES, blocks


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _dump(data) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@click.command("findings")
@click.option("--state", type=click.Choice(STATES), help="Only findings in this state.")
@click.option("--route", help="Only this route template, e.g. /api/moods/{id}.")
@click.option("--method", help="Only this method.")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind of cause.")
@click.option("--table", help="Only row findings of this table.")
@click.option("--version", "version", help="Only findings seen under this candidate version.")
@click.option("--search", default="", help="Text in the cause, route or signature paths.")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 when a finding listed blocks the gate.")
@_common
def findings_command(admin: _Admin, state, route, method, kind, table, version, search,
                     limit: int, check: bool) -> None:
    """List findings (one cause on one route each), most frequent first."""
    params = {k: v for k, v in (("state", state), ("route", route), ("method", method),
                                ("kind", kind), ("table", table), ("version", version),
                                ("q", search), ("limit", str(limit))) if v}
    answer = admin.call("GET", "/api/findings?" + urlencode(params))
    rows = answer["findings"]
    if admin.as_json:
        _dump(answer)
    else:
        click.echo(f"{answer['total']} finding(s)" + (f", {len(rows)} shown" if len(rows) <
                                                     answer["total"] else ""))
        for r in rows:
            versions = ",".join(v["version"] for v in r["versions"] if v["version"])
            click.echo(f"#{r['id']:<5} {r['state']:<12} {r['count']:>7}x  {r['method']} "
                       f"{r['route']}  {r['kind']} {r['what']}")
            extra = [f"{r['signature_count']} signatures", f"{r['samples']} samples",
                     f"last {_when(r['last_seen'])} UTC"]
            if versions:
                extra.append(f"versions {versions}")
            if r["caused_by_ids"]:
                extra.append("probably caused by " + ", ".join(f"#{c}" for c in r["caused_by_ids"]))
            if r["reason"]:
                extra.append(f"reason: {r['reason']}")
            click.echo("        " + " · ".join(extra))
    if check and any(blocks(r["state"]) for r in rows):
        raise SystemExit(1)


@click.command("triage")
@click.argument("finding", type=click.IntRange(min=1))
@click.option("--state", required=True, type=click.Choice(STATES))
@click.option("--reason", required=True, help="Why; kept in the audit log.")
@_common
def triage_command(admin: _Admin, finding: int, state: str, reason: str) -> None:
    """Set a finding's state (needs the admin token)."""
    if not reason.strip():
        raise click.UsageError("--reason must say why")
    answer = admin.call("POST", f"/api/findings/{finding}/state",
                        {"state": state, "reason": reason})
    if admin.as_json:
        _dump(answer)
        return
    click.echo(f"#{answer['id']} {answer['key']}: {answer['state']} ({answer['reason']})")
    if answer.get("rule"):
        click.echo("proposed ignore rule (add it to the config to confirm):")
        click.echo(answer["rule"])


@click.command("candidate-version")
@click.argument("version", required=False)
@click.option("--reason", default="", help="Why; kept in the audit log.")
@_common
def candidate_version_command(admin: _Admin, version: str | None, reason: str) -> None:
    """Show, or set (needs the admin token), the candidate's build version used when its
    replies carry no version header."""
    if version is None:
        answer = admin.call("GET", "/api/candidate-version")
    else:
        answer = admin.call("POST", "/api/candidate-version",
                            {"version": version, "reason": reason})
    if admin.as_json:
        _dump(answer)
        return
    header = f" (replies' {answer['header']} header first)" if answer.get("header") else ""
    click.echo(f"candidate version {answer['version'] or 'not set'}{header}")


COMMANDS = [findings_command, triage_command, candidate_version_command]

"""The cutover commands: they talk to a running proxy's admin API.

    shadow status                          mode, roles, gate, rollback safety, rows
    shadow resume [--reason T]             legacy-only -> shadow (mirroring again)
    shadow cutover [--force --reason T]    shadow -> cutover (gated)
    shadow finalize [--force --reason T]   cutover -> candidate-only (gated); from shadow
                    [--skip-cutover]       only with --skip-cutover and a reason
    shadow rollback [--to MODE]            one step back toward legacy; never gated;
                                           from shadow only with --to legacy-only
    shadow gate [--reset --reason T]       the gate's answer (exit 1 when it refuses)
    shadow audit [--limit N]               the audit log, newest first

`--admin URL` (or $SHADOW_ADMIN_URL) names the admin listener; mutating commands send the
token held in the environment variable named by `--token-env` (default
$SHADOW_ADMIN_TOKEN). Output is a readable table, or the API's JSON with `--json`.
Exit codes: 0 done, 1 refused by the gate, 2 usage, a move the mode does not allow, or
a connection error.
"""

from __future__ import annotations

import functools
import os
import time
import urllib.error
import urllib.request
from typing import Any

import click
import orjson

from shadow.modes import Mode, is_forward
from shadow.recheck import raced_said

DEFAULT_ADMIN = "http://127.0.0.1:8081"
_BACK = {Mode.CANDIDATE_ONLY: Mode.SHADOW, Mode.CUTOVER: Mode.SHADOW}


class _Admin:
    """One admin API endpoint. Every failure ends the command with exit code 2 (or 1 for
    the gate's refusal) after printing why."""

    def __init__(self, url: str, token_env: str, as_json: bool,
                 viewer_env: str = "SHADOW_VIEWER_TOKEN") -> None:
        self.url = url.rstrip("/")
        self.token_env = token_env
        self.viewer_env = viewer_env
        self.as_json = as_json

    def call(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if method == "POST":
            token = os.environ.get(self.token_env)
            if not token:
                _fail(f"set ${self.token_env} to the admin token first", 2)
            headers["Authorization"] = f"Bearer {token}"
            headers["Content-Type"] = "application/json"
            data = orjson.dumps(body or {})
        else:
            token = os.environ.get(self.viewer_env) or os.environ.get(self.token_env)
            if token:
                headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            _fail(f"cannot reach the admin API at {self.url}: {reason}", 2)
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = {"error": f"http_{status}", "message": raw.decode("utf-8", "replace")[:200]}
        if self.as_json:
            click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        elif status == 409:
            click.echo("refused by the cutover gate:", err=True)
            for reason in answer.get("reasons", []):
                click.echo(f"  - {reason}", err=True)
        else:
            click.echo(f"error {status}: {answer.get('message', answer)}", err=True)
        raise SystemExit(1 if status == 409 else 2)


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    raise SystemExit(code)


def _refuse(admin: _Admin, message: str) -> None:
    """A move the current mode does not allow: exit 2 with why (as JSON with --json)."""
    if admin.as_json:
        click.echo(orjson.dumps({"error": "refused", "message": message}).decode())
        raise SystemExit(2)
    _fail(message, 2)


def _common(command):
    """Options every cutover command takes; passes an `_Admin` as `admin`."""

    @click.option("--admin", "url", envvar="SHADOW_ADMIN_URL", default=DEFAULT_ADMIN,
                  show_default=True, help="Admin API base URL (env SHADOW_ADMIN_URL).")
    @click.option("--token-env", default="SHADOW_ADMIN_TOKEN", show_default=True,
                  help="Environment variable holding the admin token.")
    @click.option("--viewer-token-env", default="SHADOW_VIEWER_TOKEN", show_default=True,
                  help="Environment variable holding the read-only token (reads; the admin "
                       "token is used when it is unset).")
    @click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
    @functools.wraps(command)
    def wrapper(url: str, token_env: str, viewer_token_env: str, as_json: bool, **kwargs):
        return command(admin=_Admin(url, token_env, as_json, viewer_token_env), **kwargs)

    return wrapper


def _show_status(admin: _Admin, status: dict[str, Any]) -> None:
    if admin.as_json:
        click.echo(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
        return

    def who(side: dict | None) -> str:
        return "none" if side is None else f"{side['backend']} ({side['label']})"

    gate, rollback, mirror = status["gate"], status["rollback"], status["mirror"]
    click.echo(f"mode      {status['mode']}   primary {who(status['primary'])}, "
               f"shadow {who(status['shadow'])}")
    _show_gate(gate)
    click.echo(f"rollback  {rollback['summary']}")
    for route, n in rollback["routes"].items():
        click.echo(f"          {route}: {n}")
    click.echo(f"mirror    {mirror['depth']} queued, {mirror['busy']} in flight, "
               f"shadow {mirror.get('lag_seconds', 0.0):.3f} s behind the primary")
    held = status.get("counts", {}).get("held")
    if held:
        click.echo(f"held      {held} comparison(s) differing only where values drawn fresh "
                   "per reply are still being learnt")
    show_rechecks(status.get("counts", {}).get("rechecks"))
    writes = status.get("writes", {})
    pending = writes.get("shadow_pending")
    if pending is not None:
        click.echo(f"writes    {pending} shadow write(s) not yet done on the shadow")
    if writes.get("waits_expired"):
        click.echo(f"          {writes['waits_expired']} shadow request(s) let go at the key "
                   "wait's bound, before the key pairs they may need were learnt")
    show_attribution(writes)
    show_rows(status.get("rows", {}))


def show_rechecks(rechecks: dict[str, Any] | None) -> None:
    """How the rechecks of mismatched reads that raced writes ended, and the reads
    recorded raced, unverified (nothing before any)."""
    if not rechecks:
        return
    if any(rechecks.get(k) for k in ("held", "race", "confirmed", "unsettled")):
        click.echo(f"rechecks  {rechecks['race']} race(s) (both builds agreed when asked again; "
                   f"the reads had overlapped {rechecks['race_writes']} write(s)), "
                   f"{rechecks['confirmed']} confirmed, {rechecks['unsettled']} unsettled, "
                   f"{rechecks['held']} waiting")
    if rechecks.get("raced"):
        click.echo(f"raced     {raced_said(rechecks)}; see the gate's raced column")


def show_attribution(writes: dict[str, Any]) -> None:
    """How writes' rows were attributed: the share compared alone, and outside writes."""
    if "writes_exact" not in writes:
        return
    exact, grouped = writes["writes_exact"], writes["writes_grouped"]
    share = writes.get("exact_share")
    click.echo(f"          rows of {exact + grouped} write(s) compared: {exact} exactly, "
               f"{grouped} in groups" + (f" ({share:.0%} exact)" if share is not None else ""))
    outside = writes.get("outside", {})
    if outside.get("total"):
        tables = "; ".join(f"{backend}: " + ", ".join(f"{t} {n}" for t, n in counts.items())
                           for backend, counts in outside.get("by_backend", {}).items())
        click.echo(f"          {outside['total']} outside write(s), charged to no route ({tables})")


def show_rows(rows: dict[str, Any]) -> None:
    """The row-state lines of `shadow status` (and of `shadow rows resync`)."""
    if not rows.get("enabled"):
        click.echo("rows      not verified (no database on both backends)")
        return
    if rows.get("diverged"):
        click.echo(f"rows      DIVERGED: {rows['diverged']}")
        click.echo("          rows cannot match until the data is re-copied and "
                   "`shadow rows resync --reason T` is run")
    else:
        click.echo(f"rows      in step; {rows.get('keymap_size', 0)} key pair(s) remembered")
    for backend, capture in rows.get("capture", {}).items():
        for problem in capture.get("problems", []):
            click.echo(f"          {backend}: {problem}")


def _show_gate(gate: dict[str, Any]) -> None:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(gate["since"]))
    click.echo(f"gate      {'holds' if gate['passed'] else 'refuses'}   window since {since} UTC,"
               f" {gate['compared']} compared, {gate['mismatches']} mismatches, "
               f"{gate.get('raced', 0)} raced (unverified), {gate['shadow_errors']} shadow errors")
    if gate["routes"]:
        width = max(len(r["route"]) for r in gate["routes"])
        click.echo(f"          {'route':<{width}}  {'compared':>9} {'mismatches':>10} "
                   f"{'raced':>7} {'upper bound':>11} {'still needed':>12}")
        for r in gate["routes"]:
            click.echo(f"          {r['route']:<{width}}  {r['compared']:>9} {r['mismatches']:>10} "
                       f"{r.get('raced', 0):>7} {r['upper_bound'] * 100:>10.3g}% "
                       f"{r['compared_needed']:>12}")
    for reason in gate["reasons"]:
        click.echo(f"          - {reason}")
    findings = gate.get("findings") or {}
    for word, key in (("counted", "counted"), ("not counted", "uncounted")):
        for f in findings.get(key, ()):
            number = f"#{f['id']} " if f.get("id") else ""
            click.echo(f"          {word}: {number}{f['finding']} ({f['exchanges']} exchanges; "
                       f"{f['why']})")


def _move(admin: _Admin, mode: str, force: bool, reason: str | None, skip: bool = False) -> None:
    if force and not reason:
        raise click.UsageError("--force needs --reason TEXT")
    answer = admin.call("POST", "/api/mode", {"mode": mode, "force": force, "skip": skip,
                                              "reason": reason or ""})
    if not admin.as_json:
        change = answer["change"]
        notes = [f"skipped {', '.join(change['skipped'])}"] if change.get("skipped") else []
        notes += ["forced past the gate"] if change["forced"] else []
        click.echo(f"mode changed: {change['from']} -> {change['to']}"
                   + (f" ({'; '.join(notes)})" if notes else ""))
    _show_status(admin, answer)


def _current(admin: _Admin) -> Mode:
    return Mode(admin.call("GET", "/api/status")["mode"])


@click.command("status")
@_common
def status_command(admin: _Admin) -> None:
    """Show the mode, the gate, rollback safety, the mirror lane and the rows."""
    _show_status(admin, admin.call("GET", "/api/status"))


@click.command("resume")
@click.option("--reason", help="Why; kept in the audit log.")
@_common
def resume_command(admin: _Admin, reason: str | None) -> None:
    """Mirror to the candidate again (legacy-only -> shadow); never gated. Writes made in
    legacy-only did not reach the candidate: its rows stay diverged until a resync."""
    current = _current(admin)
    if current != Mode.LEGACY_ONLY:
        _refuse(admin, f"resume moves legacy-only -> shadow; the mode is {current}")
    _move(admin, str(Mode.SHADOW), False, reason)


@click.command("cutover")
@click.option("--force", is_flag=True, help="Move even if the gate refuses (needs --reason).")
@click.option("--reason", help="Why; kept in the audit log.")
@_common
def cutover_command(admin: _Admin, force: bool, reason: str | None) -> None:
    """Give the candidate the primary role (shadow -> cutover), through the gate."""
    _move(admin, str(Mode.CUTOVER), force, reason)


@click.command("finalize")
@click.option("--force", is_flag=True, help="Move even if the gate refuses (needs --reason).")
@click.option("--skip-cutover", is_flag=True,
              help="From shadow: go straight to candidate-only (needs --reason).")
@click.option("--reason", help="Why; kept in the audit log.")
@_common
def finalize_command(admin: _Admin, force: bool, skip_cutover: bool, reason: str | None) -> None:
    """Stop mirroring to the legacy build (cutover -> candidate-only), through the gate."""
    if skip_cutover and not reason:
        raise click.UsageError("--skip-cutover needs --reason TEXT")
    current = _current(admin)
    if current in (Mode.LEGACY_ONLY, Mode.SHADOW) and not skip_cutover:
        _refuse(admin, f"finalize from {current} skips cutover: the candidate would never have "
                       f"served a client while the legacy build kept the writes. Run `shadow "
                       f"cutover` first, or `shadow finalize --skip-cutover --reason TEXT`.")
    _move(admin, str(Mode.CANDIDATE_ONLY), force, reason, skip=skip_cutover)


@click.command("rollback")
@click.option("--to", "target", type=click.Choice([str(Mode.LEGACY_ONLY), str(Mode.SHADOW)]),
              help="Mode to go back to (default: shadow from cutover or candidate-only; "
                   "from shadow, --to legacy-only must be given).")
@click.option("--reason", help="Why; kept in the audit log.")
@_common
def rollback_command(admin: _Admin, target: str | None, reason: str | None) -> None:
    """Go back toward the legacy build at once; never gated."""
    current = _current(admin)
    if current == Mode.SHADOW and target is None:
        _refuse(admin, "the legacy build already serves in shadow mode; `shadow rollback --to "
                       "legacy-only` stops mirroring, and the candidate's rows then diverge "
                       "(`shadow resume` mirrors again)")
    target = target or _BACK.get(current)
    if target is None or not is_forward(target, current):
        hint = "; `shadow resume` goes to shadow" if current == Mode.LEGACY_ONLY else ""
        _refuse(admin, f"nothing to roll back to from {current}"
                + (f" (to {target})" if target else "") + hint)
    _move(admin, str(target), False, reason)


@click.command("gate")
@click.option("--reset", is_flag=True, help="Start a new window (needs --reason).")
@click.option("--reason", help="Why; kept in the audit log.")
@_common
def gate_command(admin: _Admin, reset: bool, reason: str | None) -> None:
    """Show the gate's answer (exit 1 when it refuses), or start a new window."""
    if reset:
        if not reason:
            raise click.UsageError("--reset needs --reason TEXT")
        status = admin.call("POST", "/api/gate/reset", {"reason": reason})
    else:
        status = admin.call("GET", "/api/status")
    if admin.as_json:
        click.echo(orjson.dumps(status["gate"], option=orjson.OPT_INDENT_2).decode())
    else:
        _show_gate(status["gate"])
    if not reset and not status["gate"]["passed"]:
        raise SystemExit(1)


@click.command("audit")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@_common
def audit_command(admin: _Admin, limit: int) -> None:
    """Show the audit log (mode changes, refusals, gate resets), newest first."""
    rows = admin.call("GET", f"/api/audit?limit={limit}")["audit"]
    if admin.as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for row in rows:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        move = f"{row['from_mode']} -> {row['to_mode']}"
        flags = "forced" if row["forced"] else ("gate ok" if row["gate"].get("passed") else "")
        click.echo(f"{at}  {row['action']:<12} {move:<28} {flags:<7} {row['who']:<10} "
                   f"{row['reason']}")


COMMANDS = [status_command, resume_command, cutover_command, finalize_command, rollback_command,
            gate_command, audit_command]

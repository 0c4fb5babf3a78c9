"""The Grafana dashboards of shadow, built from plain dicts so the JSON is reproducible.

    python -m dashboards.build           write shadow-overview.json and shadow-route.json
    python -m dashboards.build --check   exit 1 when a committed file differs from the build

Run from the repository root. Rates come from the recording rules in
config/rules/shadow-recording.yml where one exists; `$__rate_interval` and `$__range`
are used where a rule would not fit. The JSON model is in dashboards.grafana.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dashboards.grafana import (
    BAD_IF_ANY, PCT, Layout, colours, dashboard, datasource_variable, latency, panel,
    route_variable, scope_variables, series, stat, target, texts,
)

HERE = Path(__file__).resolve().parent
ROUTE = 'route="$route"'

# Recording rules (config/rules/shadow-recording.yml).
COMPARED = "job_route_method:shadow_requests_compared:rate5m"
RATIO = "job_route_method:shadow_requests_mismatched:ratio_rate5m"
SHADOW_ERROR = "job_route_method:shadow_requests_shadow_error:rate5m"
LATENCY_BY_ROUTE = "job_backend_route_le:shadow_upstream_duration_seconds_bucket:rate5m"
LATENCY = "job_backend_le:shadow_upstream_duration_seconds_bucket:rate5m"
QUANTILES = (0.5, 0.95, 0.99)


def overview_layout() -> Layout:
    drill = [{"title": "Drill down into ${__field.labels.method} ${__field.labels.route}",
              "url": "/d/shadow-route/shadow-route?${datasource:queryparam}"
                     "&${job:queryparam}&${instance:queryparam}&${browser:queryparam}"
                     "&var-route=${__field.labels.route:percentencode}&${__url_time_range}"},
             {"title": "Mismatches of ${__field.labels.route} in the browser",
              "url": "${browser}/?route=${__field.labels.route:percentencode}",
              "targetBlank": True}]
    lay = Layout()
    lay.row("Cutover")
    lay.add(
        stat("Mode", "max by (mode) (shadow_mode) == 1", "{{mode}}",
             options={"textMode": "name", "colorMode": "background", "graphMode": "none"},
             thresholds=colours([(None, "blue")]),
             description="The mode the proxy runs in (shadow_mode)."),
        stat("Cutover gate", "min(shadow_gate_passed)", mappings=texts(
                 {"1": ("holds", "green"), "0": ("refuses", "orange")}),
             description="Whether the gate lets the mode move forward (shadow_gate_passed). "
                         "GET /api/status on the admin port gives the reasons."),
        stat("Shadow diverged", "max(shadow_diverged)", mappings=texts(
                 {"0": ("no", "green"), "1": ("diverged", "red")}),
             description="1 when a write never reached the shadow database: its rows can "
                         "no longer match until it is resynced."),
        stat("Mismatch ratio", "job:shadow_requests_mismatched:ratio_rate5m", **PCT,
             description="Share of compared exchanges that mismatch, all routes, 5m."),
        stat("Shadow error ratio", "job:shadow_requests_shadow_error:ratio_rate5m", **PCT,
             description="Share of shadow requests with no usable reply, 5m."),
        stat("Internal errors", "sum(increase(shadow_internal_errors_total[$__range])) "
             "or vector(0)", **BAD_IF_ANY,
             description="Failures inside the verifier itself over the time range."))
    lay.add(
        panel("bargauge", "Compared exchanges still needed per route",
              [target("max by (route, method) (shadow_gate_compared_needed)",
                      "{{method}} {{route}}",
                      instant=True)], w=12, h=8,
              options={"displayMode": "basic", "showUnfilled": True, "valueMode": "color"},
              thresholds=colours([(None, "green"), (1, "orange")]),
              description="Clean compared exchanges each route still needs before the gate "
                          "holds (0 = the route passes)."),
        stat("Compared exchanges", f"sum({COMPARED})", unit="reqps", h=8,
             description="Exchanges compared per second (match or mismatch), 5m."),
        stat("Normalised by the bridge", "sum(increase(shadow_normalised_total[$__range])) "
             "or vector(0)", h=8, thresholds=colours([(None, "blue")]),
             description="Differences the dialect bridge treated as equal over the time "
                         "range: what 'match' leans on."),
        stat("Rollback-unsafe writes", "sum(increase(shadow_rollback_unsafe_writes_total"
             "[$__range])) or vector(0)", h=8, **BAD_IF_ANY,
             description="Writes that failed on the legacy build while it was the shadow "
                         "(cutover): a rollback would lose them."))
    lay.row("Mismatches")
    lay.add(
        series("Mismatch ratio, all routes",
               ("job:shadow_requests_mismatched:ratio_rate5m", "all routes"),
               unit="percentunit", w=12),
        series("Mismatch ratio by route", (RATIO, "{{method}} {{route}}"), unit="percentunit",
               w=12, links=drill,
               description="Click a line to open the route dashboard."),
        series("Verdict mix", ("sum by (verdict) (job_verdict:shadow_requests:rate5m)",
                               "{{verdict}}"), unit="reqps", stack=True,
               description="Exchanges per second by verdict: match, mismatch, raced "
                           "(unverified: a read that differed while writes overlapped it, "
                           "which the proxy could not settle), shadow_error, primary_error, "
                           "skipped."),
        series("Mismatches by kind",
               ("sum by (kind) (job_kind:shadow_mismatches:rate5m)", "{{kind}}"),
               unit="reqps", description="Mismatching exchanges per second by the kind of "
                                         "difference (status, header, body, row_*)."),
        series("Row mismatches by table", (
            "sum by (table, kind) (job_table_kind:shadow_row_mismatches:rate5m)",
            "{{table}} {{kind}}"), unit="reqps"),
        series("Normalised by the bridge, by route", (
            "sum by (route, method) (job_route_method:shadow_normalised:rate5m)",
            "{{method}} {{route}}"), unit="reqps", w=12),
        series("Skipped, by reason", (
            "sum by (reason) (job_route_reason:shadow_skipped:rate5m)", "{{reason}}"),
            unit="reqps", w=12,
            description="Exchanges not compared: route policy, sampling, size, dropped."))
    lay.row("Latency of both backends (whole reply)")
    lay.add(*(latency(q, LATENCY) for q in QUANTILES))
    lay.row("Mirror lane and health")
    lay.add(
        series("Mirror lane depth", ("sum(shadow_mirror_queue_depth)", "queued"),
               ("sum(shadow_mirror_inflight)", "in flight"),
               ("sum(shadow_mirror_parked)", "parked reads"),
               ("sum(shadow_shadow_writes_pending)", "writes pending on the shadow")),
        series("Dropped shadow work", (
            "sum by (reason) (job_reason:shadow_mirror_dropped:rate5m)", "{{reason}}"),
            unit="reqps"),
        series("Backend errors", (
            "sum by (backend, role, error) (job_backend_role_error:shadow_upstream_errors"
            ":rate5m)", "{{backend}} ({{role}}) {{error}}"), unit="reqps"),
        series("Shadow replay lag", ("max(shadow_replay_lag_seconds)", "behind the primary"),
               unit="s", w=8,
               description="How long after the primary the shadow received its copy of "
                           "the latest compared exchange; reply timestamps may trail by "
                           "the largest lag of the last ten minutes."),
        series("Shadow diverged", ("max(shadow_diverged)", "diverged"), w=8),
        series("Comparisons held", ("sum(shadow_verdicts_held)", "held"), w=8,
               description="Comparisons differing only where values drawn fresh per reply "
                           "are still being learnt, held until those places are decided."),
        series("Reads rechecked", (
            "sum by (outcome) (rate(shadow_reads_rechecked_total[$__rate_interval]))",
            "{{outcome}}"), ("sum(shadow_rechecks_held)", "waiting"),
            ("sum by (why) (rate(shadow_reads_raced_total[$__rate_interval]))", "raced {{why}}"),
            w=8,
            description="Mismatched reads that overlapped writes, sent again to both "
                        "builds once no write ran: race (recorded as a match), confirmed "
                        "(the mismatch it was) or unsettled; and reads recorded raced, "
                        "unverified, by why (resend_writes, policy, unsettled)."),
        series("Internal errors by operation", (
            "sum by (operation) (job_operation:shadow_internal_errors:rate5m)",
            "{{operation}}"), unit="reqps"),
        series("Compare time p99", (
            "histogram_quantile(0.99, sum by (le) "
            "(rate(shadow_compare_duration_seconds_bucket[$__rate_interval])))", "p99"),
            unit="s", description="Time to compare one exchange's observations."))
    return lay


def route_layout() -> Layout:
    lay = Layout()
    lay.row("$route")
    lay.add(
        stat("Mismatch ratio", f"{RATIO}{{{ROUTE}}}", "{{method}}", **PCT),
        stat("Shadow error ratio",
             f"job_route_method:shadow_requests_shadow_error:ratio_rate5m{{{ROUTE}}}",
             "{{method}}", **PCT),
        stat("Compared exchanges", f"sum({COMPARED}{{{ROUTE}}})", unit="reqps"),
        stat("Compared exchanges still needed",
             f"max by (method) (shadow_gate_compared_needed{{{ROUTE}}})", "{{method}}",
             thresholds=colours([(None, "green"), (1, "orange")]),
             description="Clean compared exchanges each method of this route still needs "
                         "for the gate."),
        stat("Normalised by the bridge",
             f"sum(increase(shadow_normalised_total{{{ROUTE}}}[$__range])) or vector(0)",
             thresholds=colours([(None, "blue")])),
        stat("Rollback-unsafe writes", "sum(increase(shadow_rollback_unsafe_writes_total"
             f"{{{ROUTE}}}[$__range])) or vector(0)",
             **BAD_IF_ANY))
    lay.add(
        series("Mismatch ratio", (f"{RATIO}{{{ROUTE}}}", "{{method}}"), unit="percentunit",
               w=12),
        series("Verdicts", (f"sum by (method, verdict) (rate(shadow_requests_total{{{ROUTE}}}"
                            "[$__rate_interval]))", "{{method}} {{verdict}}"),
               unit="reqps", stack=True, w=12),
        series("Mismatches by kind", (
            f"sum by (method, kind) (job_route_method_kind:shadow_mismatches:rate5m{{{ROUTE}}})",
            "{{method}} {{kind}}"), unit="reqps", w=12),
        series("Shadow errors and skips", (
            f"sum by (method) ({SHADOW_ERROR}{{{ROUTE}}})", "{{method}} shadow_error"), (
            f"sum by (reason) (job_route_reason:shadow_skipped:rate5m{{{ROUTE}}})",
            "skipped: {{reason}}"), unit="reqps", w=12))
    lay.row("Latency of both backends on $route")
    lay.add(*(latency(q, f"{LATENCY_BY_ROUTE}{{{ROUTE}}}") for q in QUANTILES))
    return lay


def build() -> dict[str, dict]:
    """File name -> dashboard."""
    overview = dashboard(
        "shadow-overview", "shadow: overview",
        "Is the candidate build ready? Mismatch rates, verdicts, gate, latency of both "
        "backends, mirror lane health.", overview_layout(),
        [datasource_variable(), *scope_variables()], ("Route drill-down", "shadow-route"))
    route = dashboard(
        "shadow-route", "shadow: route", "One route template: its mismatches, verdicts, gate "
        "standing and the latency of both backends.", route_layout(),
        [datasource_variable(), *scope_variables(), route_variable()],
        ("Overview", "shadow-overview"))
    return {"shadow-overview.json": overview, "shadow-route.json": route}


def render(board: dict) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, board in build().items():
        path, text = HERE / name, render(board)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"dashboards/{name} differs from the build: run python -m dashboards.build")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

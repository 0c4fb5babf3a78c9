"""The pieces of Grafana's dashboard JSON model that shadow's dashboards use: panels,
targets, variables, a grid layout and the dashboard itself (schemaVersion 39).

Every panel and target reads from the dashboard variable `${datasource}` (type
prometheus), so the dashboards import into any Grafana with any Prometheus data source.
Every query is scoped to the dashboard's `$job` (and raw metrics to `$instance` too; the
recording rules sum instances already), so two deployments scraped by one Prometheus
never mix. `$browser` is the mismatch browser's base URL (the admin listener), for links.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}


def colours(steps: list[tuple[float | None, str]]) -> dict:
    """Thresholds: (lowest value or None for the base, colour), ascending."""
    return {"mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in steps]}


# A ratio of exchanges: fine under 0.1%, worrying from 0.1%, bad from 1%.
PCT = {"unit": "percentunit",
       "thresholds": colours([(None, "green"), (0.001, "orange"), (0.01, "red")])}
# A count that should stay 0.
BAD_IF_ANY = {"thresholds": colours([(None, "green"), (1, "red")])}


_SELECTOR = re.compile(
    r'"(?:[^"\\]|\\.)*"'                                  # a quoted string: kept as is
    r'|(?<![\w:$])(shadow_[A-Za-z0-9_]+|[a-z_]+:[A-Za-z0-9_]+:[A-Za-z0-9_]+)(\{[^}]*\})?')


def scoped(expr: str) -> str:
    """`expr` with every metric selector limited to `$job` (raw `shadow_*` metrics also
    to `$instance`); matchers already there are kept."""
    def one(m: re.Match) -> str:
        name, braces = m.group(1), m.group(2)
        if name is None:
            return m.group(0)
        scope = 'job="$job"' if ":" in name else 'job="$job", instance=~"$instance"'
        inner = braces[1:-1].strip() if braces else ""
        return f"{name}{{{scope}{', ' + inner if inner else ''}}}"
    return _SELECTOR.sub(one, expr)


def target(expr: str, legend: str = "", *, instant: bool = False) -> dict:
    expr = scoped(expr)
    return {"datasource": DS, "editorMode": "code", "expr": expr,
            "legendFormat": legend or "__auto", "range": not instant, "instant": instant}


def texts(names: dict[str, tuple[str, str]]) -> list[dict]:
    """Value mappings: raw value -> (text, colour)."""
    options = {value: {"text": text, "color": color, "index": i}
               for i, (value, (text, color)) in enumerate(names.items())}
    return [{"type": "value", "options": options}]


def panel(kind: str, title: str, targets: list[dict], *, unit: str = "short",
          description: str = "", w: int = 8, h: int = 8, **extra) -> dict:
    """A panel of `kind` without position or id (the Layout assigns them)."""
    defaults = {"unit": unit, "color": {"mode": extra.pop("color", "palette-classic")},
                "thresholds": extra.pop("thresholds", colours([(None, "green")])),
                "mappings": extra.pop("mappings", [])}
    if "links" in extra:
        defaults["links"] = extra.pop("links")
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                              "showPoints": "never", "spanNulls": False,
                              "stacking": {"mode": "normal" if extra.pop("stack", False)
                                           else "none", "group": "A"}}
        defaults["min"] = 0
    options = extra.pop("options", {})
    if kind == "timeseries":
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}, **options}
    elif kind in ("stat", "bargauge"):
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "orientation": "horizontal", **options}
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options, "gridPos": {"w": w, "h": h}, **extra}


def stat(title: str, expr: str, legend: str = "", **kw) -> dict:
    kw.setdefault("options", {"textMode": "value_and_name" if legend else "value",
                              "colorMode": "background", "graphMode": "none"})
    return panel("stat", title, [target(expr, legend, instant=True)], w=kw.pop("w", 4),
                 h=kw.pop("h", 4), color="thresholds", **kw)


def series(title: str, *exprs: tuple[str, str], **kw) -> dict:
    return panel("timeseries", title, [target(e, legend) for e, legend in exprs], **kw)


def latency(q: float, buckets: str) -> dict:
    p = f"p{round(q * 100)}"
    return series(f"Latency {p} by backend",
                  (f"histogram_quantile({q}, sum by (backend, le) ({buckets}))", "{{backend}}"),
                  unit="s", description=f"{p} of the time to a backend's whole reply, both "
                                        "backends on one axis (shadow_upstream_duration_seconds).")


class Layout:
    """Places panels left to right in rows of 24 columns and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = self.y = self.row_h = 0

    def row(self, title: str) -> None:
        self._wrap()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "id": len(self.panels) + 1,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def add(self, *panels: dict) -> None:
        for p in panels:
            w, h = p["gridPos"]["w"], p["gridPos"]["h"]
            if self.x + w > 24:
                self._wrap()
            p["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
            p["id"] = len(self.panels) + 1
            self.panels.append(p)
            self.x += w
            self.row_h = max(self.row_h, h)

    def _wrap(self) -> None:
        self.y += self.row_h
        self.x = self.row_h = 0


def datasource_variable() -> dict:
    return {"type": "datasource", "name": "datasource", "label": "Data source",
            "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
            "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False}


def query_variable(name: str, label: str, query: str, *, every: bool = False) -> dict:
    """A variable filled from label values; `every`: several may be chosen, or All."""
    editor = {"qryType": 1, "query": query,
              "refId": "PrometheusVariableQueryEditor-VariableQuery"}
    extra = {"allValue": ".*"} if every else {}
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": query, "current": {}, "hide": 0, "includeAll": every,
            "multi": every, "options": [], "query": editor, "refresh": 2, "regex": "",
            "skipUrlSync": False, "sort": 1, **extra}


def route_variable() -> dict:
    """`$route`: one route template, from the labels of shadow_requests_total."""
    return query_variable("route", "Route",
                          'label_values(shadow_requests_total{job="$job"}, route)')


def scope_variables() -> list[dict]:
    """`$job` (one deployment), `$instance` (its proxies, All by default) and `$browser`."""
    browser = {"type": "textbox", "name": "browser", "label": "Mismatch browser URL",
               "query": "http://127.0.0.1:8081", "current": {"text": "http://127.0.0.1:8081",
                                                          "value": "http://127.0.0.1:8081"},
               "hide": 0, "options": [], "skipUrlSync": False,
               "description": "The admin listener of the proxy (its / is the mismatch "
                              "browser); links from the dashboards open it."}
    return [query_variable("job", "Job", "label_values(shadow_build_info, job)"),
            query_variable("instance", "Instance",
                           'label_values(shadow_build_info{job="$job"}, instance)', every=True),
            browser]


def dashboard(uid: str, title: str, description: str, layout: Layout,
              variables: list[dict], link: tuple[str, str]) -> dict:
    """A whole dashboard; `link` (title, uid) is the other dashboard, shown at the top."""
    links = [{"title": link[0], "type": "link", "icon": "dashboard", "url": f"/d/{link[1]}/"
              f"{link[1]}?${{datasource:queryparam}}&${{job:queryparam}}"
              f"&${{instance:queryparam}}&${{browser:queryparam}}", "includeVars": False,
              "keepTime": True, "targetBlank": False, "tags": [], "asDropdown": False,
              "tooltip": ""},
             {"title": "Mismatch browser", "type": "link", "icon": "external link",
              "url": "${browser}/", "includeVars": False, "keepTime": False,
              "targetBlank": True, "tags": [], "asDropdown": False,
              "tooltip": "Signatures and redacted samples on the admin listener"}]
    mode_changes = {
        "datasource": DS, "enable": True, "hide": False, "iconColor": "purple",
        "name": "Mode changes", "step": "60s", "titleFormat": "mode: {{mode}}",
        "tagKeys": "mode", "textFormat": "", "useValueForTime": False,
        "expr": scoped("(max by (mode) (shadow_mode) == 1)"
                       " unless (max by (mode) (shadow_mode offset 1m) == 1)")}
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
               "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
               "name": "Annotations & Alerts", "type": "dashboard"}
    return {"uid": uid, "title": title, "description": description,
            "tags": ["shadow"], "editable": True, "graphTooltip": 1, "liveNow": False,
            "refresh": "30s", "schemaVersion": SCHEMA_VERSION, "version": 1,
            "time": {"from": "now-3h", "to": "now"}, "timepicker": {}, "timezone": "",
            "weekStart": "", "fiscalYearStartMonth": 0,
            "annotations": {"list": [builtin, mode_changes]},
            "templating": {"list": variables}, "links": links, "panels": layout.panels}

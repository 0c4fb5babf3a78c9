"""Every Prometheus metric of the proxy, declared once against an injectable registry.

Labels are bounded: route templates (never raw paths), backend labels, role names, and
the enums of shadow.verdict (verdict, kind) and of drop/skip/error reasons. Never ids,
raw paths or error text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shadow import __version__
from shadow.recheck import UNSETTLED_WHY

# Sub-millisecond to tens of seconds: a loopback hop is ~0.2 ms, a slow app several seconds.
LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
)
DROP_REASONS = ("queue_full", "timeout", "cancelled", "shutdown", "closing")
UPSTREAM_ERRORS = ("connect", "timeout", "protocol", "too_large")
INTERNAL_OPERATIONS = ("conclude", "compare", "compare_offload", "store", "listener",
                       "rows_state", "cutover_refresh", "drain_legacy", "drain_candidate",
                       "lane_shadow", "lane_shadow_drop", "attribute", "held", "recheck")
VERDICTS = ("match", "mismatch", "raced", "shadow_error", "primary_error", "skipped")
LISTENERS = ("proxy", "admin")
CONNECTION_CLOSES = ("header_timeout", "limit")
COMPARE_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                   0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    """The proxy's metrics. Tests build one on a fresh CollectorRegistry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._children: dict[tuple, object] = {}
        r = self.registry
        self.build_info = Gauge("shadow_build_info", "Version of the running proxy (always 1; no unit).",
                                ["version"], registry=r)
        self.build_info.labels(__version__).set(1)
        self.requests = Counter(
            "shadow_requests_total",
            "Client exchanges by route template, method and verdict (unit: exchanges).",
            ["route", "method", "verdict"], registry=r)
        self.mismatches = Counter(
            "shadow_mismatches_total",
            "Exchanges with at least one difference of this kind, by route and method (unit: "
            "exchanges; a request that wrote 3 missing rows counts 1 here).",
            ["route", "method", "kind"], registry=r)
        self.normalised = Counter(
            "shadow_normalised_total",
            "Values the dialect bridge or a tolerance found equal although written "
            "differently (hidden, but counted; unit: values).",
            ["route", "method"], registry=r)
        self.crossed = Counter(
            "shadow_crossed_keys_total",
            "Elements of shadow reply arrays put back in the primary's order before comparing: "
            "they stand for new rows that overlapping writes numbered in another order on each "
            "side (shadow.rows.crossed; unit: elements).",
            ["route", "method", "table"], registry=r)
        self.upstream_duration = Histogram(
            "shadow_upstream_duration_seconds",
            "Time from sending a request to a backend to having its whole reply (unit: seconds).",
            ["backend", "role", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter(
            "shadow_upstream_errors_total",
            "Requests to a backend that gave no usable reply, by error class (unit: requests).",
            ["backend", "role", "error"], registry=r)
        self.skipped = Counter(
            "shadow_skipped_total",
            "Exchanges not compared, by reason (policy, sampled_out, body_too_large, mode, "
            "compare_queue_full...; unit: exchanges).",
            ["route", "reason"], registry=r)
        self.queue_depth = Gauge(
            "shadow_mirror_queue_depth",
            "Shadow requests waiting in the mirror lane (unit: requests).",
            registry=r)
        self.inflight = Gauge(
            "shadow_mirror_inflight", "Shadow requests being sent right now (unit: requests).", registry=r)
        self.parked = Gauge(
            "shadow_mirror_parked",
            "Shadow reads waiting for the writes they must see to finish on the shadow "
            "(unit: requests).",
            registry=r)
        self.dropped = Counter(
            "shadow_mirror_dropped_total",
            "Shadow requests dropped to protect the primary path, by reason (unit: requests).",
            ["reason"], registry=r)
        self.compare_duration = Histogram(
            "shadow_compare_duration_seconds",
            "Time to compare one exchange's observations on the event loop (unit: seconds).",
            buckets=COMPARE_BUCKETS, registry=r)
        self.compare_offloaded = Gauge(
            "shadow_compare_offloaded",
            "Comparisons (exchanges) waiting or running in the comparison worker processes "
            "(capped by compare.offload_queue; unit: exchanges).", registry=r)
        self.internal_errors = Counter(
            "shadow_internal_errors_total",
            "Failures inside the verifier itself (never the backends'), by operation "
            "(unit: errors).",
            ["operation"], registry=r)
        self.signatures = Gauge(
            "shadow_signatures",
            "Mismatch signatures kept in the state store (capped by store.max_signatures; "
            "unit: signatures).",
            registry=r)
        self.signatures_evicted = Counter(
            "shadow_signatures_evicted_total",
            "Signatures deleted, with their samples, to stay under store.max_signatures "
            "(least frequent and least recent first; unit: signatures).", registry=r)
        self.findings_evicted = Counter(
            "shadow_findings_evicted_total",
            "Untriaged findings deleted, with their signature links, trend and samples links, "
            "to stay under findings.max_kept (unit: findings).", registry=r)
        self.samples_stored = Counter(
            "shadow_samples_stored_total",
            "Mismatch samples written to the store (unit: samples).",
            registry=r)
        self.routes_learned = Gauge(
            "shadow_routes_learned",
            "Route templates learned from traffic (capped by learn_routes.max_templates; "
            "beyond, paths are named {other}; unit: templates).", registry=r)
        # Client connections (shadow.listener)
        self.connections_open = Gauge(
            "shadow_connections_open",
            "Client connections open on a listener (proxy, admin; unit: connections).",
            ["listener"], registry=r)
        self.connections_limit = Gauge(
            "shadow_connections_limit",
            "Client connections a listener accepts at once; past it new ones get 503 "
            "(connections.max_client_connections / max_admin_connections; unit: connections).",
            ["listener"], registry=r)
        self.connections_closed = Counter(
            "shadow_connections_closed_total",
            "Client connections the proxy ended itself, by listener and reason "
            "(header_timeout: no complete request head in time, 408; limit: refused, 503; "
            "unit: connections).",
            ["listener", "reason"], registry=r)
        self.marker_stripped = Counter(
            "shadow_marker_stripped_total",
            "Marker headers sent by clients and removed before forwarding (unit: headers).",
            registry=r)
        # Row state
        self.row_mismatches = Counter(
            "shadow_row_mismatches_total",
            "Rows that differ between the two databases, by table and kind (unit: rows; one "
            "exchange that wrote 3 missing rows counts 3 here).",
            ["table", "kind"], registry=r)
        self.noise = Counter(
            "shadow_noise_total",
            "Reply differences hidden because the primary's own build varies there by "
            "itself (learnt by A/A calibration); counted, never dropped silently (unit: differences).",
            ["route", "method"], registry=r)
        self.calibration_pairs = Counter(
            "shadow_calibration_pairs_total",
            "Safe exchanges sent a second time to the primary's build to learn noise "
            "(unit: exchanges).",
            ["route", "method"], registry=r)
        self.replay_lag = Gauge(
            "shadow_replay_lag_seconds",
            "Seconds from the primary receiving a request to the shadow receiving its copy, "
            "for the latest compared exchange (unit: seconds).", registry=r)
        self.verdicts_held = Gauge(
            "shadow_verdicts_held",
            "Comparisons whose only differences are at places still being learnt as values "
            "drawn fresh per reply, held until those places are decided (unit: exchanges).",
            registry=r)
        self.reads_rechecked = Counter(
            "shadow_reads_rechecked_total",
            "Mismatched safe reads that overlapped writes, sent again to both builds once no "
            "write ran, by outcome: race (the fresh replies agree: recorded as a match), "
            "confirmed or unsettled (recorded as the mismatch it was; unit: exchanges).",
            ["route", "method", "outcome"], registry=r)
        self.reads_raced = Counter(
            "shadow_reads_raced_total",
            "Safe reads recorded raced (unverified: their replies differed while writes "
            "overlapped them, and the proxy could not settle them), by why: resend_writes "
            "(a second send may write rows, e.g. an audit row: the read or its route wrote, "
            "or the route was never seen reading without writing), policy (the route may not "
            "be sent again) or unsettled (its recheck found no quiet moment; unit: exchanges).",
            ["route", "method", "why"], registry=r)
        self.recheck_unsettled = Counter(
            "shadow_recheck_unsettled_total",
            "Rechecks that could not settle, by why: moved (a write ran during it), failed "
            "(no usable reply, timeout), busy (no write-free moment in time), full (too many "
            "waiting), stopped, or mode (the roles changed meanwhile; unit: exchanges).",
            ["why"], registry=r)
        self.rechecks_held = Gauge(
            "shadow_rechecks_held",
            "Mismatched reads waiting for their recheck, or being rechecked (unit: exchanges).",
            registry=r)
        self.held_settled = Counter(
            "shadow_held_settled_total",
            "Held comparisons recorded, by why: learnt (a match, its differences noise), "
            "refused (a mismatch), bound (age or count reached) or stopped (unit: exchanges).",
            ["why"], registry=r)
        self.keymap_size = Gauge(
            "shadow_keymap_size",
            "Key pairs (legacy key <-> candidate key) remembered (unit: pairs).",
            registry=r)
        self.diverged = Gauge(
            "shadow_diverged",
            "1 from the moment the shadow's rows can no longer be compared (a write reached "
            "one database only) until a resync; else 0.",
            registry=r)
        self.shadow_writes_pending = Gauge(
            "shadow_shadow_writes_pending",
            "Mirrored writes not yet done on the shadow: parked, queued or running "
            "(unit: requests).",
            registry=r)
        self.shadow_waits_expired = Counter(
            "shadow_shadow_waits_expired_total",
            "Shadow requests let go at the bound of a wait instead of the order they should "
            "keep, by wait (keys: the key pairs of the writes they follow were not learnt "
            "within the key wait; unit: requests).",
            ["wait"], registry=r)
        self.rows_attributed = Counter(
            "shadow_rows_attributed_total",
            "Writes whose rows were compared, by attribution: exact (the write ran alone) or "
            "group (overlapping writes compared as a whole; unit: writes).",
            ["how"], registry=r)
        self.outside_writes = Counter(
            "shadow_outside_writes_total",
            "Changes in a change log that no proxied exchange can own, by backend and table "
            "(unit: rows).",
            ["backend", "table"], registry=r)
        self.write_hold = Counter(
            "shadow_write_hold_total",
            "Writes that waited for the write before them on the primary, by outcome: waited "
            "(it finished in time) or expired (went after proxy.write_hold; unit: writes).",
            ["outcome"], registry=r)
        self.capture_schema_changes = Counter(
            "shadow_capture_schema_changes_total",
            "Schema changes (app migrations) a running change capture noticed and followed "
            "(unit: schema changes).",
            ["backend"], registry=r)
        self.capture_lost = Counter(
            "shadow_capture_lost_total",
            "Logged changes lost before a drain: the log's cap while nobody drained, a table "
            "dropped first, or a lost replication slot, one per gap (unit: changes).",
            ["backend"], registry=r)
        self._capture_seen: dict[str, tuple[int, int]] = {}
        # Cutover
        self.mode = Gauge("shadow_mode", "1 for the current mode, 0 for the others.", ["mode"],
                          registry=r)
        self.gate_passed = Gauge("shadow_gate_passed",
                                 "1 when the cutover gate holds, 0 when it refuses.", registry=r)
        self.gate_compared_needed = Gauge(
            "shadow_gate_compared_needed",
            "Clean compared exchanges a route and method still needs for the gate to hold "
            "(unit: exchanges; method \"any\" for a gate.expected_routes entry without one).",
            ["route", "method"], registry=r)
        self.rollback_unsafe_writes = Counter(
            "shadow_rollback_unsafe_writes_total",
            "Writes that failed on the legacy build while it was the shadow (cutover; "
            "unit: writes).",
            ["route"], registry=r)

    def child(self, metric, *labels: str):
        """`metric.labels(*labels)`, looked up once per label set: the hot path calls
        this for every exchange, and label sets are bounded by design."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def initialise(self, backends: list[str], routes: list[tuple[str, list[str]]]) -> None:
        """Create every counter series whose label values are known at start-up at 0, so
        that panels read 0 rather than "no data" and the first event is a visible rise:
        drop reasons, backend errors, internal-error operations, connections the listeners
        closed, and the verdicts of the configured routes that name their methods
        (`routes`: (template, methods))."""
        for listener in LISTENERS:
            for reason in CONNECTION_CLOSES:
                self.connections_closed.labels(listener, reason)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)
        for backend in backends:
            for role in ("primary", "shadow"):
                for error in UPSTREAM_ERRORS:
                    self.upstream_errors.labels(backend, role, error)
        for backend in backends:
            self.capture_schema_changes.labels(backend)
            self.capture_lost.labels(backend)
        for operation in INTERNAL_OPERATIONS:
            self.internal_errors.labels(operation)
        for how in ("exact", "group"):
            self.rows_attributed.labels(how)
        for outcome in ("waited", "expired"):
            self.write_hold.labels(outcome)
        for why in ("learnt", "refused", "bound", "stopped"):
            self.held_settled.labels(why)
        for why in UNSETTLED_WHY:
            self.recheck_unsettled.labels(why)
        self.shadow_waits_expired.labels("keys")
        for template, methods in routes:
            self.rollback_unsafe_writes.labels(template)
            for method in methods:
                for verdict in VERDICTS:
                    self.requests.labels(template, method, verdict)

    def forget_route(self, route: str) -> None:
        """Drop every series labelled with `route` (a learned template that was retired)."""
        for metric in list(vars(self).values()):
            names = getattr(metric, "_labelnames", ())
            if "route" not in names:
                continue
            at = names.index("route")
            for values in [v for v in list(metric._metrics) if v[at] == route]:
                metric.remove(*values)
        for key in [k for k in self._children if route in k[1]]:
            del self._children[key]

    def capture_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        """Advance the capture counters to `counts` (backend -> (schema changes, lost)),
        running totals of the captures since they were opened."""
        for backend, (changes, lost) in counts.items():
            seen_changes, seen_lost = self._capture_seen.get(backend, (0, 0))
            if changes > seen_changes:
                self.capture_schema_changes.labels(backend).inc(changes - seen_changes)
            if lost > seen_lost:
                self.capture_lost.labels(backend).inc(lost - seen_lost)
            self._capture_seen[backend] = (changes, lost)

    def set_mode(self, mode: str, modes: tuple[str, ...]) -> None:
        for name in modes:
            self.mode.labels(name).set(1 if name == mode else 0)

"""Counters whose label values are known at start-up exist at 0 before their first event,
and every metric's help text names its unit."""

from shadow.metrics import DROP_REASONS, INTERNAL_OPERATIONS, Metrics


def test_known_label_values_start_at_zero():
    m = Metrics()
    m.initialise(["sqlite", "postgres"], [("/api/moods", ["GET", "POST"]), ("/api/x", [])])
    value = m.registry.get_sample_value
    for reason in DROP_REASONS:
        assert value("shadow_mirror_dropped_total", {"reason": reason}) == 0
    for operation in INTERNAL_OPERATIONS:
        assert value("shadow_internal_errors_total", {"operation": operation}) == 0
    assert value("shadow_upstream_errors_total",
                 {"backend": "postgres", "role": "shadow", "error": "connect"}) == 0
    assert value("shadow_requests_total",
                 {"route": "/api/moods", "method": "POST", "verdict": "mismatch"}) == 0
    assert value("shadow_rollback_unsafe_writes_total", {"route": "/api/x"}) == 0
    assert value("shadow_rows_attributed_total", {"how": "group"}) == 0
    assert value("shadow_write_hold_total", {"outcome": "expired"}) == 0


def test_every_help_text_names_its_unit():
    for family in Metrics().registry.collect():
        text = family.documentation
        assert "unit: " in text or text.startswith("1 ") or "always 1" in text, family.name

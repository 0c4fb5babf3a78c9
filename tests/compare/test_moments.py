"""Time by meaning: timestamps compared relative to the moment each side served."""

from datetime import UTC, datetime

import pytest

from shadow.compare.moments import instant, same_moment, same_second

T0 = datetime(2026, 2, 4, 15, 47, 20, tzinfo=UTC).timestamp()


def test_instants_are_read_from_text_and_datetimes():
    assert instant("2026-02-04 15:47:20") == T0
    assert instant("2026-02-04T15:47:20+00:00") == T0
    assert instant("2026-02-04T16:47:20+01:00") == T0
    assert instant(datetime(2026, 2, 4, 15, 47, 20)) == T0
    assert instant("not a time") is None and instant(17) is None and instant(None) is None


@pytest.mark.parametrize("lag", [0.0, 0.4, 3.0, 45.0, 3600.0])
def test_a_now_stamp_replayed_later_is_the_same_moment(lag):
    # SQLite keeps whole seconds; PostgreSQL keeps microseconds and is served `lag` later.
    primary = "2026-02-04 15:47:20"
    shadow = datetime.fromtimestamp(T0 + 0.73 + lag, UTC).isoformat()
    assert same_moment(primary, shadow, T0 + 0.72, T0 + 0.75 + lag)


@pytest.mark.parametrize("shift", [3600.0, -3600.0, 86400.0, 5.0])
def test_a_wrong_zone_day_or_stale_value_still_differs(shift):
    primary = datetime.fromtimestamp(T0, UTC).isoformat()
    shadow = datetime.fromtimestamp(T0 + 10 + shift, UTC).isoformat()
    assert not same_moment(primary, shadow, T0, T0 + 10)


def test_without_both_moments_or_with_the_rule_off_nothing_is_excused():
    a, b = "2026-02-04 15:47:20", "2026-02-04 15:47:30"
    assert not same_moment(a, b, None, T0 + 10)
    assert not same_moment(a, b, T0, T0 + 10, tolerance=0)
    assert not same_moment("x", b, T0, T0 + 10)


def test_a_reply_stamp_may_trail_by_the_replay_lag_and_no_more():
    from shadow.compare.moments import stamped_later

    assert stamped_later("2026-02-04T15:47:20.100+00:00", "2026-02-04T15:47:24.000+00:00", 5.0)
    assert not stamped_later("2026-02-04T15:47:20.100+00:00", "2026-02-04T15:47:24+00:00", 2.0)
    # a read reaches both at about the same time: a moment earlier is the same moment,
    # more than a second earlier is not
    assert stamped_later("2026-02-04T15:47:20.5+00:00", "2026-02-04T15:47:20.4999+00:00", 5.0)
    assert not stamped_later("2026-02-04T15:47:20.5+00:00", "2026-02-04T15:47:19.3+00:00", 5.0)
    # whole seconds: cut to the second on either side
    assert stamped_later("2026-02-04 15:47:21", "2026-02-04 15:47:20", 0.2)
    assert not stamped_later("2026-02-04 15:47:20", "2026-02-04 16:47:21", 5.0)
    assert not stamped_later("2026-02-04", "tomorrow", 5.0)


def test_a_stamp_kept_to_the_second_is_the_same_as_the_microsecond_within_it():
    assert same_second("2026-12-05 02:24:29", "2026-12-05T02:24:29.263434+00:00")
    assert same_second(datetime(2026, 12, 5, 2, 24, 29, 999_000, tzinfo=UTC),
                       "2026-12-05 02:24:29")
    assert not same_second("2026-12-05 02:24:29", "2026-12-05T02:24:30.1+00:00")
    assert not same_second("2026-12-05 02:24:29", "2026-12-05T02:24:28.9+00:00")
    assert not same_second("2026-12-05 02:24:29", "2026-12-05T03:24:29.2+00:00")  # an hour
    assert not same_second("2026-12-05 02:24:29", "2026-12-05 02:24:29")  # same precision
    assert not same_second("2026-12-05 02:24:29", 7)

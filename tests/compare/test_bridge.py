"""The dialect bridge: one meaning, one canonical form, for replies and rows alike."""

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from shadow.compare.bridge import (
    CanonicalJson,
    ValueKind,
    canonical,
    kind_of_postgres,
    kind_of_sqlite,
    pair_kind,
    parse_instant,
    values_equal,
)

K = ValueKind
INSTANT = datetime(2026, 2, 4, 15, 47, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [(0, False), (1, True), ("0", False), ("1", True), ("t", True), ("f", False), ("true", True),
     ("FALSE", False), (1.0, True), (Decimal("0"), False), (True, "yes")],
)
def test_bool_renderings_are_equal_and_normalised(a, b):
    assert values_equal(a, b, K.BOOL) == (True, True)


@pytest.mark.parametrize(("a", "b"), [(2, True), ("maybe", False), (0, True), ("", False)])
def test_bool_differences_stay(a, b):
    assert values_equal(a, b, K.BOOL) == (False, False)


@pytest.mark.parametrize(
    "legacy",
    [
        "2026-02-04 15:47:20",
        "2026-02-04T15:47:20",
        "2026-02-04 15:47:20.000",
        "2026-02-04 15:47:20.000000",
        "2026-02-04T15:47:20Z",
        "2026-02-04T15:47:20z",
        "2026-02-04t15:47:20+00:00",
        "2026-02-04 16:47:20+01:00",
        "2026-02-04 16:47:20+0100",
        "2026-02-04 16:47:20+01",
        "2026-02-04 10:17:20-05:30",
    ],
)
@pytest.mark.parametrize(
    "candidate",
    [
        INSTANT,
        INSTANT.replace(tzinfo=None),
        INSTANT.astimezone(timezone(timedelta(hours=9))),
        "2026-02-04T15:47:20+00:00",
    ],
)
def test_timestamp_renderings_of_one_instant_are_equal(legacy, candidate):
    equal, normalised = values_equal(legacy, candidate, K.TIMESTAMP)
    assert equal
    assert normalised == (legacy != candidate)


def test_timestamps_differ_by_instant_and_honour_the_tolerance():
    assert values_equal("2026-02-04 15:47:20", INSTANT + timedelta(seconds=1), K.TIMESTAMP) == (False, False)
    assert values_equal("2026-02-04 15:47:20", INSTANT + timedelta(seconds=1), K.TIMESTAMP, tolerance=1) == (True, True)
    assert values_equal("2026-02-04 15:47:20.1", "2026-02-04 15:47:20.2", K.TIMESTAMP) == (False, False)


def test_dates_are_midnight_utc():
    assert values_equal("2026-02-04", date(2026, 2, 4), K.TIMESTAMP) == (True, True)
    assert canonical(date(2026, 2, 4), K.TIMESTAMP) == (datetime(2026, 2, 4, tzinfo=UTC), True)


def test_epoch_numbers_in_a_timestamp_column_are_instants():
    assert values_equal(INSTANT.timestamp(), "2026-02-04 15:47:20", K.TIMESTAMP)[0]
    assert values_equal(int(INSTANT.timestamp()), INSTANT, K.TIMESTAMP)[0]


@pytest.mark.parametrize("text", ["2026-02-30 10:00:00", "yesterday", "2026-02-04 1:2:3", "20260204", ""])
def test_non_timestamps_are_left_alone(text):
    assert parse_instant(text) is None
    assert canonical(text, K.TIMESTAMP) == (text, False)


@pytest.mark.parametrize(
    ("a", "b"),
    [(15, 15.0), (15, Decimal("15.00")), (15.0, Decimal("15")), ("4.5", 4.5), (4.5, Decimal("4.50")),
     ("15", 15), (" 15 ", 15), ("1e3", 1000), (True, 1), (float("nan"), Decimal("NaN")),
     (float("inf"), Decimal("Infinity"))],
)
def test_numeric_renderings_are_equal(a, b):
    assert values_equal(a, b, K.NUMERIC) == (True, True)
    assert values_equal(a, b, K.INTEGER)[0]


def test_numbers_differ_beyond_the_tolerance_only():
    assert values_equal(0.1 + 0.2, Decimal("0.3"), K.NUMERIC) == (False, False)
    assert values_equal(0.1 + 0.2, Decimal("0.3"), K.NUMERIC, tolerance=1e-9) == (True, True)
    assert values_equal(4.5, 4.6, K.NUMERIC, tolerance=0.05) == (False, False)
    assert values_equal(10**30, 10**30 + 1, K.NUMERIC, tolerance=1) == (True, True)
    assert values_equal(float("inf"), 1e308, K.NUMERIC, tolerance=1e308) == (False, False)
    assert values_equal(1.5, 1, K.INTEGER) == (False, False)
    assert values_equal("abc", 1, K.NUMERIC) == (False, False)


def test_numeric_canonical_forms():
    assert canonical(Decimal("15.00"), K.NUMERIC) == (15, True)
    assert canonical(15, K.NUMERIC) == (15, False)
    assert canonical(4.5, K.NUMERIC) == (Decimal("4.5"), True)
    assert canonical("0x10", K.NUMERIC) == ("0x10", False)
    big, _ = canonical(Decimal("1e100"), K.NUMERIC)
    assert big == Decimal("1e100")


def test_json_text_and_parsed_json_are_equal_whatever_the_key_order():
    assert values_equal('{"b": 1, "a": [1, 2.0]}', {"a": [1, 2], "b": 1}, K.JSON) == (True, True)
    assert values_equal(b'{"a":1}', memoryview(b'{"a": 1}'), K.JSON) == (True, True)
    assert values_equal('[1,2]', [2, 1], K.JSON) == (False, False)
    assert canonical({"b": 1, "a": None}, K.JSON) == (CanonicalJson('{"a":null,"b":1}'), True)


def test_json_booleans_are_not_numbers():
    assert values_equal('{"a": true}', {"a": 1}, K.JSON) == (False, False)


def test_json_that_does_not_parse_is_compared_as_it_is():
    assert canonical("{broken", K.JSON) == ("{broken", False)
    assert values_equal("{broken", "{broken", K.JSON) == (True, False)
    assert values_equal("{broken", {}, K.JSON) == (False, False)


def test_bytes_like_values_are_bytes():
    assert values_equal(b"ab", memoryview(b"ab"), K.BYTES) == (True, True)
    assert values_equal(bytearray(b"ab"), b"ab", K.BYTES) == (True, True)
    assert values_equal("ab", b"ab", K.BYTES) == (True, True)
    assert values_equal(b"ab", b"ac", K.BYTES) == (False, False)
    assert values_equal(memoryview(b"ab"), b"ab", K.ANY) == (True, True)


def test_empty_string_and_null_differ_unless_asked():
    for kind in K:
        assert values_equal("", None, kind) == (False, False)
        assert values_equal("", None, kind, empty_is_null=True) == (True, True)
    assert canonical("", K.TEXT, empty_is_null=True) == (None, True)
    assert canonical(None, K.TEXT) == (None, False)


def test_text_renders_other_types_once():
    assert values_equal("15", 15, K.TEXT) == (True, True)
    value = uuid.UUID(int=7)
    assert values_equal(str(value), value, K.TEXT) == (True, True)
    assert values_equal("15:47:20", time(15, 47, 20), K.TEXT) == (True, True)
    assert values_equal("a", "A", K.TEXT) == (False, False)


def test_any_does_not_guess_but_still_knows_numbers():
    assert values_equal(1, True, K.ANY) == (False, False)
    assert values_equal("1", 1, K.ANY) == (False, False)
    assert values_equal(15, 15.0, K.ANY) == (True, True)
    assert values_equal({"a": 1}, '{"a":1}', K.ANY) == (False, False)
    assert values_equal({"a": 1}, {"a": 1}, K.ANY) == (True, False)
    assert values_equal({"a": True}, {"a": 1}, K.ANY) == (False, False)
    assert values_equal(INSTANT, INSTANT.replace(tzinfo=None), K.ANY) == (True, True)


def test_unencodable_containers_are_never_called_equal_by_accident():
    deep: list = []
    for _ in range(400):
        deep = [deep]
    other: list = []
    for _ in range(400):
        other = [other]
    assert values_equal(deep, deep, K.ANY) == (True, False)
    assert values_equal(deep, other, K.ANY) == (False, False)


@pytest.mark.parametrize("value", [object(), float("nan"), b"\xff", [1, {2}], 10**400, "x" * 10])
@pytest.mark.parametrize("kind", list(K))
def test_canonical_never_raises(value, kind):
    canonical(value, kind)
    values_equal(value, value, kind, tolerance=1.0)


@pytest.mark.parametrize(
    ("declared", "kind"),
    [("BOOLEAN", K.BOOL), ("INTEGER", K.INTEGER), ("BIGINT", K.INTEGER), ("int", K.INTEGER),
     ("DATETIME", K.TIMESTAMP), ("TIMESTAMP", K.TIMESTAMP), ("DATE", K.TIMESTAMP), ("REAL", K.NUMERIC),
     ("NUMERIC", K.NUMERIC), ("DECIMAL(10,2)", K.NUMERIC), ("DOUBLE PRECISION", K.NUMERIC),
     ("TEXT", K.TEXT), ("VARCHAR(20)", K.TEXT), ("CLOB", K.TEXT), ("JSON", K.JSON), ("BLOB", K.BYTES),
     ("", K.ANY), ("UUID", K.ANY)],
)
def test_kind_of_sqlite(declared, kind):
    assert kind_of_sqlite(declared) is kind


@pytest.mark.parametrize(
    ("data_type", "kind"),
    [("boolean", K.BOOL), ("integer", K.INTEGER), ("bigint", K.INTEGER), ("smallint", K.INTEGER),
     ("numeric", K.NUMERIC), ("numeric(10,2)", K.NUMERIC), ("double precision", K.NUMERIC), ("real", K.NUMERIC),
     ("timestamp with time zone", K.TIMESTAMP), ("timestamp without time zone", K.TIMESTAMP),
     ("timestamp(3) with time zone", K.TIMESTAMP), ("timestamptz", K.TIMESTAMP), ("date", K.TIMESTAMP),
     ("jsonb", K.JSON), ("json", K.JSON), ("bytea", K.BYTES), ("text", K.TEXT),
     ("character varying", K.TEXT), ("Character Varying(20)", K.TEXT), ("uuid", K.TEXT),
     ("ARRAY", K.ANY), ("USER-DEFINED", K.ANY)],
)
def test_kind_of_postgres(data_type, kind):
    assert kind_of_postgres(data_type) is kind


@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [(K.INTEGER, K.BOOL, K.BOOL), (K.TEXT, K.TIMESTAMP, K.TIMESTAMP), (K.TEXT, K.JSON, K.JSON),
     (K.NUMERIC, K.INTEGER, K.NUMERIC), (K.TEXT, K.INTEGER, K.INTEGER), (K.ANY, K.BOOL, K.BOOL),
     (K.TEXT, K.TEXT, K.TEXT), (K.BOOL, K.BYTES, K.ANY), (K.JSON, K.TIMESTAMP, K.ANY)],
)
def test_pair_kind_is_symmetric_and_picks_the_specific_meaning(a, b, kind):
    assert pair_kind(a, b) is kind
    assert pair_kind(b, a) is kind


def test_a_sqlite_boolean_column_matches_a_postgres_boolean_column():
    kind = pair_kind(kind_of_sqlite("INTEGER"), kind_of_postgres("boolean"))
    assert values_equal(1, True, kind) == (True, True)
    kind = pair_kind(kind_of_sqlite("TEXT"), kind_of_postgres("timestamp with time zone"))
    assert values_equal("2026-02-04 15:47:20", INSTANT, kind) == (True, True)

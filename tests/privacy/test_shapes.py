"""What a sample may hold, without I/O: keep rules, placeholders, keys that are values,
bodies of every kind, difference paths and details, fingerprints."""

from __future__ import annotations

import gzip

import orjson
import pytest

from shadow.config import ConfigError, parse_config
from shadow.privacy import NOT_STORED, SampleBuilder, bodies
from shadow.privacy.fingerprint import Fingerprinter
from shadow.privacy.keep import KeepRules
from shadow.privacy.shapes import Shaper, is_name, string_format
from shadow.verdict import Difference, Kind

KEY = b"a-test-key-of-at-least-32-bytes!!"


def shaper(*keep: str, keep_numbers: bool = True) -> Shaper:
    return Shaper(KeepRules.compile(keep), Fingerprinter(KEY), keep_numbers)


def test_invalid_keep_rules_are_each_reported_with_their_location():
    data = {"backends": {"legacy": {"url": "http://a"}, "candidate": {"url": "http://b"}},
            "privacy": {"keep": ["$.a[", "header:", "users", "$.ok", "query:bad name"]}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    problems = caught.value.problems
    assert [p.split(":", 1)[0] for p in problems] == [
        "privacy.keep[0]", "privacy.keep[1]", "privacy.keep[2]", "privacy.keep[4]"]
    assert "is none of" in problems[2]


def test_the_old_redact_section_says_where_its_meaning_went():
    data = {"backends": {"legacy": {"url": "http://a"}, "candidate": {"url": "http://b"}},
            "redact": {"json_keys": ["pin"]}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.problems[0].startswith("redact: replaced by [privacy]")


def test_no_string_is_kept_without_a_rule_however_short():
    s = shaper()
    for text in ("ok", "Jo", "active", "a" * 500):
        shown = s.leaf(text)
        assert shown.startswith(f"«str {len(text)} #") and text not in shown


def test_booleans_null_and_short_numbers_are_kept_long_numbers_are_not():
    s = shaper()
    assert [s.leaf(v) for v in (True, False, None, 7, -3, 6.5, 12345678)] == [
        True, False, None, 7, -3, 6.5, 12345678]
    for number in (447700900123, 4111111111111111, 123456789, 1.5e9):
        assert s.leaf(number).startswith("«"), number
    assert shaper(keep_numbers=False).leaf(7).startswith("«int #")


def test_a_date_or_number_rendering_shows_its_format_not_its_value():
    assert string_format("2026-02-04 15:47:20") == "datetime 9999-99-99 99:99:99"
    assert string_format("2026-02-04T15:47:20+00:00") == "datetime 9999-99-99T99:99:99+99:99"
    assert string_format("3.0") == "number"
    assert string_format("+44 7700 900123") == string_format("Jane") == ""
    assert "number" in shaper().leaf("3.0")


def test_keys_that_are_values_are_fingerprinted_and_names_kept():
    for key in ("password", "first_name", "X-Session-Id", "diagnosis", "v2"):
        assert is_name(key), key
    for key in ("jane@example.com", "07700900123", "2026-02-04", "a1b2c3d4e5f6",
                "I feel suicidal", "x" * 41):
        assert not is_name(key), key
    shape = shaper().json({"jane@example.com": {"score": 3}})
    [(key, value)] = shape.items()
    assert key.startswith("«key #") and value == {"score": 3}


def test_keep_rules_name_json_paths_columns_headers_and_queries():
    s = shaper("$.status", "$..count", "$.meta", "users.role", "*.kind",
               "header:Content-Type", "query:page")
    doc = s.json({"status": "active", "name": "Jane", "a": [{"count": "12"}],
                  "meta": {"v": "x"}})
    assert doc["status"] == "active" and doc["a"] == [{"count": "12"}]
    assert doc["meta"] == {"v": "x"} and doc["name"].startswith("«str 4 #")
    row = s.row("users", {"role": "admin", "email": "a@b.example", "kind": "k"})
    assert row["role"] == "admin" and row["kind"] == "k" and row["email"].startswith("«str")
    assert s.headers([("content-type", "text/html"), ("X-Token", "abc")]) == [
        ["content-type", "text/html"], ["X-Token", s.placeholder("abc")]]
    target = bodies.target(s, "/api/users/jane%40example.com/records?page=2&code=xyz",
                           "/api/users/{id}/records")
    assert target.startswith("/api/users/«str 16 #") and target.endswith(
        "/records?page=2&code=" + s.placeholder("xyz"))


def test_every_body_kind_is_a_record_without_its_text():
    s = shaper()
    secret = "Planted-Body-Secret"
    cases = {
        "json": (orjson.dumps({"note": secret, "n": 1}), "application/json", None),
        "form": (f"user=jo&password={secret}".encode(), "application/x-www-form-urlencoded", None),
        "form-in-text": (f"username=jo&password={secret}".encode(), "text/plain", None),
        "html": (f'<input name="password" value="{secret}">'.encode(), "text/html", None),
        "quoted": (f"{{'password': '{secret}'}}".encode(), "application/json", None),
        "broken": (f'{{"password": "{secret}"'.encode(), "application/json", None),
        "text": (f"I feel {secret}".encode(), "text/plain", None),
        "binary": (secret.encode() + b"\x00\xff", "application/octet-stream", None),
        "gzip": (gzip.compress(orjson.dumps({"note": secret})), "application/json", "gzip"),
    }
    forms = {}
    for name, (data, ctype, encoding) in cases.items():
        record = bodies.body(s, data, ctype, encoding)
        assert secret not in orjson.dumps(record).decode(), name
        forms[name] = record["form"]
    assert forms == {"json": "json", "form": "form", "form-in-text": "form", "html": "text",
                     "quoted": "text", "broken": "text", "text": "text", "binary": "bytes",
                     "gzip": "json"}
    assert bodies.body(s, b"", None, None) == {"form": "empty"}


def test_equal_values_share_a_fingerprint_whatever_their_type_and_key():
    fp = Fingerprinter(KEY).of
    assert fp(3.0) == fp("3.0") and fp(1) != fp(True) and fp("a") != fp("b")
    assert Fingerprinter(b"another-key-of-at-least-32-bytes!").of("a") != fp("a")
    assert len(fp("x")) == 13 and fp("x").startswith("#")


def test_a_difference_keeps_types_fingerprints_and_safe_values_only():
    builder = SampleBuilder(shaper("header:content-type"))
    changed = builder.difference(Difference(Kind.BODY, "$.average", 6.5, "6.5000",
                                            "type changed: float -> str"))
    assert changed["primary"] == 6.5 and changed["shadow"].startswith("«str 6 number #")
    assert changed["types"] == ["float", "str"] and changed["note"] == NOT_STORED
    assert changed["detail"] == "type changed: float -> str"
    same = builder.difference(Difference(Kind.BODY, "$.n", 3.0, "3.0"))
    assert same["fingerprints"][0] == same["fingerprints"][1]
    flag = builder.difference(Difference(Kind.BODY, "$.calm", 1, True))
    assert (flag["primary"], flag["shadow"]) == (1, True) and "note" not in flag
    header = builder.difference(Difference(Kind.HEADER, "content-type", "text/html",
                                           "application/json"))
    assert (header["primary"], header["shadow"]) == ("text/html", "application/json")
    status = builder.difference(Difference(Kind.STATUS, "status", 201, 500))
    assert (status["path"], status["primary"], status["shadow"]) == ("status", 201, 500)


def test_difference_paths_and_details_lose_the_values_in_them():
    builder = SampleBuilder(shaper())
    body = builder.difference(Difference(Kind.BODY, "$['jane@example.com'].phone",
                                         "+44 7700 900123", None, "missing in shadow"))
    assert body["path"].startswith("$['«key #") and body["path"].endswith("'].phone")
    assert "jane" not in orjson.dumps(body).decode() and "7700" not in orjson.dumps(body).decode()
    row = builder.difference(Difference(Kind.ROW_CHANGED, 'users["jane@example.com"].email',
                                        "jane@example.com", "JANE@example.com",
                                        "translated through the key map to 'jane@example.com'"))
    text = orjson.dumps(row).decode()
    assert "jane" not in text.lower() and row["path"].startswith("users[«str 16 #")
    assert row["path"].endswith("].email") and row["detail"] == (
        "translated through the key map to '…'")
    numeric = builder.difference(Difference(Kind.ROW_MISSING, "moods[17]",
                                            {"id": 17, "note": "sad"}, None))
    assert numeric["path"] == "moods[17]" and numeric["primary"]["id"] == 17
    assert numeric["primary"]["note"].startswith("«str 3 #")
    assert builder.detail("key: the shadow was expected to use 447700900123") == \
        "key: the shadow was expected to use «number»"

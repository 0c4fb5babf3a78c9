"""compare_replies: status, headers, body; fast path first; rules and bridge."""

import gzip
import json

import pytest

from shadow.compare import BridgeRules, ReplyRules, build_rules, compare_replies
from shadow.compare import replies as replies_module
from shadow.verdict import Kind

from .helpers import JSON, reply

PLAIN = ReplyRules()


def paths(diff):
    return [d.path for d in diff.differences]


def test_byte_identical_replies_match_without_parsing(monkeypatch):
    def no_lifting(*args, **kwargs):
        raise AssertionError("equal bytes must not be parsed")

    monkeypatch.setattr(replies_module, "lift", no_lifting)
    diff = compare_replies(reply({"a": 1}), reply({"a": 1}), PLAIN)
    assert diff.matched and diff.differences == () and diff.normalised == 0


def test_status_difference():
    diff = compare_replies(reply({}, status=200), reply({}, status=500), PLAIN)
    assert [(d.kind, d.path, d.primary, d.shadow) for d in diff.differences] == [
        (Kind.STATUS, "status", 200, 500)
    ]


def test_replies_without_an_answer_compare_by_error():
    assert compare_replies(reply(error="timeout", status=0), reply(error="timeout", status=0), PLAIN).matched
    diff = compare_replies(reply({}), reply(error="connect", status=0), PLAIN)
    assert [(d.kind, d.primary, d.shadow) for d in diff.differences] == [(Kind.STATUS, 200, "connect")]


def test_only_the_configured_headers_are_compared():
    primary = reply({}, headers=JSON + (("Date", "Mon"), ("ETag", '"1"')))
    shadow = reply({}, headers=(("content-type", "application/json"), ("Date", "Tue"), ("ETag", '"2"')))
    assert compare_replies(primary, shadow, PLAIN).matched
    diff = compare_replies(primary, shadow, build_rules(headers=["content-type", "ETag"]))
    assert [(d.kind, d.path, d.primary, d.shadow) for d in diff.differences] == [(Kind.HEADER, "etag", '"1"', '"2"')]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("application/json", "application/json", True),
        ("application/json; charset=utf-8", "Application/JSON;charset=UTF-8", True),
        ("application/json", "application/json; charset=utf-8", False),
        ("text/html", "application/json", False),
    ],
)
def test_content_type_is_compared_on_meaning(a, b, same):
    diff = compare_replies(reply({}, headers=(("Content-Type", a),)), reply({}, headers=(("Content-Type", b),)), PLAIN)
    assert diff.matched is same


def test_a_missing_header_differs_from_a_present_one():
    diff = compare_replies(reply({}, headers=()), reply({}), PLAIN)
    assert [(d.path, d.primary, d.shadow) for d in diff.differences] == [("content-type", None, "application/json")]


def test_repeated_headers_are_joined():
    rules = build_rules(headers=["vary"])
    primary = reply({}, headers=(("Vary", "a"), ("Vary", "b")))
    assert compare_replies(primary, reply({}, headers=(("Vary", "a, b"),)), rules).matched
    assert not compare_replies(primary, reply({}, headers=(("Vary", "b, a"),)), rules).matched


def test_equal_documents_in_another_key_order_and_layout_match():
    doc = {"user": {"id": 1, "name": "Ada"}, "entries": [{"a": 1, "b": [True, None, "x"]}]}
    other = json.dumps({"entries": [{"b": [True, None, "x"], "a": 1}], "user": {"name": "Ada", "id": 1}}, indent=2)
    diff = compare_replies(reply(doc), reply(other.encode()), PLAIN)
    assert diff.matched and diff.normalised == 0


@pytest.mark.parametrize(("a", "b"), [(True, 1), (False, 0), (1.0, True), (True, "true"), (None, 0), ("", None)])
def test_booleans_nulls_and_numbers_are_never_confused(a, b):
    diff = compare_replies(reply({"a": a}), reply({"a": b}), PLAIN)
    assert [(d.path, d.primary, d.shadow) for d in diff.differences] == [("$.a", a, b)]
    assert diff.differences[0].detail.startswith("type changed")


def test_booleans_in_a_list_of_scalars_are_never_confused():
    diff = compare_replies(reply([True, 2, 3]), reply([1, 2, 3, 4]), PLAIN)
    assert paths(diff) == ["$[0]", "$[3]"]


def test_an_integer_and_its_float_are_one_json_number():
    diff = compare_replies(reply({"a": 15, "b": [2]}), reply(b'{"a": 15.0, "b": [2.0]}'), PLAIN)
    assert diff.matched
    assert diff.normalised == 2


def test_differences_have_exact_paths_kinds_and_values():
    primary = {"entries": [{"score": 4}, {"score": 5}], "odd key": {"x": 1}, "gone": 1}
    shadow = {"entries": [{"score": 4}, {"score": 6}], "odd key": {"x": "1"}, "new": 2}
    diff = compare_replies(reply(primary), reply(shadow), PLAIN)
    assert [(d.kind, d.path, d.primary, d.shadow, d.detail) for d in diff.differences] == [
        (Kind.BODY, "$.entries[1].score", 5, 6, "changed"),
        (Kind.BODY, "$.gone", 1, None, "missing in shadow"),
        (Kind.BODY, "$.new", None, 2, "missing in primary"),
        (Kind.BODY, "$['odd key'].x", 1, "1", "type changed: number -> string"),
    ]


def test_an_insertion_reads_as_one_insertion():
    diff = compare_replies(reply({"ids": [1, 2, 3, 4]}), reply({"ids": [0, 1, 2, 3, 4]}), PLAIN)
    assert [(d.path, d.primary, d.shadow, d.detail) for d in diff.differences] == [
        ("$.ids[0]", None, 0, "missing in primary")
    ]


def test_container_shape_changes():
    diff = compare_replies(reply({"a": {"x": 1}, "b": [1]}), reply({"a": [1], "b": None}), PLAIN)
    assert [(d.path, d.detail) for d in diff.differences] == [
        ("$.a", "type changed: object -> array"),
        ("$.b", "type changed: array -> null"),
    ]


def test_root_scalars():
    assert paths(compare_replies(reply(1), reply(2), PLAIN)) == ["$"]


def test_ignored_paths_hide_exactly_their_paths():
    rules = build_rules(ignore_paths=["$.meta.request_id", "$.items[*].updated_at", "$..etag"])
    primary = {"meta": {"request_id": "a", "v": 1}, "items": [{"updated_at": 1, "n": 1}], "x": {"y": {"etag": 1}}}
    shadow = {"meta": {"request_id": "b", "v": 1}, "items": [{"updated_at": 2, "n": 1}], "x": {"y": {"etag": 2}}}
    assert compare_replies(reply(primary), reply(shadow), rules).matched
    shadow["meta"]["v"] = 2
    shadow["items"][0]["n"] = 2
    assert paths(compare_replies(reply(primary), reply(shadow), rules)) == ["$.items[0].n", "$.meta.v"]


def test_an_ignored_member_may_be_missing_on_one_side():
    rules = build_rules(ignore_paths=["$.debug"])
    assert compare_replies(reply({"a": 1, "debug": {}}), reply({"a": 1}), rules).matched


def test_an_ignored_array_element_keeps_the_others_in_place():
    rules = build_rules(ignore_paths=["$.a[0]"])
    assert compare_replies(reply({"a": [1, 2]}), reply({"a": [9, 2]}), rules).matched
    assert paths(compare_replies(reply({"a": [1, 2]}), reply({"a": [9, 3]}), rules)) == ["$.a[1]"]


def test_ignoring_the_root_ignores_any_body():
    rules = build_rules(ignore_paths=["$"])
    assert compare_replies(reply(b"<p>a</p>", headers=()), reply(b"<p>b</p>", headers=()), rules).matched
    assert not compare_replies(reply({}, status=200), reply({}, status=201), rules).matched


def test_unordered_arrays_compare_as_multisets():
    rules = build_rules(unordered_paths=["$.tags", "$.items"])
    primary = {"tags": ["a", "b", "c"], "items": [{"id": 1, "t": ["x"]}, {"id": 2, "t": []}]}
    shadow = {"tags": ["c", "a", "b"], "items": [{"t": [], "id": 2}, {"id": 1, "t": ["x"]}]}
    assert compare_replies(reply(primary), reply(shadow), rules).matched
    assert not compare_replies(reply(primary), reply(shadow), PLAIN).matched


def test_unordered_arrays_count_duplicates():
    rules = build_rules(unordered_paths=["$.a"])
    diff = compare_replies(reply({"a": [1, 1, 2]}), reply({"a": [2, 1, 2]}), rules)
    assert [(d.path, d.primary, d.shadow, d.detail) for d in diff.differences] == [
        ("$.a", 1, None, "missing in shadow (unordered array)"),
        ("$.a", None, 2, "missing in primary (unordered array)"),
    ]


def test_unordered_arrays_of_different_lengths():
    rules = build_rules(unordered_paths=["$.a"])
    diff = compare_replies(reply({"a": [3, 1]}), reply({"a": [1, 2, 3]}), rules)
    assert [(d.path, d.shadow) for d in diff.differences] == [("$.a", 2)]


def test_unordered_elements_honour_tolerance_bridge_and_ignore_rules():
    rules = build_rules(
        unordered_paths=["$.a"],
        ignore_paths=["$.a[*].ts"],
        numeric_tolerance=0.01,
        bridge=BridgeRules(bool_int=True),
    )
    primary = {"a": [{"v": 4.5, "ok": True, "ts": 1}, {"v": 10, "ok": False, "ts": 2}]}
    shadow = {"a": [{"v": 10, "ok": 0, "ts": 9}, {"v": 4.501, "ok": 1, "ts": 8}]}
    diff = compare_replies(reply(primary), reply(shadow), rules)
    assert diff.matched
    assert diff.normalised == 3


def test_unordered_pattern_with_wildcards_inside_elements():
    rules = build_rules(unordered_paths=["$.items[*].tags"])
    primary = {"items": [{"tags": [1, 2]}, {"tags": [3, 4]}]}
    assert compare_replies(reply(primary), reply({"items": [{"tags": [2, 1]}, {"tags": [4, 3]}]}), rules).matched
    assert not compare_replies(reply(primary), reply({"items": [{"tags": [3, 4]}, {"tags": [1, 2]}]}), rules).matched


def test_numeric_tolerance_is_absolute():
    rules = build_rules(numeric_tolerance=0.01)
    assert compare_replies(reply({"a": 0.30000000000000004}), reply({"a": 0.3}), rules).normalised == 1
    assert paths(compare_replies(reply({"a": 4.5}), reply({"a": 4.52}), rules)) == ["$.a"]
    assert paths(compare_replies(reply({"a": True}), reply({"a": 1}), rules)) == ["$.a"]


def test_time_tolerance_applies_to_timestamps_written_the_same_way():
    rules = build_rules(time_tolerance=2)
    same_shape = compare_replies(reply({"t": "2026-02-04 15:47:20"}), reply({"t": "2026-02-04 15:47:21"}), rules)
    assert same_shape.matched and same_shape.normalised == 1
    assert not compare_replies(reply({"t": "2026-02-04 15:47:20"}), reply({"t": "2026-02-04 15:47:23"}), rules).matched
    other_shape = compare_replies(reply({"t": "2026-02-04 15:47:20"}), reply({"t": "2026-02-04T15:47:21+00:00"}), rules)
    assert not other_shape.matched


BRIDGED = [
    ("bool_int", True, 1),
    ("bool_int", False, 0),
    ("timestamps", "2026-02-04 15:47:20", "2026-02-04T15:47:20+00:00"),
    ("timestamps", "2026-02-04 16:47:20+01:00", "2026-02-04T15:47:20Z"),
    ("numeric_strings", "4.5", 4.5),
    ("numeric_strings", "4.50", "4.5"),
    ("numeric_strings", 15, "15"),
    ("empty_null", "", None),
    ("empty_null", None, ""),
]


@pytest.mark.parametrize(("flag", "a", "b"), BRIDGED)
def test_each_bridge_rule_is_off_by_default_and_counted_when_on(flag, a, b):
    assert paths(compare_replies(reply({"v": a}), reply({"v": b}), PLAIN)) == ["$.v"]
    rules = build_rules(bridge=BridgeRules(**{flag: True}))
    diff = compare_replies(reply({"v": a}), reply({"v": b}), rules)
    assert diff.matched
    assert diff.normalised == 1


@pytest.mark.parametrize(
    ("flag", "a", "b"),
    [
        ("bool_int", True, 2),
        ("bool_int", True, "1"),
        ("timestamps", "2026-02-04 15:47:20", "2026-02-04T15:47:21+00:00"),
        ("numeric_strings", "4.5x", 4.5),
        ("numeric_strings", " 4.5", 4.5),
        ("empty_null", " ", None),
        ("empty_null", "", 0),
    ],
)
def test_bridge_rules_do_not_hide_real_differences(flag, a, b):
    rules = build_rules(bridge=BridgeRules(**{flag: True}))
    assert paths(compare_replies(reply({"v": a}), reply({"v": b}), rules)) == ["$.v"]


def test_text_bodies_report_one_difference_with_an_excerpt():
    html = (("Content-Type", "text/html"),)
    before = "<html>\n<body>\n" + "x" * 100 + "<p>Hello Ada</p>" + "y" * 200
    after = before.replace("Ada", "Bob")
    diff = compare_replies(reply(before.encode(), headers=html), reply(after.encode(), headers=html), PLAIN)
    [d] = diff.differences
    assert (d.kind, d.path) == (Kind.BODY, "$")
    assert d.primary.startswith("…") and d.primary.endswith("…")
    assert "Hello Ada" in d.primary and "Hello Bob" in d.shadow
    assert d.detail == f"text differs at line 3, column 110 (character {before.index('Ada')})"


def test_a_shorter_text_differs_where_it_ends():
    text = (("Content-Type", "text/plain"),)
    [d] = compare_replies(reply(b"abc", headers=text), reply(b"abcdef", headers=text), PLAIN).differences
    assert d.detail.startswith("text differs at line 1, column 4 (character 3)")


def test_scrubbers_hide_tokens_in_text():
    html = (("Content-Type", "text/html"),)
    rules = build_rules(scrubbers=[(r'value="[0-9a-f]{8}"', 'value="…"')])
    a = reply(b'<input value="deadbeef"><p>1</p>', headers=html)
    b = reply(b'<input value="0badf00d"><p>1</p>', headers=html)
    assert compare_replies(a, b, rules).matched
    c = reply(b'<input value="0badf00d"><p>2</p>', headers=html)
    assert not compare_replies(a, c, rules).matched


def test_binary_bodies_report_both_hashes():
    png = (("Content-Type", "image/png"),)
    [d] = compare_replies(reply(b"\x89PNG1", headers=png), reply(b"\x89PNG22", headers=png), PLAIN).differences
    assert d.path == "$" and d.primary.startswith("sha256:") and d.shadow.startswith("sha256:")
    assert d.detail == "bytes body of 5 bytes vs bytes body of 6 bytes"


def test_compressed_and_plain_bodies_with_one_content_match():
    body = b'{"a": [1, 2]}'
    zipped = reply(gzip.compress(body, mtime=1), headers=JSON + (("Content-Encoding", "gzip"),))
    assert compare_replies(zipped, reply(body), PLAIN).matched
    rezipped = reply(gzip.compress(b'{"a":[1,2]}', mtime=2), headers=JSON + (("Content-Encoding", "gzip"),))
    assert compare_replies(zipped, rezipped, PLAIN).matched


def test_invalid_json_on_one_side_is_a_text_difference_with_a_note():
    [d] = compare_replies(reply({"a": 1}), reply(b'{"a": 1'), PLAIN).differences
    assert d.path == "$"
    assert "shadow: not valid JSON" in d.detail


def test_differences_are_capped_and_the_cap_is_said():
    diff = compare_replies(reply(list(range(200))), reply([n + 1 for n in range(200)]), PLAIN)
    assert len(diff.differences) == replies_module.DIFFERENCE_CAP
    assert diff.differences[-1].detail.endswith("more differences not shown (at most 50 per exchange)")
    assert "more differences" not in diff.differences[-2].detail


def test_deeply_nested_documents_do_not_exhaust_the_stack():
    deep = b"[" * 1000 + b"]" * 1000
    diff = compare_replies(reply(deep), reply(deep.replace(b"[]", b"[1]")), PLAIN)
    assert len(diff.differences) == 1
    assert diff.differences[0].path.endswith("[0][0]")
    deeper = b"[" * 100_000 + b"]" * 100_000
    [d] = compare_replies(reply(deeper), reply(deeper[:-1]), PLAIN).differences
    assert d.path == "$"


def test_long_values_are_cut_in_differences():
    diff = compare_replies(reply({"a": "x" * 5000}), reply({"a": "y" * 5000}), PLAIN)
    [d] = diff.differences
    assert len(d.primary) == 501 and d.primary.endswith("…")

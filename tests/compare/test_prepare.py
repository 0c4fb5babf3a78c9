"""prepare: ignore and unordered rules applied by copy-on-write, without recursion."""

import copy

from shadow.compare.prepare import Bag, prepare, sort_key
from shadow.compare.rules import BridgeRules, build_rules


def test_no_rules_returns_the_document_itself():
    doc = {"a": [1]}
    assert prepare(doc, build_rules()) is doc


def test_ignored_members_go_and_ignored_elements_become_null():
    doc = {"a": {"x": 1, "y": 2}, "b": [1, 2, 3], "c": {"keep": 1}}
    original = copy.deepcopy(doc)
    out = prepare(doc, build_rules(ignore_paths=["$.a.x", "$.b[1]"]))
    assert out == {"a": {"y": 2}, "b": [1, None, 3], "c": {"keep": 1}}
    assert doc == original
    assert out["c"] is doc["c"]


def test_branches_no_pattern_reaches_are_shared():
    doc = {"meta": {"id": 1}, "big": [{"n": n} for n in range(100)]}
    out = prepare(doc, build_rules(ignore_paths=["$.meta.id"]))
    assert out["big"] is doc["big"]


def test_a_document_the_rules_do_not_touch_is_returned_as_is():
    doc = {"a": 1}
    assert prepare(doc, build_rules(ignore_paths=["$.zzz"])) is doc


def test_unordered_arrays_become_sorted_bags():
    out = prepare({"t": [3, 1, 2], "u": [3, 1]}, build_rules(unordered_paths=["$.t"]))
    assert type(out["t"]) is Bag and out["t"] == [1, 2, 3]
    assert type(out["u"]) is list and out["u"] == [3, 1]


def test_the_root_can_be_unordered_or_ignored():
    assert prepare([2, 1], build_rules(unordered_paths=["$"])) == [1, 2]
    assert prepare({"a": 1}, build_rules(ignore_paths=["$"])) is None


def test_nested_unordered_arrays_are_sorted_inside_out():
    rules = build_rules(unordered_paths=["$[*]", "$"])
    assert prepare([[2, 1], [0, 3]], rules) == prepare([[3, 0], [1, 2]], rules)


def test_descendant_patterns_reach_every_depth():
    doc = {"a": {"id": 1, "b": [{"id": 2, "c": 3}]}}
    assert prepare(doc, build_rules(ignore_paths=["$..id"])) == {"a": {"b": [{"c": 3}]}}


def test_sort_key_follows_the_bridge():
    assert sort_key(15) == sort_key(15.0)
    assert sort_key(True) != sort_key(1)
    bridge = BridgeRules(bool_int=True, numeric_strings=True, timestamps=True, empty_null=True)
    assert sort_key(True, bridge) == sort_key(1, bridge)
    assert sort_key("4.5", bridge) == sort_key(4.5, bridge)
    assert sort_key("15", bridge) == sort_key(15, bridge)
    assert sort_key("2026-02-04 15:47:20", bridge) == sort_key("2026-02-04T16:47:20+01:00", bridge)
    assert sort_key("", bridge) == sort_key(None, bridge)
    assert sort_key({"b": [1.0], "a": 2}) == sort_key({"a": 2, "b": [1]})


def _nested(depth: int) -> list:
    node: list = []
    for _ in range(depth):
        node = [node]
    return node


def test_sort_key_copes_with_what_orjson_refuses():
    assert sort_key(_nested(600)) == sort_key(_nested(600))
    assert sort_key(_nested(600)) != sort_key(_nested(601))
    assert sort_key({"a": 2**70}) != sort_key({"a": 2**70 + 1})


def test_deep_documents_are_prepared_without_recursion():
    doc: dict = {}
    node = doc
    for _ in range(5000):
        node["id"] = 1
        node["x"] = {}
        node = node["x"]
    out = prepare(doc, build_rules(ignore_paths=["$..id"]))
    depth = 0
    while out:
        assert "id" not in out
        out = out["x"]
        depth += 1
    assert depth == 5000

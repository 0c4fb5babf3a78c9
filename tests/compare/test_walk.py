"""Walker: rule-aware equality, exact paths, multiset matching, previews."""

import pytest

from shadow.compare import walk as walk_module
from shadow.compare.prepare import Bag, prepare
from shadow.compare.rules import BridgeRules, build_rules
from shadow.compare.walk import Walker, json_type, path_order, preview

ALL_BRIDGES = BridgeRules(bool_int=True, timestamps=True, numeric_strings=True, empty_null=True)


@pytest.mark.parametrize(
    ("a", "b", "strict", "bridged"),
    [
        (1, 1, (True, False), (True, False)),
        (1, 1.0, (True, True), (True, True)),
        (True, 1, (False, False), (True, True)),
        (True, 1.0, (False, False), (True, True)),
        (True, True, (True, False), (True, False)),
        ("4.5", 4.5, (False, False), (True, True)),
        ("", None, (False, False), (True, True)),
        ("2026-02-04 15:47:20", "2026-02-04T15:47:20Z", (False, False), (True, True)),
        ("a", "b", (False, False), (False, False)),
        (None, False, (False, False), (False, False)),
        ("1", True, (False, False), (False, False)),
    ],
)
def test_leaves_equal(a, b, strict, bridged):
    assert Walker(build_rules()).leaves_equal(a, b) == strict
    assert Walker(build_rules()).leaves_equal(b, a) == strict
    assert Walker(build_rules(bridge=ALL_BRIDGES)).leaves_equal(a, b) == bridged


def test_compare_lists_differences_in_document_order():
    walker = Walker(build_rules())
    result = walker.compare({"b": [1, 2], "a": {"z": 1, "y": 2}}, {"b": [1, 3, 4], "a": {"z": 0, "y": 2}})
    assert [d.path for d in result.differences] == ["$.a.z", "$.b[1]", "$.b[2]"]
    assert not result.more and result.resized == set()


def test_split_resized_reports_an_array_of_another_length_as_one_difference():
    walker = Walker(build_rules())
    result = walker.compare({"b": [1, 2]}, {"b": [1, 3, 4]}, split_resized=True)
    assert [(d.path, d.detail) for d in result.differences] == [("$.b", "array of 2 vs 3 elements")]
    assert result.resized == {("b",)}


def test_compare_at_a_path_prefixes_every_difference():
    result = Walker(build_rules()).compare([1], [2], at=("items", 3))
    assert result.differences[0].path == "$.items[3][0]"


def test_the_cap_stops_the_walk():
    walker = Walker(build_rules(), cap=3)
    result = walker.compare(list(range(10)), list(range(1, 11)))
    assert len(result.differences) == 3 and result.more
    assert [d.path for d in result.differences] == ["$[0]", "$[1]", "$[2]"]


def test_bags_pair_elements_within_tolerance():
    rules = build_rules(unordered_paths=["$"], numeric_tolerance=0.1)
    walker = Walker(rules)
    a = prepare([4.49, 4.6, 10], rules)
    b = prepare([10, 4.55, 4.5], rules)
    assert walker.equal(a, b) == (True, 2)


def test_large_bags_are_matched_by_key(monkeypatch):
    monkeypatch.setattr(walk_module, "MATCH_BUDGET", 4)
    rules = build_rules(unordered_paths=["$"])
    walker = Walker(rules)
    result = walker.compare(prepare([1, 2, 3], rules), prepare([3, 2, 4], rules))
    assert [(d.primary, d.shadow) for d in result.differences] == [(1, None), (None, 4)]


def test_bag_differences_name_the_lonely_elements():
    walker = Walker(build_rules())
    entries = walker.bag_differences(("t",), Bag(["a", "b"]), Bag(["b", "c"]))
    assert [(path, d.path, d.primary, d.shadow) for path, d in entries] == [
        (("t",), "$.t", "a", None),
        (("t",), "$.t", None, "c"),
    ]


def test_json_types_and_previews():
    assert [json_type(v) for v in (None, True, 1, 1.5, "", {}, [], Bag())] == [
        "null", "boolean", "number", "number", "string", "object", "array", "array",
    ]
    assert preview(Bag([1])) == [1] and type(preview(Bag([1]))) is list
    long = preview({"k": "v" * 1000})
    assert isinstance(long, str) and long.startswith('{"k":"vvv') and long.endswith("…")


def test_path_order_sorts_indices_numerically():
    assert sorted([("a", 10), ("a", 9), ("a", "x")], key=path_order) == [("a", 9), ("a", 10), ("a", "x")]

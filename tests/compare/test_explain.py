"""explain: DeepDiff aligns resized arrays under the Walker's rules, else the Walker speaks."""

from shadow.compare import explain as explain_module
from shadow.compare.explain import explain
from shadow.compare.prepare import prepare
from shadow.compare.rules import BridgeRules, build_rules
from shadow.compare.walk import Walker


def described(a, b, rules=None, **kwargs):
    rules = rules or build_rules()
    walker = Walker(rules)
    return [
        (d.path, d.primary, d.shadow, d.detail)
        for d in explain(prepare(a, rules), prepare(b, rules), walker=walker, **kwargs)
    ]


def test_equal_documents_have_nothing_to_explain():
    assert described({"a": 1}, {"a": 1}) == []


def test_an_insertion_and_a_removal_in_a_list_of_scalars():
    assert described({"ids": [1, 2, 3]}, {"ids": [0, 1, 2, 3]}) == [("$.ids[0]", None, 0, "missing in primary")]
    assert described({"ids": [1, 2, 3]}, {"ids": [1, 3]}) == [("$.ids[1]", 2, None, "missing in shadow")]


def test_booleans_stay_apart_from_numbers_inside_deepdiff():
    assert described([True, 2, 3], [1, 2, 3, 4]) == [
        ("$[0]", True, 1, "type changed: boolean -> number"),
        ("$[3]", None, 4, "missing in primary"),
    ]
    [(path, primary, shadow, detail)] = described([True, False], [True, True, False])
    assert (primary, shadow, detail) == (None, True, "missing in primary")


def test_the_rules_hold_inside_resized_arrays():
    rules = build_rules(numeric_tolerance=0.01, bridge=BridgeRules(bool_int=True), unordered_paths=["$[*].t"])
    a = [{"v": 4.5, "ok": True, "t": [1, 2]}, 7]
    b = [{"v": 4.501, "ok": 1, "t": [2, 1]}, 7, 8]
    assert described(a, b, rules) == [("$[2]", None, 8, "missing in primary")]


def test_unordered_arrays_inside_resized_arrays_are_explained_as_multisets():
    rules = build_rules(unordered_paths=["$[*].t"])
    assert described([{"t": [1, 2]}], [{"t": [3, 1]}, {}], rules) == [
        ("$[0].t", 2, None, "missing in shadow (unordered array)"),
        ("$[0].t", None, 3, "missing in primary (unordered array)"),
        ("$[1]", None, {}, "missing in primary"),
    ]


def test_a_deepdiff_failure_falls_back_to_the_walker(monkeypatch):
    def broken(*args, **kwargs):
        raise RecursionError("boom")

    monkeypatch.setattr(explain_module, "DeepDiff", broken)
    assert described({"ids": [1, 2, 3]}, {"ids": [0, 1, 2, 3]}) == [
        ("$.ids[0]", 1, 0, "changed"),
        ("$.ids[1]", 2, 1, "changed"),
        ("$.ids[2]", 3, 2, "changed"),
        ("$.ids[3]", None, 3, "missing in primary"),
    ]


def test_large_or_deep_arrays_are_not_given_to_deepdiff(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("DeepDiff must not run")

    monkeypatch.setattr(explain_module, "DeepDiff", forbidden)
    assert len(described(list(range(10)), list(range(11)), max_nodes=5)) == 1
    assert len(described(["x" * 600_000], ["y", "x" * 600_000])) == 2
    deep: list = [1]
    for _ in range(60):
        deep = [deep]
    assert described([deep], [deep, 2]) == [("$[1]", None, 2, "missing in primary")]


def test_differences_outside_resized_arrays_are_the_walkers():
    assert described({"a": 1, "l": [1]}, {"a": 2, "l": [1, 2]}) == [
        ("$.a", 1, 2, "changed"),
        ("$.l[1]", None, 2, "missing in primary"),
    ]


def test_the_cap_holds_across_resized_arrays():
    rules = build_rules()
    walker = Walker(rules, cap=5)
    out = explain([list(range(10)), list(range(10))], [list(range(1, 10)), [9] * 11], walker=walker)
    assert len(out) == 5
    assert out[-1].detail.endswith("(at most 5 per exchange)")

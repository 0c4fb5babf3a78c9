"""Rules compile once; every problem is reported at once, with its location."""

import dataclasses

import pytest

from shadow.compare.jsonpath import compile_pattern
from shadow.compare.rules import BridgeRules, ReplyRules, RulesError, build_rules


def test_defaults_compare_content_type_and_nothing_else_is_relaxed():
    rules = build_rules()
    assert rules == ReplyRules()
    assert rules.headers == ("content-type",)
    assert rules.bridge == BridgeRules()
    assert not any(dataclasses.astuple(rules.bridge))
    assert not rules.ignores_body


def test_build_rules_compiles_everything():
    rules = build_rules(
        headers=["Content-Type", "ETag", "content-type"],
        ignore_paths=["$.meta.request_id", "$..updated_at", "$.meta.request_id"],
        unordered_paths=["$.tags"],
        numeric_tolerance=0.01,
        time_tolerance=2,
        scrubbers=[(r"csrf=\w+", "csrf=X")],
        bridge=BridgeRules(bool_int=True),
    )
    assert rules.headers == ("content-type", "etag")
    assert [p.text for p in rules.ignore_paths] == ["$.meta.request_id", "$..updated_at"]
    assert rules.unordered_set.matches(("tags",))
    assert rules.ignore_set.matches(("a", 3, "updated_at"))
    assert rules.time_tolerance == 2.0 and isinstance(rules.time_tolerance, float)
    assert rules.scrubbers[0].apply("a csrf=abc1 b") == "a csrf=X b"
    hash(rules)


def test_every_problem_is_listed_with_its_location():
    with pytest.raises(RulesError) as info:
        build_rules(
            headers=["ok", "bad name"],
            ignore_paths=["$.ok", "no-dollar"],
            unordered_paths=["$.a["],
            numeric_tolerance=-1,
            time_tolerance=float("nan"),
            scrubbers=[("(", "x"), ("a", r"\1"), ("only one",)],
        )
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "headers[1]",
        "ignore_paths[1]",
        "unordered_paths[0]",
        "numeric_tolerance",
        "time_tolerance",
        "scrubbers[0]",
        "scrubbers[1]",
        "scrubbers[2]",
    ]
    assert isinstance(info.value, ValueError)
    assert "bad JSON path 'no-dollar'" in str(info.value)


@pytest.mark.parametrize("value", [True, "1", None, float("inf")])
def test_tolerances_must_be_finite_numbers(value):
    with pytest.raises(RulesError, match="numeric_tolerance"):
        build_rules(numeric_tolerance=value)


def test_a_string_where_a_list_is_expected_is_reported():
    with pytest.raises(RulesError) as info:
        build_rules(headers="content-type", ignore_paths="$.a")
    assert len(info.value.problems) == 2


def test_with_overrides_adds_route_patterns_to_the_global_ones():
    rules = build_rules(ignore_paths=["$.a"], unordered_paths=["$.u"])
    route = rules.with_overrides(ignore_paths=["$.b", compile_pattern("$.a")], unordered_paths=["$.v"])
    assert [p.text for p in route.ignore_paths] == ["$.a", "$.b"]
    assert [p.text for p in route.unordered_paths] == ["$.u", "$.v"]
    assert route.ignore_set.matches(("b",)) and not rules.ignore_set.matches(("b",))
    assert rules.with_overrides() is rules
    with pytest.raises(ValueError):
        rules.with_overrides(ignore_paths=["nope"])


def test_ignoring_the_root_ignores_the_whole_body():
    assert build_rules(ignore_paths=["$"]).ignores_body

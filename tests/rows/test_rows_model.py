"""RowRules and ColumnRule: table selection, rule lookup, validation."""

import pytest

from shadow.compare.bridge import ValueKind
from shadow.rows.model import ColumnRule, RowRules


def test_include_and_exclude_are_case_insensitive():
    rules = RowRules.build(include=["Entries", "users"], exclude=["USERS"])
    assert rules.covers("entries")
    assert not rules.covers("users")
    assert not rules.covers("sessions")
    assert RowRules().covers("anything")


def test_exact_rule_wins_over_wildcard_and_default_applies_elsewhere():
    exact = ColumnRule(tolerance=0.5)
    rules = RowRules.build(columns={"*.updated_at": ColumnRule(ignore=True),
                                    "Entries.Updated_At": exact})
    assert rules.rule("entries", "updated_at") is exact
    assert rules.rule("users", "UPDATED_AT").ignore
    assert rules.rule("users", "name") == ColumnRule()


def test_malformed_entries_are_reported_together():
    with pytest.raises(ValueError) as info:
        RowRules.build(columns={"nodot": ColumnRule(), ".x": ColumnRule(), "t.c": ColumnRule()})
    assert "'nodot'" in str(info.value) and "'.x'" in str(info.value)


def test_column_rule_validation():
    assert ColumnRule(kind=ValueKind.TIMESTAMP).kind == ValueKind.TIMESTAMP
    with pytest.raises(ValueError):
        ColumnRule(kind=ValueKind.TEXT)
    with pytest.raises(ValueError):
        ColumnRule(tolerance=-1)

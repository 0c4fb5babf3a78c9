"""Paths render unambiguously; patterns compile once, match exactly, and fail clearly."""

import pytest

from shadow.compare.jsonpath import PatternSet, compile_pattern, parse_path, render_path


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "$"),
        (("key",), "$.key"),
        (("odd key",), "$['odd key']"),
        (("items", 3, "score"), "$.items[3].score"),
        (("3",), "$['3']"),
        (("it's",), "$['it\\'s']"),
        (("back\\slash",), "$['back\\\\slash']"),
        (("a-b", 0), "$['a-b'][0]"),
    ],
)
def test_render_path(path, text):
    assert render_path(path) == text
    assert parse_path(text) == path


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("$", (), True),
        ("$", ("a",), False),
        ("$.a", ("a",), True),
        ("$.a", ("a", "b"), False),
        ("$.a", ("b",), False),
        ("$.items[*].score", ("items", 0, "score"), True),
        ("$.items[*].score", ("items", 17, "score"), True),
        ("$.items[*].score", ("items", "0", "score"), False),
        ("$.items[2]", ("items", 2), True),
        ("$.items[2]", ("items", 3), False),
        ("$.*", ("anything",), True),
        ("$.*", (0,), False),
        ("$.*.id", ("user", "id"), True),
        ("$..id", ("id",), True),
        ("$..id", ("a", 3, "b", "id"), True),
        ("$..id", ("a", "id", "b"), False),
        ("$.a..id", ("a", "x", "id"), True),
        ("$.a..id", ("b", "x", "id"), False),
        ("$..[*]", ("a", 1), True),
        ("$..['odd key']", ("x", "odd key"), True),
        ("$['odd key'].x", ("odd key", "x"), True),
        ('$["dq"]', ("dq",), True),
        ("$..a..b", ("a", "x", "y", "b"), True),
        ("$..a..b", ("b", "a"), False),
        ("$.content-type", ("content-type",), True),
    ],
)
def test_pattern_matches(pattern, path, expected):
    compiled = compile_pattern(pattern)
    assert compiled.matches(path) is expected
    assert PatternSet([compiled]).matches(path) is expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected '$' at position 0"),
        ("a.b", "expected '$' at position 0"),
        ("$.", "expected a key name or '*'"),
        ("$..", "expected a key name or '*' or '['"),
        ("$.a[", "expected an index, '*' or a quoted key at position 4"),
        ("$.a[x]", "expected an index, '*' or a quoted key"),
        ("$.a[1", "expected ']'"),
        ("$.a[-1]", "negative index"),
        ("$.a['b]", "a closing '"),
        ("$.a['b\\x']", "after a backslash"),
        ("$a", "expected '.' or '['"),
        ("$.a b", "expected '.' or '['"),
        ("$.[0]", "expected a key name"),
    ],
)
def test_bad_patterns_say_what_and_where(text, fragment):
    with pytest.raises(ValueError) as info:
        compile_pattern(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_a_non_string_pattern_is_a_value_error():
    with pytest.raises(ValueError, match="must be a string"):
        compile_pattern(3)  # type: ignore[arg-type]


def test_parse_path_refuses_wildcards():
    with pytest.raises(ValueError, match="wildcards"):
        parse_path("$.items[*]")


def test_pattern_set_steps_and_stops_early():
    patterns = PatternSet([compile_pattern("$.a.b"), compile_pattern("$.c[*]")])
    state = patterns.step(patterns.initial, "a")
    assert state and not patterns.accepts(state)
    assert patterns.accepts(patterns.step(state, "b"))
    assert patterns.step(patterns.initial, "zzz") == ()
    assert patterns.accepts(patterns.step(patterns.step(patterns.initial, "c"), 5))
    assert not PatternSet([])


def test_pattern_repr_and_str_show_the_text():
    pattern = compile_pattern("$.a[*]")
    assert str(pattern) == "$.a[*]"
    assert repr(pattern) == "Pattern(text='$.a[*]')"
    assert not pattern.concrete
    assert compile_pattern("$.a[0]").concrete

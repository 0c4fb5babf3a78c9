"""Properties of compare_replies over generated documents, rules and bytes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shadow.compare import BridgeRules, ReplyDiff, build_rules, compare_replies, render_path
from shadow.compare.jsonpath import compile_pattern

from .helpers import replaced, reply

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
    | TEXT
)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=40,
)
PATTERNS = st.sampled_from(["$", "$.a", "$[*]", "$.*", "$..a", "$..[*]", "$[0]", "$.*[*]", "$['']", "$..*"])
RULES = st.builds(
    lambda ignore, unordered, num, time, flags: build_rules(
        ignore_paths=ignore,
        unordered_paths=unordered,
        numeric_tolerance=num,
        time_tolerance=time,
        bridge=BridgeRules(*flags),
    ),
    st.lists(PATTERNS, max_size=2),
    st.lists(PATTERNS, max_size=2),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([0.0, 2.0]),
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
RELAXED = st.builds(
    lambda num, time, flags: build_rules(numeric_tolerance=num, time_tolerance=time, bridge=BridgeRules(*flags)),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([0.0, 2.0]),
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
SETTINGS = settings(max_examples=300, deadline=None)


def reordered(value: Any) -> Any:
    """The same document with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


def leaves(doc: Any, path: tuple = ()) -> list[tuple]:
    """Paths of the scalar leaves of `doc`."""
    if isinstance(doc, dict):
        return [p for key, child in doc.items() for p in leaves(child, path + (key,))]
    if isinstance(doc, list):
        return [p for index, child in enumerate(doc) for p in leaves(child, path + (index,))]
    return [path]


def changed(value: Any) -> Any:
    """A leaf value that differs from `value` under any bridge rule and under tolerances
    below 1 (number or second)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "~"
    return value + 1



def value_at(doc: Any, path: tuple) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@SETTINGS
@given(DOCS, RULES)
def test_a_document_always_matches_itself(doc, rules):
    primary = reply(doc)
    shadow = reply(json.dumps(reordered(doc), indent=1, ensure_ascii=True).encode())
    diff = compare_replies(primary, shadow, rules)
    assert diff.matched, diff.differences


@SETTINGS
@given(DOCS, RELAXED, st.data())
def test_a_single_changed_leaf_is_found_at_its_exact_path(doc, rules, data):
    paths = leaves(doc)
    assume(paths)
    path = data.draw(st.sampled_from(paths))
    old = value_at(doc, path)
    new = changed(old)
    diff = compare_replies(reply(doc), reply(replaced(doc, path, new)), rules)
    assert [(d.path, d.primary, d.shadow) for d in diff.differences] == [(render_path(path), old, new)]


def generalised(path: tuple, choices: list[int]) -> str:
    """A pattern selecting `path`, with some steps replaced by wildcards or `..`."""
    parts = ["$"]
    for step, choice in zip(path, choices):
        if isinstance(step, int):
            parts.append("[*]" if choice == 1 else f"[{step}]")
        else:
            quoted = "['" + step.replace("\\", "\\\\").replace("'", "\\'") + "']"
            parts.append({1: ".*", 2: ".." + quoted}.get(choice, quoted))
    return "".join(parts)


def covered(pattern, path: tuple) -> bool:
    return any(pattern.matches(path[:n]) for n in range(len(path) + 1))


@SETTINGS
@given(DOCS, st.data())
def test_an_ignore_rule_never_hides_a_difference_outside_its_paths(doc, data):
    paths = leaves(doc)
    assume(len(paths) >= 2)
    ignored, kept = data.draw(st.lists(st.sampled_from(paths), min_size=2, max_size=2, unique=True))
    text = generalised(ignored, data.draw(st.lists(st.integers(0, 2), min_size=len(ignored), max_size=len(ignored))))
    pattern = compile_pattern(text)
    shadow = replaced(replaced(doc, ignored, changed(value_at(doc, ignored))), kept, changed(value_at(doc, kept)))
    diff = compare_replies(reply(doc), reply(shadow), build_rules(ignore_paths=[text]))
    reported = {d.path for d in diff.differences}
    assert render_path(ignored) not in reported
    if not covered(pattern, kept):
        assert reported == {render_path(kept)}
    else:
        assert reported == set()


ENCODINGS = st.sampled_from([None, "gzip", "deflate", "br", "zstd", "gzip, br", "identity", ""])
TYPES = st.sampled_from([None, "application/json", "text/html; charset=latin-1", "image/png", "text/plain; charset=nope"])


def nesting(depth: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    if opener == b"{":
        return b'{"a":' * depth + b"1" + closer * depth
    return opener * depth + closer * depth


BODIES = (
    st.binary(max_size=300)
    | st.builds(nesting, st.integers(0, 3000), st.sampled_from([b"[", b"{"]))
    | st.builds(lambda b: gzip.compress(b, mtime=0), st.binary(max_size=100))
    | st.builds(orjson.dumps, DOCS)
)


@SETTINGS
@given(BODIES, BODIES, TYPES, TYPES, ENCODINGS, ENCODINGS, RULES)
def test_no_input_raises(body_a, body_b, type_a, type_b, encoding_a, encoding_b, rules):
    def headers(content_type, encoding):
        out = []
        if content_type is not None:
            out.append(("Content-Type", content_type))
        if encoding is not None:
            out.append(("Content-Encoding", encoding))
        return tuple(out)

    primary = reply(body_a, headers=headers(type_a, encoding_a))
    shadow = reply(body_b, headers=headers(type_b, encoding_b))
    diff = compare_replies(primary, shadow, rules)
    assert isinstance(diff, ReplyDiff)
    assert all(isinstance(d.path, str) for d in diff.differences)
    assert compare_replies(shadow, primary, rules).matched is diff.matched


@SETTINGS
@given(DOCS, DOCS, RULES)
def test_the_verdict_is_symmetric_and_explanations_exist_for_every_mismatch(a, b, rules):
    forward = compare_replies(reply(a), reply(b), rules)
    backward = compare_replies(reply(b), reply(a), rules)
    assert forward.matched is backward.matched
    assert len(forward.differences) <= 50

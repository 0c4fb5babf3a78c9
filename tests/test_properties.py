"""Properties of comparing, beyond those of tests/compare/test_properties.py.

That module already covers, for `compare_replies` over generated JSON documents: a
document matches itself (reordered and re-laid-out, under any rules), a single changed
leaf is found at its exact path, an ignore rule never hides a difference outside its
paths, and no input (random bytes, encodings, content types, deep nesting) raises. This
one adds what those leave open:

  - a permutation of an unordered array always matches, and a changed element is still
    found there;
  - status and compared headers: a reply matches a copy that differs only in header-name
    case, whitespace and uncompared headers; a changed status or compared header is
    always found, by name;
  - text bodies: one changed character is reported where it is; a scrubber never hides a
    change it does not match;
  - the verifier as a whole: any pair of replies (random bytes, statuses, headers,
    errors) is concluded with a verdict that agrees with `compare_replies`, without an
    internal error, and its sample is JSON and never shows a string value, whatever
    its key.
"""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shadow.compare import build_rules, compare_replies
from shadow.metrics import Metrics
from shadow.privacy import SampleBuilder
from shadow.privacy.fingerprint import Fingerprinter
from shadow.privacy.keep import KeepRules
from shadow.privacy.shapes import Shaper
from shadow.routes import RoutePolicy
from shadow.verdict import Exchange, Kind, Reply, Verdict
from tests.compare.helpers import replaced
from shadow.verifier import Verifier

SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**53), 2**53)
           | st.floats(-1e12, 1e12, allow_nan=False) | TEXT)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=25,
)
JSON = (("Content-Type", "application/json"),)


def _reply(body, headers=JSON, status: int = 200, error: str | None = None) -> Reply:
    if not isinstance(body, bytes):
        body = orjson.dumps(body)
    return Reply(status, tuple(headers), body, 0.01, error)


def _changed(value):
    """A leaf value that differs from `value` under the default (strict) rules."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "~"
    return value + 1


def _leaves(doc, path=()):
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _leaves(v, path + (k,))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _leaves(v, path + (i,))]
    return [path]



def _at(doc, path):
    for step in path:
        doc = doc[step]
    return doc


# --- unordered arrays -------------------------------------------------------------------


@SETTINGS
@given(st.lists(DOCS, min_size=1, max_size=6), st.randoms(use_true_random=False), st.data())
def test_a_permuted_unordered_array_matches_and_a_changed_element_is_found(items, rnd, data):
    rules = build_rules(unordered_paths=["$.items"])
    permuted = list(items)
    rnd.shuffle(permuted)
    assert compare_replies(_reply({"items": items}), _reply({"items": permuted}), rules).matched

    index = data.draw(st.integers(0, len(items) - 1))
    paths = _leaves(items[index])
    changed = list(items)
    if paths:
        leaf = data.draw(st.sampled_from(paths))
        changed[index] = replaced(items[index], leaf, _changed(_at(items[index], leaf)))
    else:  # an empty array or object
        changed[index] = 0
    rnd.shuffle(changed)
    diff = compare_replies(_reply({"items": items}), _reply({"items": changed}), rules)
    assert diff.differences
    assert {d.path for d in diff.differences} <= {"$.items"}
    assert {d.detail for d in diff.differences} <= {
        "missing in shadow (unordered array)", "missing in primary (unordered array)"}


# --- status and headers -----------------------------------------------------------------

HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                        max_size=12)
OTHER_HEADERS = st.lists(st.tuples(st.sampled_from(["X-Request-Id", "Date", "Server", "Set-Cookie"]),
                                   HEADER_VALUES), max_size=3)


def _respell(name: str, value: str, upper: bool) -> tuple[str, str]:
    """The same header as another server might write it: name case and whitespace."""
    return (name.upper() if upper else name.lower()), "  " + value.replace(" ", "   ") + " "


@SETTINGS
@given(st.integers(100, 599), HEADER_VALUES, st.lists(HEADER_VALUES, min_size=1, max_size=3),
       OTHER_HEADERS, OTHER_HEADERS, DOCS, st.booleans())
def test_header_spelling_and_uncompared_headers_never_make_a_difference(
        status, etag, words, extra_a, extra_b, doc, upper):
    rules = build_rules(headers=["content-type", "etag", "x-version"])
    version = " ".join(words)
    mine = [("Content-Type", "application/json"), ("ETag", etag), ("X-Version", version)]
    theirs = [_respell("Content-Type", "Application/JSON", upper), _respell("ETag", etag, upper),
              _respell("X-Version", version, upper)]
    primary = _reply(doc, mine + extra_a, status)
    shadow = _reply(orjson.dumps(doc, option=orjson.OPT_INDENT_2), theirs + extra_b, status)
    assert compare_replies(primary, shadow, rules).matched


@SETTINGS
@given(st.integers(100, 599), st.integers(100, 599), HEADER_VALUES, HEADER_VALUES, DOCS)
def test_a_changed_status_or_compared_header_is_always_found_by_name(s1, s2, v1, v2, doc):
    rules = build_rules(headers=["content-type", "etag"])
    primary = _reply(doc, JSON + (("ETag", v1),), s1)
    shadow = _reply(doc, JSON + (("ETag", v2),), s2)
    found = {(d.kind, d.path, d.primary, d.shadow)
             for d in compare_replies(primary, shadow, rules).differences}
    expected = set()
    if s1 != s2:
        expected.add((Kind.STATUS, "status", s1, s2))
    if v1 != v2:
        expected.add((Kind.HEADER, "etag", v1, v2))
    assert found == expected


# --- text bodies ------------------------------------------------------------------------

PLAIN = (("Content-Type", "text/plain; charset=utf-8"),)
CHARS = st.characters(blacklist_categories=("Cs",))


@SETTINGS
@given(st.text(alphabet=CHARS, min_size=1, max_size=200), st.data())
def test_one_changed_character_in_a_text_body_is_reported_where_it_is(text, data):
    text = "x" + text  # never starts like JSON
    at = data.draw(st.integers(1, len(text) - 1)) if len(text) > 1 else 0
    new = data.draw(CHARS.filter(lambda c: c != text[at]))
    changed = text[:at] + new + text[at + 1:]
    diff = compare_replies(_reply(text.encode(), PLAIN), _reply(changed.encode(), PLAIN))
    assert len(diff.differences) == 1
    d = diff.differences[0]
    line = text.count("\n", 0, at) + 1
    assert (d.kind, d.path) == (Kind.BODY, "$")
    assert f"at line {line}, " in d.detail and f"(character {at})" in d.detail
    assert new in d.shadow and text[at] in d.primary


LETTERS = st.characters(whitelist_categories=("Lu", "Ll", "Zs", "Po"))


@SETTINGS
@given(st.lists(st.tuples(st.text(LETTERS, min_size=1, max_size=6), st.integers(0, 10**9)),
                min_size=1, max_size=6), st.data())
def test_a_scrubber_never_hides_a_change_it_does_not_match(parts, data):
    rules = build_rules(scrubbers=[(r"\d+", "N")])
    text = "".join(f"{word}{number}" for word, number in parts)
    other_numbers = "".join(f"{word}{number + 1}" for word, number in parts)
    assert compare_replies(_reply(text.encode(), PLAIN), _reply(other_numbers.encode(), PLAIN),
                           rules).matched
    index = data.draw(st.integers(0, len(parts) - 1))
    word, number = parts[index]
    at = data.draw(st.integers(0, len(word) - 1))
    new = data.draw(LETTERS.filter(lambda c: c != word[at]))
    words = list(parts)
    words[index] = (word[:at] + new + word[at + 1:], number)
    changed = "".join(f"{w}{n}" for w, n in words)
    diff = compare_replies(_reply(text.encode(), PLAIN), _reply(changed.encode(), PLAIN), rules)
    assert [d.path for d in diff.differences] == ["$"]


# --- the verifier as a whole ------------------------------------------------------------

BODIES = st.binary(max_size=200) | st.builds(orjson.dumps, DOCS) | st.sampled_from(
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 900 + b"1" + b"}" * 900, b"\xff\xfe{\x00\"", b""])
TYPES = st.sampled_from([None, "application/json", "application/json; charset=utf-8",
                         "text/html; charset=latin-1", "text/plain; charset=nope",
                         "application/x-www-form-urlencoded", "image/png", "multipart/form-data"])
ENCODINGS = st.sampled_from([None, "gzip", "br", "zstd", "deflate, gzip"])
ERRORS = st.sampled_from([None, None, None, "timeout", "connect", "protocol", "too_large"])


@st.composite
def replies(draw) -> Reply:
    headers = []
    ctype = draw(TYPES)
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    encoding = draw(ENCODINGS)
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    headers += draw(OTHER_HEADERS)
    error = draw(ERRORS)
    if error is not None:
        return Reply(0, (), b"", 0.01, error)
    return Reply(draw(st.integers(100, 599)), tuple(headers), draw(BODIES), 0.01)


def _verifier() -> tuple[Verifier, list]:
    failures: list = []
    privacy = SampleBuilder(Shaper(KeepRules.compile([]), Fingerprinter(b"k" * 32)))
    verifier = Verifier(metrics=Metrics(), store=None, privacy=privacy,
                        rules=build_rules(), labels={}, raised=lambda op, exc: failures.append((op, exc)))
    return verifier, failures


def _pair(verifier: Verifier, primary: Reply, shadow: Reply, body: bytes = b""):
    exchange = Exchange("t-1", "POST", "/api/items?token=abc", "/api/items",
                        (("Content-Type", "application/json"),), body, 0.0)
    pair = verifier.pair(exchange, RoutePolicy(template="/api/items"), "legacy", "candidate")
    pair.primary, pair.shadow = primary, shadow  # concluded by hand, not on the loop
    return pair


@SETTINGS
@given(replies(), replies(), BODIES)
def test_the_verifier_concludes_any_pair_of_replies_and_its_sample_is_json(primary, shadow, body):
    verifier, failures = _verifier()
    comparison = verifier.conclude(_pair(verifier, primary, shadow, body))
    assert failures == [] and comparison is not None
    if primary.error == "too_large" or shadow.error == "too_large":
        assert comparison.verdict is Verdict.SKIPPED
    elif primary.error:
        assert comparison.verdict is Verdict.PRIMARY_ERROR
    elif shadow.error:
        assert comparison.verdict is Verdict.SHADOW_ERROR
    else:
        matched = compare_replies(primary, shadow).matched
        assert comparison.verdict is (Verdict.MATCH if matched else Verdict.MISMATCH)
    orjson.dumps(verifier.sample(comparison))


SECRETS = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=10, max_size=16)


@SETTINGS
@given(DOCS, DOCS, SECRETS, st.sampled_from(["password", "diagnosis", "first_name", "mobile",
                                           "message", "description", "a@b.example"]),
       st.integers(0, 3))
def test_a_secret_never_reaches_a_sample(doc_a, doc_b, secret, key, depth):
    def hide(doc):
        holder = {key: secret, "doc": doc}
        for _ in range(depth):
            holder = {"wrap": [holder]}
        return holder

    assume(secret not in orjson.dumps([doc_a, doc_b]).decode())
    verifier, failures = _verifier()
    primary, shadow = _reply(hide(doc_a)), _reply(hide(doc_b))
    comparison = verifier.conclude(_pair(verifier, primary, shadow, orjson.dumps(hide(doc_a))))
    assert failures == []
    assert secret not in orjson.dumps(verifier.sample(comparison)).decode()

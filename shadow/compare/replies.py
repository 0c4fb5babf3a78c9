"""Compare the primary's and the shadow's replies to one exchange.

The order of work is the order of cost. Equal body bytes end the body comparison at
once. Otherwise both bodies are lifted and the rules applied, and a strict check (sorted
JSON encodings equal) settles most pairs that differ only in key order or whitespace.
Only a pair that still differs goes through the rule-aware Walker, and only a pair the
Walker confirms goes to `explain` (DeepDiff, for arrays whose lengths differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shadow.compare.explain import explain
from shadow.compare.lift import Document, Form, lift
from shadow.compare.prepare import prepare
from shadow.compare.rules import ReplyRules
from shadow.compare.walk import Walker
from shadow.verdict import Difference, Kind, Reply

DIFFERENCE_CAP = 50
"""At most this many body differences are listed per exchange."""

EXCERPT_BEFORE, EXCERPT_AFTER = 40, 80
"""Characters of text shown before and after the first difference of two text bodies."""

_DEFAULT_RULES = ReplyRules()


@dataclass(frozen=True, slots=True)
class ReplyDiff:
    """How two replies differ: `differences` (empty when they match), and `normalised`,
    the number of body values found equal only thanks to the bridge or a tolerance."""

    differences: tuple[Difference, ...]
    normalised: int = 0

    @property
    def matched(self) -> bool:
        return not self.differences


def compare_replies(primary: Reply, shadow: Reply, rules: ReplyRules = _DEFAULT_RULES) -> ReplyDiff:
    """Compare status, the headers named in `rules.headers`, and the body.

    Differences have kind STATUS at path `status`, HEADER at the lower-case header name,
    BODY at a JSON path (`$.entries[3].score`), or at `$` for text bodies (with an excerpt
    around the first differing character) and binary bodies (with both sha256 hashes).
    A reply without an answer (`error` set) compares by its error only. Never raises.
    """
    if primary.error is not None or shadow.error is not None:
        if (primary.status, primary.error) == (shadow.status, shadow.error):
            return ReplyDiff(())
        return ReplyDiff((
            Difference(Kind.STATUS, "status", _outcome(primary), _outcome(shadow), "no usable reply"),
        ))
    found: list[Difference] = []
    if primary.status != shadow.status:
        found.append(Difference(Kind.STATUS, "status", primary.status, shadow.status))
    for name in rules.headers:
        a, b = _header(primary, name), _header(shadow, name)
        if a != b and _normal_header(name, a) != _normal_header(name, b):
            found.append(Difference(Kind.HEADER, name, a, b))
    body, normalised = _compare_bodies(primary, shadow, rules)
    if body:
        found.extend(body)
    return ReplyDiff(tuple(found), normalised)


def _compare_bodies(primary: Reply, shadow: Reply, rules: ReplyRules) -> tuple[list[Difference], int]:
    p_encoding = primary.header("content-encoding")
    s_encoding = shadow.header("content-encoding")
    if primary.body == shadow.body and p_encoding == s_encoding:
        return [], 0
    if rules.ignores_body:
        return [], 0
    scrubbers = rules.scrubbers
    p_doc = lift(primary.body, content_type=primary.header("content-type"), content_encoding=p_encoding, scrubbers=scrubbers)
    s_doc = lift(shadow.body, content_type=shadow.header("content-type"), content_encoding=s_encoding, scrubbers=scrubbers)
    if p_doc.form is Form.JSON and s_doc.form is Form.JSON:
        return _compare_json(p_doc.value, s_doc.value, rules)
    p_text, s_text = p_doc.text(scrubbers), s_doc.text(scrubbers)
    if p_text is not None and s_text is not None:
        if p_text == s_text:
            return [], 0
        return [_text_difference(p_text, s_text, _notes(p_doc, s_doc))], 0
    p_digest, s_digest = p_doc.digest(), s_doc.digest()
    if p_digest == s_digest:
        return [], 0
    detail = f"{p_doc.form} body of {len(p_doc.data)} bytes vs {s_doc.form} body of {len(s_doc.data)} bytes"
    notes = _notes(p_doc, s_doc)
    return [Difference(Kind.BODY, "$", p_digest, s_digest, f"{detail}; {notes}" if notes else detail)], 0


def _compare_json(primary: Any, shadow: Any, rules: ReplyRules) -> tuple[list[Difference], int]:
    primary = prepare(primary, rules)
    shadow = prepare(shadow, rules)
    if _same_encoding(primary, shadow):
        return [], 0
    walker = Walker(rules, cap=DIFFERENCE_CAP)
    found = walker.compare(primary, shadow, split_resized=True)
    if found.equal:
        return [], found.normalised
    return explain(primary, shadow, walker=walker, found=found), found.normalised


def _same_encoding(a: Any, b: Any) -> bool:
    """True when both documents have the same sorted-key JSON encoding: equal, with
    `true` never equal to `1`. False also when one cannot be encoded (too deep)."""
    try:
        return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return False


def _text_difference(a: str, b: str, notes: str) -> Difference:
    at = _first_difference(a, b)
    line = a.count("\n", 0, at) + 1
    column = at - a.rfind("\n", 0, at)
    detail = f"text differs at line {line}, column {column} (character {at})"
    return Difference(Kind.BODY, "$", _excerpt(a, at), _excerpt(b, at), f"{detail}; {notes}" if notes else detail)


def _first_difference(a: str, b: str) -> int:
    """The index of the first character where `a` and `b` differ (or the shorter length)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _excerpt(text: str, at: int) -> str:
    start = max(0, at - EXCERPT_BEFORE)
    end = min(len(text), at + EXCERPT_AFTER)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _notes(primary: Document, shadow: Document) -> str:
    notes = [f"{role}: {doc.note}" for role, doc in (("primary", primary), ("shadow", shadow)) if doc.note]
    return "; ".join(notes)


def _header(reply: Reply, name: str) -> str | None:
    values = [value for key, value in reply.headers if key.lower() == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


def _normal_header(name: str, value: str | None) -> str | None:
    """A header value as compared: whitespace runs folded; for Content-Type, the media
    type, parameter names and the charset in lower case."""
    if value is None:
        return None
    value = " ".join(value.split())
    if name != "content-type":
        return value
    media_type, *params = (part.strip() for part in value.split(";"))
    parts = [media_type.lower()]
    for param in params:
        key, _, val = param.partition("=")
        key = key.strip().lower()
        val = val.strip()
        parts.append(f"{key}={val.lower() if key == 'charset' else val}")
    return ";".join(parts)


def _outcome(reply: Reply) -> str | int:
    return reply.error if reply.error is not None else reply.status

"""The privacy check's scan: what in a state store looks personal.

Every string a stored sample holds (keys and values at any depth, the builds' log lines
among them), every signature, every finding (its key, cause, signatures, cascade
evidence, proposed rule), what the store keeps in its meta table (learnt noise, the row
key map, the gate window) and every read-log line is checked for what should never be
there: e-mail addresses, phone numbers, card numbers (Luhn-valid), tokens (long runs of
letters and digits) and free text (long runs of words). Shadow's own sentences (a
difference's detail, a log line made of known words, cascade evidence) are not checked
for free text, the rest still is. The placeholders shadow.privacy writes (`«str 19
datetime 9999-99-99 99:99:99 #…»`) and fingerprints (`#3fa9c2e1b0d4`) are its own and
are not scanned. A finding names where it is (a table and row id, never a text that may
hold the value) and what it looks like, never the value.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from shadow.privacy.shapes import is_name

_PLACEHOLDER = re.compile(r"«[^«»]*»|#[0-9a-f]{12}(?![0-9a-f])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DATE = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d)?)?")
_PHONE = re.compile(r"\+?\(?\d[\d ()./-]{7,}\d")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_TOKEN = re.compile(r"[A-Za-z0-9_+/=-]{20,}")
_WORDS = re.compile(r"[^\W\d_]{2,}(?:[\s,;:.!?'-]+[^\W\d_]+){5,}")
OWN_TEXT = re.compile(r"samples #\d+(\.differences\[\d+\]\.(detail|note)|\.reason"
                      r"|\.logs\.[^.]+\[\d+\])\Z")
"""Fields holding shadow's own sentences: not checked for free text (the rest still is)."""
OWN_ID = re.compile(r"samples #\d+\.exchange\.id\Z")


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that looks personal: `where` it is, `what` it looks like, its length."""

    where: str
    what: str
    length: int

    def __str__(self) -> str:
        return f"{self.what} at {self.where} ({self.length} characters)"


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_personal(text: str, free_text: bool = True) -> list[str]:
    """What `text` looks like: 'e-mail', 'phone number', 'card number', 'token',
    'free text' (each at most once); empty when nothing."""
    text = _PLACEHOLDER.sub(" ", text)
    found = []
    if _EMAIL.search(text):
        found.append("e-mail")
    undated = _DATE.sub(" ", text)
    for match in _CARD.finditer(undated):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn(digits):
            found.append("card number")
            break
    for match in _PHONE.finditer(undated):
        if 9 <= sum(c.isdigit() for c in match.group()) <= 15 and "card number" not in found:
            found.append("phone number")
            break
    for match in _TOKEN.finditer(text):
        word = match.group()
        if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
            found.append("token")
            break
    if free_text and _WORDS.search(text):
        found.append("free text")
    return found


def strings(value: Any, where: str) -> Iterator[tuple[str, str, bool]]:
    """(location, string, check for free text) for every key and string in a value; the
    exchange id is shadow's own (`a1b2c3d4-17`) and not scanned."""
    if OWN_ID.match(where):
        return
    if isinstance(value, str):
        yield where, value, OWN_TEXT.match(where) is None
    elif isinstance(value, dict):
        for k, v in value.items():
            step = str(k) if is_name(str(k)) else "«key»"
            yield f"{where}.{step} (the key)", str(k), True
            yield from strings(v, f"{where}.{step}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


_TABLES = (
    ("findings", ("key", "what", "tbl", "rule", "reason"), False),
    ("finding_signatures", ("signature",), False),
    ("finding_links", ("evidence",), False),
    ("finding_versions", ("version",), False),
    ("audit", ("reason", "gate"), False),
    ("reads", ("what",), False),
)
"""(table, columns, check for free text): what else the store holds as text. Reasons
are an operator's own words: checked for e-mails, numbers and tokens, not as free text."""


def _decoded(value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def scan(path: str) -> list[Finding]:
    """Findings in the state store at `path` (opened read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    findings: list[Finding] = []
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

        def check(where: str, text: str, free: bool = True) -> None:
            findings.extend(Finding(where, what, len(text)) for what in looks_personal(text, free))

        if "samples" in tables:
            for sample_id, body in db.execute("SELECT id, body FROM samples ORDER BY id"):
                for where, text, free in strings(orjson.loads(body), f"samples #{sample_id}"):
                    check(where, text, free)
        if "signatures" in tables:
            for rowid, signature in db.execute("SELECT rowid, signature FROM signatures "
                                               "ORDER BY rowid"):
                check(f"signature #{rowid}", signature, False)
        for table, columns, free in _TABLES:
            if table in tables:
                for row in db.execute(f"SELECT rowid, {', '.join(columns)} FROM {table} "
                                      "ORDER BY rowid"):
                    for column, text in zip(columns, row[1:]):
                        if text:
                            check(f"{table} #{row[0]}.{column}", str(text), free)
        if "meta" in tables:
            for key, value in db.execute("SELECT key, value FROM meta ORDER BY key"):
                for where, text, _ in strings(_decoded(value), f"meta {key}"):
                    check(where, text, False)
    finally:
        db.close()
    return findings

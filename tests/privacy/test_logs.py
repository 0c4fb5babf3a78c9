"""Backend log lines as a sample stores them: known words kept, every other word a
fingerprint, so a value sitting unquoted in free text never reaches the store."""

from __future__ import annotations

import re

import pytest

from shadow.backend_logs import mask
from shadow.config import ConfigError, parse_config
from shadow.privacy.fingerprint import Fingerprinter
from shadow.privacy.logs import LogShaper
from shadow.privacy.scan import looks_personal

FP = Fingerprinter(b"k" * 32).of
WORD = r"«#[0-9a-f]{12}»"


def stored(line: str, **kwargs) -> str:
    return LogShaper(FP, **kwargs).line(mask(line))


@pytest.mark.parametrize("line, shape", [
    ('ERROR:  syntax error at or near ")" at character 52',
     'ERROR:  syntax error at or near "<text>" at character <n>'),
    ("2026-12-04 23:40:01.123 UTC [1234] ERROR:  null value in column \"name\" of relation "
     "\"users\" violates not-null constraint",
     '<n> <n> UTC [<n>] ERROR:  null value in column "<text>" of relation "<text>" violates '
     "not-null constraint"),
    ("TypeError: can't compare offset-naive and offset-aware datetimes",
     "TypeError: can't compare offset-naive and offset-aware datetimes"),
    ("asyncpg.exceptions.UndefinedFunctionError: function datetime(unknown) does not exist",
     "asyncpg.exceptions.UndefinedFunctionError: function datetime(unknown) does not exist"),
    ("Traceback (most recent call last):", "Traceback (most recent call last):"),
    ("sqlite3.IntegrityError: UNIQUE constraint failed: users.email",
     f"sqlite3.IntegrityError: UNIQUE constraint failed: {WORD}"),
])
def test_the_words_of_database_and_runtime_errors_are_kept(line, shape):
    assert re.fullmatch(shape if WORD in shape else re.escape(shape), stored(line))


@pytest.mark.parametrize("line, values", [
    ("DETAIL:  Failing row contains (17, Jane, asthma, 2026-01-02).", ["Jane", "asthma"]),
    ("login user=jane diagnosis=depression", ["jane", "depression"]),
    ("ERROR profile Qzmk00Vx failed for Ana Lima (passcode Qzmk01Vx)",
     ["Qzmk00Vx", "Ana", "Lima", "Qzmk01Vx", "profile"]),
    ("INFO message from patient: I feel suicidal today", ["suicidal", "patient", "feel"]),
])
def test_a_value_in_free_text_becomes_a_fingerprint(line, values):
    shape = stored(line)
    assert [v for v in values if v in shape] == []
    assert re.search(WORD, shape)
    assert looks_personal(shape, free_text=False) == []


def test_the_same_word_has_the_same_fingerprint_and_words_can_be_allowed():
    assert stored("login user=jane") == stored("login user=jane") != stored("login user=ana")
    assert stored("ERROR report failed", words=["report"]) == "ERROR report failed"
    assert "report" not in stored("ERROR report failed")


def test_names_samples_keep_as_keys_are_kept_in_lines_too():
    shaper = LogShaper(FP, kept_name=lambda word: word in {"email", "users"})
    assert shaper.line(mask("DETAIL:  Key (email)=(ana@example.com) already exists.")) == \
        "DETAIL:  Key (email)=(<value>) already exists."
    assert "users" in shaper.line("FROM users") and "pets" not in shaper.line("FROM pets")


def test_log_words_are_checked_at_start_up(tmp_path):
    data = {"backends": {"legacy": {"url": "http://127.0.0.1:1"},
                         "candidate": {"url": "http://127.0.0.1:2"}},
            "privacy": {"log_words": ["report", "two words", 3]}}
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    text = str(raised.value)
    assert "privacy.log_words[1]: not one word" in text and "privacy.log_words[2]" in text
    assert "privacy.log_words[0]" not in text

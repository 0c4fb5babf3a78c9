"""Backend log lines as a stored sample holds them: the words of code and of database and
runtime errors, never a value.

shadow.backend_logs masks a line where it is read (quoted strings, numbers, e-mail
addresses, long tokens, `Key (col)=(...)`). That leaves free text, where a name or a
diagnosis can sit unquoted (`DETAIL: Failing row contains (17, Jane, asthma)`, `login
user=jane`). So a stored line keeps a word only when it is known to be no value:

- words of the vocabulary below (SQL, PostgreSQL and SQLite error messages, Python
  tracebacks, HTTP, and the short words that join them), in any case;
- names of exception classes, also with their module (`TypeError`,
  `asyncpg.exceptions.UniqueViolationError`), and dotted, underscored or hyphenated
  identifiers made of known parts (`not_null_violation`, `offset-naive`);
- the words `[privacy] log_words` names (the app's own words: `report`, `checkout`);
- names samples already keep as a JSON key, a table or a column (`users`, `email` in
  `Key (email)=(<value>)`): shadow.privacy.shapes keeps those as structure anyway;
- the masks themselves (`<text>`, `<n>`, ...).

Every other word becomes `«#fingerprint»` (the same word, the same fingerprint), and
punctuation stays, so `syntax error at or near "<text>"` reads as the database wrote it
while `Failing row contains (<n>, «#3fa9…», «#77c0…»)` holds no value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from shadow.backend_logs import MASKS

VOCABULARY = frozenset("""
a about above access accepted across active add added after again aggregate all allowed
already also alter ambiguous an analyze and any appear appears are argument arguments array
as at attempt attribute authentication auto available be because been before begin being
between bigint binary bind blob bool boolean both bound but by bytea cache call called
can cannot can't cast casts cause caused change changed char character check clause close
closed code collation column columns commit committed compare comparison completed
concurrent condition conflict connect connection connections constraint constraints
contains context convert copy could create created current cursor data database databases
date datetime datetimes deadlock debug decimal declare default deferred delete deleted
denied depends detail detected did differ distinct do does domain double drop due
duplicate during each else empty encoding end error errors escape exception exceeded
execute executing execution exist exists expected explicit expression extension extra
failed failing failure false fatal fetch field fields file find float for foreign format
found from full function functions given got grant group handler has have having hint
host http https id identifier if ilike immediate in incorrect index input insert inserted
instead int integer interval into invalid is it its join json jsonb key keys last length
level like limit line lines list listen local lock locked log logged many match matches
may maximum message method might minimum missing mode more most must name named names
naive near need needed new next no none not notice null nullable number numeric object
of offset offset-aware offset-naive on one only operand operator operators option or
order out output overflow owner parameter parameters parse permission placeholder plan
pool position precision prepared primary procedure process query raise raised range read
real recent record recursion reference references referenced refused relation release
replace request required reset response restrict result return returned returning
returns role rollback row rows rule savepoint schema select sequence serial server
session set should size smallint some specified sql sqlite sqlstate start started
statement status stored string subquery such support supported syntax table tables
target temporary text than that the then there this time timed timeout timestamp
timestamptz timezone to too traceback transaction trigger true truncated try type
typed types unable undefined unexpected unique unknown unsupported update updated upsert
use used user using value values varchar version view violates violation warning was
when where which while will with within without would write wrong zone
abort aborted post get put patch head options utc gmt login logout password username
email token api admin
""".split())
"""Words a log line may keep as they are (compared in lower case)."""

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'_.-]*[A-Za-z0-9]|[A-Za-z]")
_MASK = re.compile("|".join(re.escape(m) for m in MASKS))
_MODULE = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*")
_EXCEPTION = re.compile(r"(?:[A-Z][a-z]+)+(?:Error|Exception|Warning|Violation)\Z")


def word_problems(words: Iterable[object]) -> list[str]:
    """Every problem of a `[privacy] log_words` list, each with its location."""
    return [f"privacy.log_words[{i}]: not one word: {w!r}" for i, w in enumerate(words)
            if not isinstance(w, str) or not _WORD.fullmatch(w)]


class LogShaper:
    """Keeps the known words of log lines; fingerprints every other word."""

    def __init__(self, fp: Callable[[str], str], words: Iterable[str] = (),
                 kept_name: Callable[[str], bool] = lambda word: False) -> None:
        self.fp = fp
        self.words = VOCABULARY | {w.lower() for w in words}
        self.kept_name = kept_name

    def known(self, word: str) -> bool:
        """True when `word` is no value: vocabulary, an exception name, or an identifier
        whose every part is one of those."""
        if word.lower() in self.words or _EXCEPTION.match(word) or self.kept_name(word):
            return True
        module, dot, name = word.rpartition(".")
        if dot and _EXCEPTION.match(name) and _MODULE.fullmatch(module):
            return True
        parts = re.split(r"[._-]", word)
        return len(parts) > 1 and all(p and (p.lower() in self.words or _EXCEPTION.match(p))
                                      for p in parts)

    def line(self, text: str) -> str:
        """One masked line as stored."""
        out, at = [], 0
        for mask in _MASK.finditer(text):
            out.append(self._words(text[at:mask.start()]))
            out.append(mask.group())
            at = mask.end()
        out.append(self._words(text[at:]))
        return "".join(out)

    def _words(self, text: str) -> str:
        return _WORD.sub(lambda m: m.group() if self.known(m.group()) else f"«{self.fp(m.group())}»",
                         text)

    def lines(self, found: dict[str, list[str]]) -> dict[str, list[str]]:
        """Each backend's lines as stored."""
        return {backend: [self.line(t) for t in texts] for backend, texts in found.items()}

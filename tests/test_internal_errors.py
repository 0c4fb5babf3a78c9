"""Internal failures never hide an exchange from the gate, and their log lines say what
failed (message always, traceback once per error class)."""

from __future__ import annotations

import io
import logging
import re

from shadow.compare import build_rules
from shadow.logs import Raised, RateLimited, _Formatter, logfmt_value
from shadow.metrics import Metrics
from shadow.privacy import SampleBuilder
from shadow.privacy.fingerprint import Fingerprinter
from shadow.privacy.keep import KeepRules
from shadow.privacy.shapes import Shaper
from shadow.routes import RoutePolicy
from shadow.store import Store
from shadow.verdict import Exchange, Reply, Verdict
from shadow.verifier import Verifier


class FailingStore(Store):
    """The real store whose `record` fails, as a full disk or a driver bug would."""

    def __init__(self) -> None:  # never opened: record() fails before any I/O
        pass

    def wants_sample(self, signature, now=None) -> bool:
        return True

    def record(self, **kwargs) -> None:
        raise TypeError("Type is not JSON serializable: decimal.Decimal")


PRIVACY = SampleBuilder(Shaper(KeepRules.compile([]), Fingerprinter(b"k" * 32)))


def pair_of(verifier: Verifier, primary: Reply, shadow: Reply):
    exchange = Exchange("t-1", "GET", "/api/items/1", "/api/items/{id}", (), b"", 0.0)
    pair = verifier.pair(exchange, RoutePolicy(template="/api/items/{id}"), "legacy", "candidate")
    pair.primary, pair.shadow = primary, shadow
    return pair


def test_the_gate_hears_of_a_mismatch_the_store_fails_to_keep():
    failures, heard = [], []
    verifier = Verifier(metrics=Metrics(), store=FailingStore(),
                        privacy=PRIVACY, rules=build_rules(), labels={},
                        raised=lambda op, exc: failures.append((op, type(exc).__name__)))
    verifier.listeners.append(heard.append)
    json = (("Content-Type", "application/json"),)
    comparison = verifier.conclude(pair_of(verifier, Reply(200, json, b'{"a": 1}', 0.01),
                                           Reply(200, json, b'{"a": 2}', 0.01)))
    assert comparison.verdict is Verdict.MISMATCH
    assert [c.verdict for c in heard] == [Verdict.MISMATCH]
    assert failures == [("store", "TypeError")]


def test_a_failed_comparison_is_still_published_as_skipped():
    failures, heard = [], []
    verifier = Verifier(metrics=Metrics(), store=None, privacy=PRIVACY,
                        rules=build_rules(), labels={},
                        raised=lambda op, exc: failures.append(op))
    verifier.listeners.append(heard.append)
    pair = pair_of(verifier, Reply(200, (), b"x", 0.01), Reply(200, (), b"y", 0.01))
    pair.policy = None  # the comparison itself fails: no rules can be found for it
    comparison = verifier.conclude(pair)
    assert failures == ["compare"]
    assert comparison.verdict is Verdict.SKIPPED and comparison.reason == "internal_error"
    assert heard == [comparison]


def capture(fmt: str = "text") -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(_Formatter(fmt == "json"))
    logger = logging.getLogger(f"shadow.test.{fmt}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel("DEBUG")
    return logger, out


def test_internal_error_lines_carry_the_message_and_the_traceback_once_per_class():
    logger, out = capture()
    counted = []
    raised = Raised(logger, counted.append)
    for _ in range(3):
        try:
            {}["missing"]
        except KeyError as exc:
            raised("conclude", exc)
    try:
        1 / 0
    except ZeroDivisionError as exc:
        raised("conclude", exc)
    text = out.getvalue()
    assert counted == ["conclude"] * 4
    assert text.count("Traceback (most recent call last)") == 2
    assert text.count("error=KeyError detail='missing'") == 3
    assert 'detail="division by zero"' in text


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt reader: bare values, or quoted ones with backslash escapes."""
    fields = {}
    for match in re.finditer(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))', line):
        key, quoted, bare = match.groups()
        if quoted is not None:
            quoted = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]),
                            quoted)
        fields[key] = quoted if quoted is not None else bare
    return fields


def test_log_values_are_quoted_so_logfmt_parsers_read_them_back():
    logger, out = capture()
    values = {"plain": "GET", "space": "a b", "equals": "k=v", "quote": 'say "hi"',
              "newline": "one\ntwo", "empty": "", "backslash": "C:\\x"}
    logger.info("event", extra=values)
    line = out.getvalue().rstrip("\n")
    assert "\n" not in line
    assert parse_logfmt(line) == values
    assert logfmt_value("127.0.0.1:8080") == "127.0.0.1:8080"


def test_repeated_events_are_rate_limited_and_say_how_many_were_folded():
    logger, out = capture()
    now = [0.0]
    limited = RateLimited(logger, interval=10.0, clock=lambda: now[0])
    written = [limited.log(logging.WARNING, "primary failed", ("legacy",), status=502)
               for _ in range(5)]
    now[0] = 11.0
    written.append(limited.log(logging.WARNING, "primary failed", ("legacy",), status=502))
    assert written == [True, False, False, False, False, True]
    assert out.getvalue().splitlines()[-1].endswith("status=502 suppressed=4")

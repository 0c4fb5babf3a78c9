"""Reply comparison: pure logic, no I/O.

    jsonpath   paths and patterns (`$.items[*].score`, `$..id`)
    rules      ReplyRules, compiled once at start-up by `build_rules`
    lift       reply body -> comparable document (JSON, text, or a hash)
    bridge     the dialect bridge shared with row comparison
    kinds      ValueKind and the kinds of declared SQLite / PostgreSQL column types
    prepare    ignore and unordered rules applied to a document
    walk       rule-aware equality and differences
    explain    readable differences (DeepDiff) for a pair known to differ
    replies    `compare_replies`: status, headers, body
"""

from shadow.compare.jsonpath import Pattern, compile_pattern, render_path
from shadow.compare.replies import ReplyDiff, compare_replies
from shadow.compare.rules import BridgeRules, ReplyRules, RulesError, Scrubber, build_rules

__all__ = [
    "BridgeRules",
    "Pattern",
    "ReplyDiff",
    "ReplyRules",
    "RulesError",
    "Scrubber",
    "build_rules",
    "compare_replies",
    "compile_pattern",
    "render_path",
]

"""From one exchange's differences to its causes.

A *Cause* is one finding's share of one exchange. Its key says what the cause is, on which
route: method + route template + the first-order difference:

    status       the status pair, `201→500` (or `201→timeout` when no reply came)
    type         a JSON type change, keyed by the type pair (`number→boolean`), its paths inside
    format       a string rendered in another form (`0000-00-00 00:00:00→0000-00-00T…`),
                 keyed by the two forms with every digit masked and fractions of seconds
                 left out, its paths inside
    missing      a value the shadow lacks, by folded path
    extra        a value only the shadow has, by folded path
    order        an array element in another place, by folded path
    value        any other change of a value, by folded path; inside an array by the
                 element (`$.entries[*]`): fields of one element that differ together
                 (another row in that place) are one cause
    header       a header, by name
    row_missing / row_extra / row_changed    a row difference, by table

A type change or a rendering change is one cause however many fields it touches, so it is
keyed by the change rather than the path. When the status differs, every other difference
of the exchange (the body paths of the error reply, the rows the failed request did not
write) follows from it and sits inside the status cause as a dependent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shadow.verdict import ROW_KINDS, Comparison, Difference, Kind, signature, signature_path
KINDS = ("status", "type", "format", "missing", "extra", "order", "value", "header",
         "row_missing", "row_extra", "row_changed")
ARROW = "→"
_FORM = re.compile(r"[0\W_TZ]+")
_FRACTION = re.compile(r"(?<=\d)\.\d+")
_KEYED_ROW = re.compile(r"^([^\[]*)\[(.*)\]((?:\.[^.\[\]]+)?)$")


@dataclass(frozen=True, slots=True)
class Cause:
    """One finding's share of one exchange.

    `key` identifies the finding ("METHOD /route kind what"); `what` is the first-order
    difference in words (`201→500`, `number→boolean`, `$.entries[*]`, `moods`); `table`
    is set for row causes. `signatures` are the signatures of this exchange the cause
    explains, its own first; `dependents` those among them that only follow from it.
    `paths` are the folded paths (or tables, headers) it covers. `rows` holds the
    (table, key text) of the rows it names, for cascades.
    """

    key: str
    method: str
    route: str
    kind: str
    what: str
    table: str | None
    signatures: tuple[str, ...]
    dependents: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    rows: tuple[tuple[str, str], ...] = ()

    @property
    def title(self) -> str:
        """The cause in one line: `POST /api/moods status 201→500`."""
        return f"{self.method} {self.route} {self.kind} {self.what}"


def finding_key(method: str, route: str, kind: str, what: str) -> str:
    return f"{method} {route} {kind} {what}"


def folded(d: Difference) -> str:
    """A difference's path with array indices and row keys folded: the signature's path."""
    if d.kind in ROW_KINDS:
        match = _KEYED_ROW.match(d.path)
        if match:
            return f"{match.group(1)}[*]{match.group(3)}"
        return d.path
    return signature_path(d.path)


def signature_of(method: str, route: str, d: Difference) -> str:
    return signature(method, route, d.kind, folded(d))


def row_of(d: Difference) -> tuple[str, str] | None:
    """(table, key text) of a row difference: `moods[17].score` -> ('moods', '17')."""
    if d.kind not in ROW_KINDS:
        return None
    match = _KEYED_ROW.match(d.path)
    if not match:
        return None
    return match.group(1), match.group(2)


def _form(value: object) -> str | None:
    """A string with every digit masked, when what is left is only punctuation and the
    letters of a timestamp (so that no value of a person ever becomes part of a key)."""
    if not isinstance(value, str):
        return None
    masked = re.sub(r"\d", "0", _FRACTION.sub("", value))
    if "0" not in masked or not masked.strip("0") or not _FORM.fullmatch(masked):
        return None
    return masked


def body_change(d: Difference, path: str | None = None) -> tuple[str, str]:
    """(kind, what) of a body difference: what changed, in a form fit for a key.
    `path` is the difference's folded path when the caller has it."""
    detail = d.detail or ""
    path = signature_path(d.path) if path is None else path
    if detail.startswith("type changed:"):
        a, _, b = detail.removeprefix("type changed:").partition("->")
        return "type", f"{a.strip()}{ARROW}{b.strip()}"
    if detail.startswith("missing in shadow"):
        return "missing", path
    if detail.startswith("missing in primary"):
        return "extra", path
    if detail.startswith("moved to"):
        return "order", path
    p_form, s_form = _form(d.primary), _form(d.shadow)
    if p_form and s_form and p_form != s_form:
        return "format", f"{p_form}{ARROW}{s_form}"
    element, star, _ = path.rpartition("[*]")
    return "value", (element + star) if star else path


def _status_what(d: Difference) -> str:
    return f"{d.primary}{ARROW}{d.shadow}"


def causes(c: Comparison) -> tuple[Cause, ...]:
    """The causes of one comparison's differences, in the order first met."""
    ex, diffs = c.exchange, c.differences
    if not diffs:
        return ()
    method, route = ex.method, ex.route
    folds = [folded(d) for d in diffs]
    sigs = [signature(method, route, d.kind, f) for d, f in zip(diffs, folds)]
    rows_of = [row_of(d) for d in diffs]
    status = next((i for i, d in enumerate(diffs) if d.kind == Kind.STATUS), None)
    if status is not None:
        d = diffs[status]
        own = sigs[status]
        rest = tuple(dict.fromkeys(s for i, s in enumerate(sigs) if i != status and s != own))
        paths = tuple(dict.fromkeys(f for i, f in enumerate(folds) if i != status))
        rows = tuple(dict.fromkeys(r for r in rows_of if r is not None))
        what = _status_what(d)
        return (Cause(finding_key(method, route, "status", what), method, route, "status", what,
                      None, (own, *rest), rest, paths, rows),)
    grouped: dict[str, dict] = {}
    for d, sig, fold, row in zip(diffs, sigs, folds, rows_of):
        table = None
        if d.kind == Kind.BODY:
            kind, what = body_change(d, fold)
        elif d.kind == Kind.HEADER:
            kind, what = "header", d.path.lower()
        elif d.kind in ROW_KINDS:
            table = row[0] if row else d.path
            kind, what = str(d.kind), table
        else:
            kind, what = str(d.kind), fold
        key = finding_key(method, route, kind, what)
        entry = grouped.setdefault(key, {"kind": kind, "what": what, "table": table,
                                         "sigs": {}, "paths": {}, "rows": {}})
        entry["sigs"][sig] = None
        entry["paths"][fold] = None
        if row is not None:
            entry["rows"][row] = None
    return tuple(Cause(key, method, route, e["kind"], e["what"], e["table"], tuple(e["sigs"]),
                       (), tuple(e["paths"]), tuple(e["rows"])) for key, e in grouped.items())

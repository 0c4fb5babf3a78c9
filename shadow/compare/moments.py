"""Time by meaning: a timestamp each side stamped with its own "now" (pure: no I/O).

Two builds that stamp a row or a reply with the current time never write the same value:
the shadow serves the exchange later than the primary (replay lag, a busy machine) and
the two clocks may disagree. Compared as plain instants they differ by the lag; compared
*relative to the moment each side served the exchange* they agree:

    (primary value - primary moment)  vs  (shadow value - shadow moment)

within `tolerance` seconds. A wrong time zone (an hour), a wrong day or a value that was
never updated still differs by far more than the tolerance, so it is still reported.
Values are recognised by shape (what `parse_instant` reads, or a datetime), so no
per-column list is needed; equal values never reach this rule.

Rows carry the moment each database made the change, so `same_moment` is exact. A reply
may show a timestamp stamped by an earlier write, whose lag is not known, so replies use
`stamped_later`: the shadow's value may be later than the primary's by at most the
largest replay lag seen lately, or a moment earlier (both builds serve a read at about
the same time), and never off by an hour or a day once the shadow is caught up.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shadow.compare.bridge import parse_instant

#: How far apart the two offsets may be, in seconds. SQLite's CURRENT_TIMESTAMP keeps whole
#: seconds (up to 1 s lost), and an app may stamp a value a little before it writes it.
DEFAULT_TOLERANCE = 2.0


def instant(value: Any) -> float | None:
    """`value` as seconds since the epoch when it names an instant (a datetime, a date, or
    text in an ISO-8601-like form; no offset means UTC), else None."""
    if isinstance(value, datetime | date):
        text = value.isoformat()
    elif type(value) is str:
        text = value.strip()
    else:
        return None
    moment = parse_instant(text)
    return None if moment is None else moment.timestamp()


def same_moment(primary: Any, shadow: Any, primary_at: float | None, shadow_at: float | None,
                tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """True when both values are instants that lie the same distance, within `tolerance`,
    from the moment their own side served the exchange (`primary_at`, `shadow_at`)."""
    if primary_at is None or shadow_at is None or tolerance <= 0:
        return False
    p, s = instant(primary), instant(shadow)
    if p is None or s is None:
        return False
    return abs((p - primary_at) - (s - shadow_at)) <= tolerance


def same_second(primary: Any, shadow: Any) -> bool:
    """True when both values name instants, one of them is kept to whole seconds and the
    other falls within that second: a stored stamp that one database keeps to the second
    (SQLite's CURRENT_TIMESTAMP) and the other to the microsecond. For stored values only:
    a reply that renders another precision is a difference the client sees."""
    texts = [v if type(v) is str else v.isoformat() if isinstance(v, datetime) else None
             for v in (primary, shadow)]
    if None in texts:
        return False
    whole = [_whole_seconds(t) for t in texts]  # type: ignore[arg-type]
    if whole[0] == whole[1]:
        return False
    p, s = instant(primary), instant(shadow)
    if p is None or s is None:
        return False
    second, other = (p, s) if whole[0] else (s, p)
    return 0 <= other - second < 1


def _whole_seconds(text: str) -> bool:
    """True when a timestamp text carries no fraction of a second."""
    clock = text.partition("T")[2] or text.partition(" ")[2]
    return "." not in clock


EARLIER = 1.0
"""Seconds by which the shadow's stamp may precede the primary's: a read reaches both
builds at about the same time, and the primary may stamp its reply later in its work."""


def stamped_later(primary: str, shadow: str, lag: float, tolerance: float = 0.0) -> bool:
    """True when both texts name instants and the shadow's lies between `EARLIER` +
    `tolerance` before and `lag + tolerance` after the primary's; a value kept to whole
    seconds may be up to one more second off either way (the second it was cut to)."""
    p, s = instant(primary), instant(shadow)
    if p is None or s is None:
        return False
    slack = tolerance + (1.0 if _whole_seconds(primary) or _whole_seconds(shadow) else 0.0)
    return -(EARLIER + slack) <= s - p <= lag + slack

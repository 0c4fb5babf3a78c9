"""Triage: the state of a finding, how it changes, and what the gate does with it.

    new            seen, nobody looked yet (and a fixed finding seen again after the
                   candidate's version changed: it is reopened as new)
    acknowledged   someone is fixing it
    expected       an intended change; needs a reason; no longer blocks the gate, which
                   still lists it with that reason
    noise          not a real difference: its paths go into a proposed ignore rule the
                   operator adds to the config; does not block the gate either
    fixed          fixed in a later build; reopens when seen again under another
                   candidate version than the one it was marked under

Every change needs a reason and is audit-logged by the caller. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shadow.compare.jsonpath import compile_pattern


class State(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    EXPECTED = "expected"
    NOISE = "noise"
    FIXED = "fixed"


STATES = tuple(s.value for s in State)
NOT_BLOCKING = frozenset({State.EXPECTED, State.NOISE})
_RULELESS = frozenset({"status", "row_missing", "row_extra"})


class TriageError(ValueError):
    """A state change that cannot be made (unknown state, no reason, nothing to ignore)."""


@dataclass(frozen=True, slots=True)
class Change:
    """A decided state change: the new state, its reason, the candidate version it was
    made under (what `fixed` compares later sightings with), and the proposed rule for
    `noise`."""

    state: State
    reason: str
    version: str | None
    rule: str = ""


def change(current: str, wanted: str, reason: str, *, version: str | None, kind: str,
           route: str, paths: Sequence[str]) -> Change:
    """Check and decide a state change of a finding of `kind` on `route` covering
    `paths`; raises TriageError saying what is wrong."""
    if wanted not in STATES:
        raise TriageError(f"unknown state {wanted!r}; states: {', '.join(STATES)}")
    reason = reason.strip()
    if not reason:
        raise TriageError("a state change needs a reason")
    if wanted == current:
        raise TriageError(f"the finding is already {current}")
    state = State(wanted)
    rule = proposed_rule(kind, route, paths) if state is State.NOISE else ""
    return Change(state, reason, version, rule)


def proposed_rule(kind: str, route: str, paths: Sequence[str]) -> str:
    """The config lines that would ignore a finding's differences (TOML), for the
    operator to confirm by adding them; raises TriageError when no rule can say it."""
    if kind in _RULELESS:
        raise TriageError(f"a {kind.replace('_', ' ')} finding is not noise that a rule can "
                          "ignore; mark it expected (with the reason) instead")
    if kind == "header":
        names = ", ".join(f'"{p}"' for p in paths)
        return f"# [compare] headers: remove {names} from the compared headers"
    if kind == "row_changed":
        columns = sorted({p.replace("[*]", "") for p in paths if "." in p})
        if not columns:
            raise TriageError("no column to ignore in this row finding")
        return "\n".join(f'[rows.columns."{c}"]\nignore = true' for c in columns)
    body = sorted({p for p in paths if p.startswith("$")})
    for path in body:
        compile_pattern(path)
    if not body:
        raise TriageError("no body path to ignore in this finding")
    listed = ", ".join(f'"{p}"' for p in body)
    return f'[[routes]]\ntemplate = "{route}"\nignore_paths = [{listed}]'


def reopens(state: str, marked_under: str | None, seen_under: str | None) -> bool:
    """True when a finding seen again under candidate version `seen_under` leaves the
    `fixed` state it was put in under `marked_under`. Without any version known, being
    seen again is enough."""
    if state != State.FIXED:
        return False
    if marked_under is None and seen_under is None:
        return True
    return seen_under != marked_under


def blocks(state: str) -> bool:
    """True when the gate counts the exchanges of a finding in this state."""
    return state not in NOT_BLOCKING

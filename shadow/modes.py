"""Modes: which backend holds which role.

    legacy-only      legacy serves, nothing mirrored
    shadow           legacy serves, candidate mirrored and compared
    cutover          candidate serves, legacy mirrored (keeps receiving the writes)
    candidate-only   candidate serves, nothing mirrored
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    LEGACY_ONLY = "legacy-only"
    SHADOW = "shadow"
    CUTOVER = "cutover"
    CANDIDATE_ONLY = "candidate-only"


MODES: tuple[str, ...] = tuple(m.value for m in Mode)
ORDER = (Mode.LEGACY_ONLY, Mode.SHADOW, Mode.CUTOVER, Mode.CANDIDATE_ONLY)


@dataclass(frozen=True, slots=True)
class Roles:
    """The backends that hold the primary and shadow roles in one mode."""

    mode: Mode
    primary: str
    shadow: str | None


_ROLES = {
    Mode.LEGACY_ONLY: Roles(Mode.LEGACY_ONLY, "legacy", None),
    Mode.SHADOW: Roles(Mode.SHADOW, "legacy", "candidate"),
    Mode.CUTOVER: Roles(Mode.CUTOVER, "candidate", "legacy"),
    Mode.CANDIDATE_ONLY: Roles(Mode.CANDIDATE_ONLY, "candidate", None),
}


def roles(mode: Mode | str) -> Roles:
    """The roles of a mode; raises ValueError for an unknown mode."""
    return _ROLES[Mode(mode)]


def is_forward(current: Mode | str, target: Mode | str) -> bool:
    """True when `target` is further along the cutover path than `current`."""
    return ORDER.index(Mode(target)) > ORDER.index(Mode(current))


class ModeState:
    """The current mode, read on every request. Changing it affects new requests only:
    a request takes one `Roles` snapshot at its start and keeps it to the end."""

    def __init__(self, mode: Mode | str) -> None:
        self._roles = roles(mode)
        self._listeners: list = []

    @property
    def current(self) -> Roles:
        return self._roles

    def set(self, mode: Mode | str) -> Roles:
        self._roles = roles(mode)
        for listener in self._listeners:
            listener(self._roles)
        return self._roles

    def subscribe(self, listener) -> None:
        self._listeners.append(listener)

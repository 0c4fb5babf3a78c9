"""The `[compare]` section of the configuration: how two replies are compared, and the
recheck of reads that raced writes. Part of shadow.settings, which re-exports it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]


class Scrubber(_Model):
    pattern: str
    replacement: str = ""

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc}): {value!r}") from None
        return value


class Bridge(_Model):
    bool_int: bool = False
    timestamps: bool = False
    numeric_strings: bool = False
    empty_null: bool = False


class RecheckSettings(_Model):
    """The recheck of a mismatched safe read that overlapped writes (shadow.recheck): it
    waits (at most `max_held` of them, each at most `max_wait` seconds) for a moment
    when no write runs on either side, then is sent again to both builds, at most
    `concurrency` at once and `per_second` a second. `enabled = false` records such
    mismatches at once, as they are."""

    enabled: bool = True
    max_held: Count = 200
    max_wait: Positive = 10.0
    concurrency: Count = 2
    per_second: Positive = 20.0


class CompareSettings(_Model):
    """How two replies are compared (see shadow.compare); `recheck`: reads that raced
    writes."""

    headers: list[str] = ["content-type"]
    ignore_paths: list[str] = []
    unordered_paths: list[str] = []
    numeric_tolerance: Annotated[float, Field(ge=0)] = 0.0
    time_tolerance: Annotated[float, Field(ge=0)] = 0.0
    scrubbers: list[Scrubber] = []
    bridge: Bridge = Bridge()
    offload_bytes: Count = 32768
    offload_workers: Annotated[int, Field(ge=0)] = 1
    offload_timeout: Positive = 10.0
    offload_queue: Count = 32
    recheck: RecheckSettings = RecheckSettings()

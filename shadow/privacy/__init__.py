"""Privacy: the only way into the state store (DESIGN.md promise 5).

    keep.py         `[privacy] keep` rules, compiled and validated at start-up
    fingerprint.py  keyed fingerprints and the per-installation key (outside the state file)
    shapes.py       values as stored: kept, or type + length + fingerprint; keys that are values
    bodies.py       every body kind and request targets as stored
    sample.py       the stored record of a comparison, safe difference paths and details
    logs.py         backend log lines as stored: known words kept, other words fingerprinted
    scan.py         the privacy check: what a state store holds that looks personal
    cli.py          `shadow privacy-check` and `shadow store purge`
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from shadow.privacy.fingerprint import Fingerprinter, PrivacyKeyError, load_key
from shadow.privacy.keep import KeepRules
from shadow.privacy.logs import LogShaper
from shadow.privacy.sample import NOT_STORED, SampleBuilder
from shadow.privacy.shapes import Shaper
from shadow.settings import PrivacySettings

__all__ = ["NOT_STORED", "PrivacyKeyError", "SampleBuilder", "build"]


def build(settings: PrivacySettings, state_path: str,
          environ: Mapping[str, str] = os.environ) -> SampleBuilder:
    """The sample builder of a configuration; raises PrivacyKeyError (no safe key) or
    ValueError (bad keep rules, normally caught by config validation)."""
    key = load_key(state_path=state_path, key_file=settings.key_file,
                   key_env=settings.key_env, environ=environ)
    shaper = Shaper(KeepRules.compile(settings.keep), Fingerprinter(key),
                    settings.keep_numbers)
    return SampleBuilder(shaper, LogShaper(shaper.fp, settings.log_words, shaper.kept_name))

"""The fingerprint key (outside the state file), the scan of the privacy check and the
marker value, without a proxy."""

from __future__ import annotations

import os
import stat

import pytest

from shadow.marker import Marker, verify
from shadow.privacy.fingerprint import PrivacyKeyError, load_key
from shadow.privacy.scan import looks_personal, luhn


def test_the_key_file_is_made_0600_next_to_the_state_file_and_kept(tmp_path):
    state = str(tmp_path / "state.db")
    first = load_key(state_path=state, key_file=None, key_env="NOPE", environ={})
    path = tmp_path / "state.db.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert load_key(state_path=state, key_file=None, key_env="NOPE", environ={}) == first
    assert not (tmp_path / "state.db").exists(), "the key is not inside the state file"


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "shared.key"
    path.write_text("k" * 64)
    os.chmod(path, 0o644)
    with pytest.raises(PrivacyKeyError, match="chmod 600"):
        load_key(state_path="x", key_file=str(path), key_env="NOPE", environ={})


def test_the_environment_wins_and_a_short_key_is_refused(tmp_path):
    key = load_key(state_path=str(tmp_path / "s"), key_file=None, key_env="K",
                   environ={"K": "e" * 40})
    assert key == b"e" * 40 and not (tmp_path / "s.key").exists()
    with pytest.raises(PrivacyKeyError, match="at least 32"):
        load_key(state_path="x", key_file=None, key_env="K", environ={"K": "short"})


@pytest.mark.parametrize("text, found", [
    ("jane.doe+x@example.co.uk", ["e-mail"]),
    ("+44 7700 900123", ["phone number"]),
    ("(555) 010-9999 ext", ["phone number"]),
    ("4111-1111-1111-1111", ["card number"]),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", ["token"]),
    ("I have been feeling low and anxious most days", ["free text"]),
    ("«str 19 datetime 9999-99-99 99:99:99 #a3e9f6b1e999»", []),
    ("2026-02-04 15:47:20", []),
    ("type changed: int -> str", []),
    ("/api/users/«str 19 #9585370ed20d»/records?page=2", []),
    ("4111-1111-1111-1112", []),  # not Luhn-valid, and too long for a phone number
    ("fingerprints #123456789012 and #0123456789ab", []),
])
def test_what_looks_personal(text, found):
    assert looks_personal(text) == found


def test_luhn():
    assert luhn("4111111111111111") and luhn("79927398713") and not luhn("79927398710")


def test_the_marker_value_is_an_hmac_a_client_cannot_make():
    marker = Marker("X-Shadow-Request", "1", secret="s3cret")
    name, value = marker.for_exchange("ab12-7")
    assert name == "X-Shadow-Request" and verify(value, "s3cret")
    assert not verify(value, "other") and not verify("ab12-8." + value.split(".")[1], "s3cret")
    assert not verify("1", "s3cret") and Marker("M", "1").for_exchange("x") == ("M", "1")
    kept, removed = marker.strip([("x-shadow-request", "1"), ("A", "b"), ("X-SHADOW-REQUEST", "")])
    assert kept == [("A", "b")] and removed == 2

"""Lifting a body: JSON, text or hash; content decoding for comparison only; never raises."""

import gzip
import re
import zlib

import pytest

from shadow.compare import lift as lift_module
from shadow.compare.lift import Form, lift
from shadow.compare.rules import Scrubber


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/problem+json", "APPLICATION/JSON"],
)
def test_json_by_content_type(content_type):
    doc = lift(b'{"a": [1, true]}', content_type=content_type)
    assert doc.form is Form.JSON
    assert doc.value == {"a": [1, True]}


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "text/html"])
def test_json_by_its_first_character_when_the_type_is_textual_or_missing(content_type):
    assert lift(b' \n[1, 2]', content_type=content_type).form is Form.JSON


def test_a_binary_type_is_never_sniffed():
    doc = lift(b'{"a": 1}', content_type="image/png")
    assert doc.form is Form.BYTES
    assert doc.value.startswith("sha256:") and len(doc.value) == 7 + 64


def test_invalid_json_that_claims_json_is_text_with_a_note():
    doc = lift(b'{"a": 1', content_type="application/json")
    assert doc.form is Form.TEXT
    assert doc.value == '{"a": 1'
    assert doc.note.startswith("not valid JSON")


def test_deep_nesting_falls_back_to_text():
    body = b"[" * 100_000 + b"]" * 100_000
    doc = lift(body, content_type="application/json")
    assert doc.form is Form.TEXT
    assert "depth" in doc.note


def test_a_byte_order_mark_does_not_stop_json():
    assert lift(b'\xef\xbb\xbf{"a": 1}', content_type="application/json").value == {"a": 1}


def test_text_is_decoded_with_its_charset_and_scrubbed():
    scrubber = Scrubber(re.compile(r'name="csrf" value="\w+"'), 'name="csrf" value="X"')
    body = 'é <input name="csrf" value="abc123">'.encode("latin-1")
    doc = lift(body, content_type="text/html; charset=ISO-8859-1", scrubbers=(scrubber,))
    assert doc.form is Form.TEXT
    assert doc.value == 'é <input name="csrf" value="X">'
    assert doc.text((scrubber,)) == doc.value


def test_unknown_charset_falls_back_to_utf8_with_replacement():
    doc = lift(b"caf\xc3\xa9 \xff", content_type="text/plain; charset=no-such-thing")
    assert doc.value == "café \ufffd"


def test_untyped_bodies_are_text_when_utf8_else_hashed():
    assert lift("héllo".encode()).form is Form.TEXT
    assert lift(b"\x89PNG\x00\xff").form is Form.BYTES


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", lambda b: gzip.compress(b, mtime=0)),
        ("x-gzip", lambda b: gzip.compress(b, mtime=0)),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),
        ("GZIP", lambda b: gzip.compress(b, mtime=0)),
        ("identity, gzip", lambda b: gzip.compress(b, mtime=0)),
        ("gzip, deflate", lambda b: zlib.compress(gzip.compress(b))),
    ],
)
def test_content_encoding_is_undone_for_comparison(encoding, encode):
    raw = b'{"a": 1}'
    doc = lift(encode(raw), content_type="application/json", content_encoding=encoding)
    assert doc.form is Form.JSON, doc.note
    assert doc.value == {"a": 1}
    assert doc.data == raw


def test_concatenated_gzip_members_are_all_decoded():
    body = gzip.compress(b'{"a": ', mtime=0) + gzip.compress(b"1}", mtime=0)
    assert lift(body, content_type="application/json", content_encoding="gzip").value == {"a": 1}


@pytest.mark.parametrize(
    ("encoding", "body", "note"),
    [
        ("zstd", b"whatever", "not supported"),
        ("gzip", b"not gzip at all", "cannot be decoded"),
        ("gzip", gzip.compress(b"x" * 1000)[:-12], "cannot be decoded"),
        ("deflate", b"\x00\x01\x02", "cannot be decoded"),
    ],
)
def test_undecodable_bodies_compare_by_raw_hash(encoding, body, note):
    doc = lift(body, content_type="application/json", content_encoding=encoding)
    assert doc.form is Form.BYTES
    assert note in doc.note
    assert doc.data == body


def test_decompression_is_bounded():
    body = gzip.compress(b"0" * 100_000)
    doc = lift(body, content_type="text/plain", content_encoding="gzip", max_decoded=10_000)
    assert doc.form is Form.BYTES
    assert "expands beyond" in doc.note
    assert lift(body, content_type="text/plain", content_encoding="gzip").value == "0" * 100_000


def test_brotli_without_a_brotli_module_compares_raw_bytes(monkeypatch):
    monkeypatch.setattr(lift_module, "_brotli", None)
    doc = lift(b"\x0b\x02\x80hi\x03", content_type="text/plain", content_encoding="br")
    assert doc.form is Form.BYTES
    assert "'br' not supported" in doc.note


def test_digest_and_text_of_each_form():
    json_doc = lift(b'{"a":1}', content_type="application/json")
    assert json_doc.text() == '{"a":1}'
    assert json_doc.digest() == lift(b'{"a":1}', content_type="image/png").digest()
    assert lift(b"\x00\xff", content_type="image/png").text() is None


def test_documents_have_no_equality():
    assert lift(b'{"a": true}') != lift(b'{"a": true}')

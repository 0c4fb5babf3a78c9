"""Lift a reply body, once, into a document that can be compared.

    JSON   the parsed value, when the content type says JSON (or, for a textual or
           untyped body, when it starts like JSON) and it parses
    TEXT   the decoded text with the scrubbers applied, for textual bodies and for
           bodies that claim JSON but are not valid JSON
    BYTES  `sha256:<hex>` of the bytes, for everything else

A `Content-Encoding` (gzip, deflate, br when a brotli module is importable) is undone for
the comparison only; the client always gets the bytes as sent. A body whose encoding is
unknown, broken or expands beyond `max_decoded` bytes is compared by the hash of its raw
bytes. Lifting never raises.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from shadow.compare.rules import Scrubber

try:
    import brotli as _brotli
except ImportError:
    try:
        import brotlicffi as _brotli
    except ImportError:
        _brotli = None

MAX_DECODED = 32 * 1024 * 1024
"""Bodies that decompress to more than this many bytes are compared by raw hash."""

_STARTS_LIKE_JSON = re.compile(rb"[ \t\r\n]*[\[{]")
_BOM = b"\xef\xbb\xbf"
_TEXTUAL_TYPES = frozenset({
    "application/xml",
    "application/javascript",
    "application/ecmascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
    "application/yaml",
    "application/x-yaml",
    "application/sql",
    "application/x-ndjson",
})


class Form(StrEnum):
    JSON = "json"
    TEXT = "text"
    BYTES = "bytes"


@dataclass(frozen=True, slots=True, eq=False)
class Document:
    """One reply body as compared.

    `value` is the parsed JSON value, the scrubbed text, or `sha256:<hex>`. `data` is the
    body after content decoding (the raw body when it could not be decoded). `note` says
    why a body was not lifted as its headers announced ('not valid JSON: ...',
    "content-encoding 'zstd' not supported"), or is empty. Documents have no `==`: in
    Python `True == 1`, which is not how a JSON client sees it.
    """

    form: Form
    value: Any
    data: bytes
    charset: str = "utf-8"
    note: str = ""

    def text(self, scrubbers: Sequence[Scrubber] = ()) -> str | None:
        """The body as text (scrubbed), or None for a BYTES document."""
        if self.form is Form.TEXT:
            return self.value
        if self.form is Form.BYTES:
            return None
        return _scrub(self.data.decode(self.charset, "replace"), scrubbers)

    def digest(self) -> str:
        """`sha256:<hex>` of `data`."""
        if self.form is Form.BYTES:
            return self.value
        return _digest(self.data)


def lift(
    body: bytes,
    *,
    content_type: str | None = None,
    content_encoding: str | None = None,
    scrubbers: Sequence[Scrubber] = (),
    max_decoded: int = MAX_DECODED,
) -> Document:
    """The comparable document of one body, given the reply's Content-Type and
    Content-Encoding header values."""
    data, note = _decoded(body, content_encoding, max_decoded)
    if data is None:
        return Document(Form.BYTES, _digest(body), body, note=note)
    media_type, charset = _media_type(content_type)
    textual = _is_textual(media_type)
    if _is_json(media_type) or ((textual or not media_type) and _STARTS_LIKE_JSON.match(data)):
        try:
            return Document(Form.JSON, orjson.loads(data[3:] if data.startswith(_BOM) else data), data)
        except orjson.JSONDecodeError as exc:
            note = f"not valid JSON: {exc}"
            textual = textual or _is_json(media_type)
    if not media_type and not textual:
        textual = _is_utf8(data)
    if textual:
        text = _scrub(data.decode(charset, "replace"), scrubbers)
        return Document(Form.TEXT, text, data, charset, note)
    return Document(Form.BYTES, _digest(data), data, note=note)


def _decoded(body: bytes, content_encoding: str | None, limit: int) -> tuple[bytes | None, str]:
    """(decoded body, note); None when the encoding is unknown or the body is broken."""
    if not content_encoding:
        return body, ""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    data = body
    for coding in reversed([c for c in codings if c and c != "identity"]):
        try:
            if coding in ("gzip", "x-gzip"):
                data = _inflate(data, zlib.MAX_WBITS | 16, limit)
            elif coding == "deflate":
                try:
                    data = _inflate(data, zlib.MAX_WBITS, limit)
                except zlib.error:
                    data = _inflate(data, -zlib.MAX_WBITS, limit)
            elif coding == "br" and _brotli is not None:
                data = _brotli.decompress(data)
                if len(data) > limit:
                    raise _TooLarge
            else:
                return None, f"content-encoding {coding!r} not supported; raw bytes compared"
        except _TooLarge:
            return None, f"{coding} body expands beyond {limit} bytes; raw bytes compared"
        except Exception as exc:  # zlib.error, brotli.error: a broken body is data, not a failure
            return None, f"{coding} body cannot be decoded ({exc}); raw bytes compared"
    return data, ""


class _TooLarge(Exception):
    pass


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        inflater = zlib.decompressobj(wbits)
        chunk = inflater.decompress(data, limit - size + 1)
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise _TooLarge
        chunks.append(chunk)
        chunk = inflater.flush()
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not inflater.eof:
            raise zlib.error("truncated stream")
        data = inflater.unused_data
        if not data or wbits != zlib.MAX_WBITS | 16:
            return b"".join(chunks)


def _media_type(content_type: str | None) -> tuple[str, str]:
    """(lower-case media type, a usable charset) of a Content-Type value."""
    if not content_type:
        return "", "utf-8"
    media_type, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            candidate = value.strip().strip('"').lower()
            try:
                codecs.lookup(candidate)
            except LookupError:
                continue
            charset = candidate
    return media_type.strip().lower(), charset


def _is_json(media_type: str) -> bool:
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def _is_textual(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or _is_json(media_type)
        or media_type in _TEXTUAL_TYPES
        or media_type.endswith("+xml")
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _scrub(text: str, scrubbers: Sequence[Scrubber]) -> str:
    for scrubber in scrubbers:
        text = scrubber.apply(text)
    return text


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()

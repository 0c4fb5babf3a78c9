import orjson

from shadow.config import RedactSettings
from shadow.redact import Redactor

R = Redactor(RedactSettings())


def test_headers_named_in_config_are_redacted_whatever_their_case():
    out = dict(R.headers([("Authorization", "Bearer abc"), ("COOKIE", "s=1"), ("Accept", "*/*")]))
    assert out == {"Authorization": "[redacted]", "COOKIE": "[redacted]", "Accept": "*/*"}


def test_sensitive_json_keys_are_redacted_at_any_depth():
    body = orjson.dumps({"user": {"password": "hunter2", "new_password": "x", "pin": 1234},
                         "entries": [{"note": "I felt anxious", "score": 4}]})
    text = R.body(body, "application/json", 10_000)
    assert "hunter2" not in text and "anxious" not in text and "1234" not in text
    assert orjson.loads(text)["entries"][0]["score"] == 4


def test_patterns_catch_personal_data_in_free_text():
    text = R.body(b"contact jane.doe@example.org now", "text/plain", 1000)
    assert "jane.doe" not in text


def test_query_parameters_and_form_fields():
    assert "s3cr3t" not in R.target("/login?token=s3cr3t&page=2")
    assert "page=2" in R.target("/login?token=s3cr3t&page=2")
    form = R.body(b"username=al&password=pw123&remember=1", "application/x-www-form-urlencoded", 1000)
    assert "pw123" not in form and "remember=1" in form


def test_binary_is_summarised_and_long_text_cut():
    assert R.body(b"\x00\x01", "application/octet-stream", 100) == "[2 bytes of application/octet-stream]"
    assert len(R.body(b"a" * 5000, "text/plain", 100)) < 200


def test_invalid_json_claimed_as_json_is_treated_as_text():
    text = R.body(b'{"password": "pw", "Notes": "sad", "score": 3', "application/json", 100)
    assert text.startswith('{"password"') and '"pw"' not in text and "sad" not in text
    assert '"score": 3' in text
    # ...but its patterns are still applied
    assert "x@y.io" not in R.body(b'{"mail": "x@y.io"', "application/json", 100)

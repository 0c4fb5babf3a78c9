"""Salted password hashes compared by scheme and parameters, not by value (pure)."""

import base64
import hashlib
import secrets

import pytest

from shadow.compare.salted import same_scheme, shape


def scrypt_hash(password: str, n: int = 16384) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${n}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def salted(template: str) -> str:
    """`template` with each `S` run replaced by fresh random base64-ish text."""
    out = []
    for part in template.split("$"):
        out.append(secrets.token_urlsafe(len(part))[:len(part)] if part and set(part) == {"S"}
                   else part)
    return "$".join(out)


SCHEMES = [
    "$2b$12$" + "S" * 53,
    "$argon2id$v=19$m=65536,t=3,p=4$" + "S" * 22 + "$" + "S" * 43,
    "$6$rounds=5000$" + "S" * 16 + "$" + "S" * 86,
    "pbkdf2_sha256$870000$" + "S" * 22 + "$" + "S" * 44,
    "pbkdf2:sha256:600000$" + "S" * 16 + "$" + "S" * 64,
    "scrypt:32768:8:1$" + "S" * 16 + "$" + "S" * 128,
    "bcrypt_sha256$$2b$12$" + "S" * 53,
]


@pytest.mark.parametrize("template", SCHEMES)
def test_two_salts_of_one_scheme_are_the_same(template):
    a, b = salted(template), salted(template)
    assert a != b and shape(a) is not None
    assert same_scheme(a, b)


def test_the_demo_apps_scrypt_strings_are_recognised():
    assert same_scheme(scrypt_hash("pw"), scrypt_hash("pw"))


@pytest.mark.parametrize("primary, shadow", [
    ("$2b$12$" + "a" * 53, "$2b$10$" + "a" * 53),                   # lower cost
    ("$2b$12$" + "a" * 53, "$6$" + "a" * 16 + "$" + "b" * 86),      # another scheme
    ("pbkdf2_sha256$870000$" + "a" * 22 + "$" + "b" * 44,
     "pbkdf2_sha256$870000$" + "a" * 22 + "$" + "b" * 32),          # a shorter digest
    (scrypt_hash("pw"), scrypt_hash("pw", n=1024)),                 # weaker parameters
    (scrypt_hash("pw"), "pw"),                                      # stored in the clear
    (scrypt_hash("pw"), None),
    (scrypt_hash("pw"), hashlib.sha256(b"pw").hexdigest()),         # unsalted
])
def test_another_scheme_parameter_or_form_still_differs(primary, shadow):
    assert not same_scheme(primary, shadow)


@pytest.mark.parametrize("text", [
    "costs $5 or $6", "$5$a$b", "1$abcdefghij$klmnopqrst", "price: $12.50",
    "a$b$c", "", "$", 42, None, "y$abcdefghij$klmnopqrst",
])
def test_ordinary_values_are_not_taken_for_hashes(text):
    assert shape(text) is None

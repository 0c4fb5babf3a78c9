"""Settings that come from the environment, and the secrets they carry kept out of sight.

    expand_env(value)      `${NAME}` replaced by the environment variable NAME
    redact_secrets(text)   the password of every URL or DSN in `text` shown as `***`

So a DSN's password can live in the environment instead of the config file, and no
error, log line or status ever prints it.
"""

from __future__ import annotations

import os
import re

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def expand_env(value: str) -> str:
    """`value` with every `${NAME}` replaced by the environment variable NAME, so that
    secrets stay out of the file. Raises ValueError naming each variable not set."""
    missing = [name for name in _ENV.findall(value) if name not in os.environ]
    if missing:
        raise ValueError(f"environment variable(s) not set: {', '.join(dict.fromkeys(missing))}")
    return _ENV.sub(lambda match: os.environ[match[1]], value)


def redact_secrets(text: str) -> str:
    """`text` with the password of every URL or DSN in it replaced by `***`."""
    return _PASSWORD.sub(r"\1***@", text)

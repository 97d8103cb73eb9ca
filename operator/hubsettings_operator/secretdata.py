"""Values out of a Secret's `data` (base64), in one place: the DSN the operator and the CLI read, the admin token.

Every value is registered with the redactor the moment it is decoded, so nothing downstream can print it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from hubsettings_operator.errors import SecretNotFound
from hubsettings_operator.redact import register_dsn


def decode(raw: str) -> str:
    """One base64 `data` value as text (surrounding whitespace dropped, as a file's trailing newline)."""
    return base64.b64decode(raw).decode("utf-8", errors="replace").strip()


def dsn_from_data(data: Mapping[str, str] | None, namespace: str, name: str, key: str) -> str:
    """The DSN under `key` of Secret `namespace/name` whose `data` is given (None: it could not be read).

    SecretNotFound says which of absent / no such key / empty it is (key names only, never a value)."""
    if data is None:
        raise SecretNotFound(f"Secret {namespace}/{name} cannot be read")
    if key not in data:
        raise SecretNotFound(
            f"Secret {namespace}/{name} has no key {key!r} (keys: {', '.join(sorted(data)) or 'none'})"
        )
    value = decode(data[key])
    register_dsn(value)
    if not value:
        raise SecretNotFound(f"Secret {namespace}/{name} key {key!r} is empty")
    return value

"""Keeping secrets secret: fingerprints, DSN redaction, and a registry of values that must never be printed.

Every string the operator puts in a log line, an Event, a status field or an exception message passes
through `scrub`, which replaces any registered secret (DSNs, their passwords, secret env values) with
`<redacted>`. Secrets are registered as soon as they are read (from a Secret, a flag, a file).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from urllib.parse import unquote, urlsplit

REDACTED = "<redacted>"
_MIN_SECRET_LEN = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_dsns: set[str] = set()  # DSNs whose passwords are registered too (`_secrets` alone may hold a bare DSN)

# key=value DSN passwords and URL userinfo passwords, for text that embeds a DSN we never registered.
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)


def fingerprint(value: str | bytes) -> str:
    """Short, stable, non-reversible identity of a secret value: `sha256:` + 12 hex chars."""
    # surrogatepass: env text may carry lone surrogates (JSON "\\udcff"); it still gets a fingerprint.
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]


def register_secret(value: str | None) -> None:
    """Remember a value that must never be printed (too-short values are ignored to avoid mangling text)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def register_dsn(dsn: str) -> None:
    """Register a DSN and the password inside it (URL or key=value form, raw and percent-decoded)."""
    with _lock:
        if dsn in _dsns:
            return  # registered before, password and all (every reconcile registers its DSN again)
    register_secret(dsn)
    for pw in dsn_passwords(dsn):
        register_secret(pw)
        register_secret(unquote(pw))
    with _lock:
        _dsns.add(dsn)


def dsn_passwords(dsn: str) -> list[str]:
    found: list[str] = []
    try:
        parts = urlsplit(dsn)
        if parts.scheme.startswith("postgres") and parts.password:
            found.append(parts.password)
    except ValueError:
        pass
    for m in _KV_PASSWORD.finditer(dsn):
        found.append(m.group(2).strip("'"))
    return found


def scrub(text: str) -> str:
    """Remove every registered secret and any embedded DSN password from `text`."""
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for v in values:
        if v in text:
            text = text.replace(v, REDACTED)
    text = _URL_USERINFO.sub(rf"\1{REDACTED}\3", text)
    return _KV_PASSWORD.sub(rf"\1{REDACTED}", text)


def describe_dsn(dsn: str) -> str:
    """A printable description of where a DSN points (host, port, database), never the credentials."""
    try:
        parts = urlsplit(dsn)
        if parts.scheme.startswith("postgres"):
            host = parts.hostname or "localhost"
            port = parts.port or 5432
            db = parts.path.lstrip("/") or "(default)"
            return f"{host}:{port}/{db}"
    except ValueError:
        pass
    return fingerprint(dsn)


class ScrubFilter(logging.Filter):
    """Logging filter that scrubs the fully formatted message (args included) and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            msg = str(record.msg)
        record.msg = scrub(msg)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


def install_log_scrubber(logger: logging.Logger | None = None) -> None:
    """Attach the scrubber to every handler of the root logger (and future ones via the logger itself)."""
    target = logger or logging.getLogger()
    flt = ScrubFilter()
    target.addFilter(flt)
    for handler in target.handlers:
        handler.addFilter(flt)

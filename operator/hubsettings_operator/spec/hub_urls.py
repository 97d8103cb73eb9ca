"""The Hub's rule of record for `endpoints.monitoring_dashboard_url` (`config.ValidateMonitoringDashboardURL`). Pure.

"" (unset), or an absolute http or https URL with a host, no user credentials, at most 2048 characters, no
whitespace, control, bidirectional-formatting or invisible format character and no U+FFFD, and a port (if
any) from 1 to 65535. The Hub's admin API refuses anything else; the settings schema copy with this key's
pattern is not in the source index, so the operator applies the Go function's rule (operator rule `format`).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

MAX_LENGTH = 2048  # config.MonitoringDashboardURLMaxLength
_FORBIDDEN = {
    "\u061c",
    "\u200e",
    "\u200f",
    *(chr(c) for c in range(0x202A, 0x202F)),
    *(chr(c) for c in range(0x2066, 0x206A)),
    "\u00ad",
    "\u180e",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\ufffd",
}


def _bad_char(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Cc" or ch in _FORBIDDEN


def dashboard_url_problem(raw: str) -> str:
    """What the Hub's check finds wrong with `raw`, or "" when it accepts it."""
    if raw == "":
        return ""
    if len(raw) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if any(_bad_char(ch) for ch in raw):
        return "must not contain whitespace, control or invisible characters"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return "must be an absolute http or https URL with a valid port"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an absolute http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry user credentials"
    if port is not None and not 1 <= port <= 65535:
        return "port must be 1 to 65535"
    return ""

"""`hubsettings validate --hub-url`: the running Hub's version and section schemas, or why they are not used.

Two admin requests to the Hub (`GET /api/v1/admin/server-config` for `scion_version`, `GET
/api/v1/admin/server-config/schema` for the section schemas), with the token read from a file and sent as a
Bearer token (never printed). Any failure falls back to the generated facts; the returned note says which
was used, for the command's output.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubsettings_operator.spec import live_schema
from hubsettings_operator.spec.live_schema import LiveSchemaError, LiveSchemas, parse_schema_response

SERVER_CONFIG_PATH = "/api/v1/admin/server-config"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LiveHub:
    """What validation uses from the Hub: its version and schemas (None when not available), and a note."""

    version: str | None
    live: LiveSchemas | None
    note: str


def _get(url: str, token: str) -> Any:
    # Only http(s) URLs get here (fetch checks the scheme), so no file: or custom scheme is ever opened.
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
        return json.loads(response.read().decode("utf-8"))


def fetch(hub_url: str, token_file: str | None) -> LiveHub:
    """The live Hub's version and schemas, falling back to the generated facts with the reason."""
    fallback = "validated against the generated Hub facts"
    if not hub_url.startswith(("http://", "https://")):
        return LiveHub(None, None, f"{fallback}: --hub-url must be an http:// or https:// URL")
    if not token_file:
        return LiveHub(None, None, f"{fallback}: no --token-file for {hub_url}")
    try:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        return LiveHub(None, None, f"{fallback}: cannot read the token file ({type(exc).__name__})")
    base = hub_url.rstrip("/")
    version: str | None = None
    try:
        config = _get(base + SERVER_CONFIG_PATH, token)
        found = config.get("scion_version") if isinstance(config, dict) else None
        version = str(found) if found else None
        cached = live_schema.cached(version) if version else None
        schemas = cached or parse_schema_response(_get(base + live_schema.SCHEMA_PATH, token), version)
    except urllib.error.HTTPError as exc:
        return LiveHub(version, None, f"{fallback}: the Hub answered HTTP {exc.code} at {base}")
    except (urllib.error.URLError, OSError, TimeoutError, ValueError, LiveSchemaError) as exc:
        return LiveHub(
            version, None, f"{fallback}: the Hub at {base} could not be used ({type(exc).__name__})"
        )
    live_schema.remember(schemas)
    return LiveHub(
        version,
        schemas,
        f"validated against the live schema of the Hub at {base} (version {version or 'unknown'})",
    )

"""Section schemas served by a running Hub, as validation uses them. Pure (the HTTP call is the caller's).

`GET /api/v1/admin/server-config/schema` answers `{"sections": {"<name>": {"schema": {...}, "koanf_paths":
[...]}}}` (pkg/hub handleAdminServerConfigSchema over opsettings.SchemaInfo: each schema self-contained, local
`$ref`s inlined). A section that running Hub knows and the operator's catalog does not is then validated too,
instead of being written unchecked. Schemas are cached per Hub version: replicas of one version serve the same.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_PATH = "/api/v1/admin/server-config/schema"


class LiveSchemaError(ValueError):
    """The answer is not the schema endpoint's shape."""


@dataclass(frozen=True)
class LiveSchemas:
    """The section schemas of one running Hub version."""

    version: str | None
    schemas: Mapping[str, Mapping[str, Any]]
    koanf_paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def cache_key(self) -> str:
        return f"{self.version}:{','.join(sorted(self.schemas))}"


def parse_schema_response(body: Any, version: str | None = None) -> LiveSchemas:
    """The schema endpoint's JSON answer -> LiveSchemas; LiveSchemaError for anything else."""
    sections = body.get("sections") if isinstance(body, Mapping) else None
    if not isinstance(sections, Mapping) or not sections:
        raise LiveSchemaError("the answer has no 'sections' object")
    schemas: dict[str, Mapping[str, Any]] = {}
    paths: dict[str, tuple[str, ...]] = {}
    for name, info in sections.items():
        if not isinstance(info, Mapping) or not isinstance(info.get("schema"), Mapping):
            raise LiveSchemaError(f"section {name!r} has no schema object")
        schemas[str(name)] = info["schema"]
        paths[str(name)] = tuple(str(p) for p in info.get("koanf_paths") or ())
    return LiveSchemas(version=version, schemas=schemas, koanf_paths=paths)


_cache: dict[str, LiveSchemas] = {}
_lock = threading.Lock()


def cached(version: str) -> LiveSchemas | None:
    """The schemas already fetched from a Hub of this version, if any."""
    with _lock:
        return _cache.get(version)


def remember(live: LiveSchemas) -> None:
    """Keep a version's schemas (only answers that name their version are cached)."""
    if live.version:
        with _lock:
            _cache[live.version] = live

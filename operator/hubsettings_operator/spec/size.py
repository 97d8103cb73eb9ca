"""The largest spec the operator accepts: one that fits, with everything else stored on the object, under
etcd's request limit. Pure.

etcd refuses a write over its request limit (`--max-request-bytes`, 1.5 MiB by default): `etcdserver: request
is too large`. The API server stores a HubSettings as JSON, and the object carries more than its spec: its
`managedFields` (up to one entry per spec field, so for a spec of many small keys about as large again as the
spec), annotations, and the status (conditions, capped reports, per-replica convergence). kopf's diff base
(`status.lastHandledConfiguration`) would be a second copy of the spec, so the operator keeps it compact for
large specs (`runtime/diffbase.py`: a digest). What remains is capped here: the spec, as the API server
serialises it, at most MAX_SPEC_BYTES, so spec + managedFields + status stay under the limit.

CEL cannot enforce this (it has no serialised-size function), so the check runs wherever a spec is validated:
`hubsettings validate`/`plan` and the operator (Stalled / InvalidSpec, one reason, re-examined only when the
spec changes).
"""

from __future__ import annotations

import json
from typing import Any

ETCD_REQUEST_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes (1.5 MiB)
MAX_SPEC_BYTES = 640 * 1024  # the spec; the rest of the limit is for managedFields, metadata and status

# Go's encoding/json escapes these in strings as \u003c, \u003e, \u0026 (6 bytes instead of 1).
_GO_ESCAPED = ("<", ">", "&", "\u2028", "\u2029")


def stored_spec_bytes(raw: Any) -> int:
    """Bytes of the spec as the API server stores it (compact JSON, UTF-8, Go's HTML escapes)."""
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str)
    extra = sum(text.count(c) * (6 - len(c.encode("utf-8", "surrogatepass"))) for c in _GO_ESCAPED)
    return len(text.encode("utf-8", "surrogatepass")) + extra


def size_problem(raw: Any) -> tuple[str, str] | None:
    """(reason, hint) when the spec is too large to be stored with the rest of the object, else None."""
    size = stored_spec_bytes(raw)
    if size <= MAX_SPEC_BYTES:
        return None
    return (
        f"the spec is {size} bytes as stored, more than the limit of {MAX_SPEC_BYTES}: with its managedFields "
        f"and status the object would exceed etcd's request limit ({ETCD_REQUEST_LIMIT} bytes) and no status "
        "could be written",
        "Shorten the largest values (see spec.extraSettings and long strings), or split the settings over "
        "several HubSettings (each owns its own sections)",
    )

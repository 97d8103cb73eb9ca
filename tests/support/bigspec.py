"""Valid HubSettings specs of an exact stored size (spec/size.py counts bytes as the API server stores them)."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.spec.size import stored_spec_bytes


def spec_of(size: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """`base` (default: a minimal spec) grown with spec.extraSettings values under the per-value limit until
    it is exactly `size` bytes as stored."""
    spec: dict[str, Any] = dict(base or {"database": {"secretRef": {"name": "db"}}})
    spec["extraSettings"] = dict(spec.get("extraSettings") or {})
    i = 0
    while stored_spec_bytes(spec) < size - 64 * 1024:
        spec["extraSettings"][f"bulk_{i}"] = {"text": "x" * (60 * 1024)}
        i += 1
    spec["extraSettings"]["tail"] = {"text": ""}
    spec["extraSettings"]["tail"]["text"] = "y" * (size - stored_spec_bytes(spec))
    assert stored_spec_bytes(spec) == size
    return spec

"""Builders shared by the integration tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.apply import apply_spec, target_for
from hubsettings_operator.table.plan import WrittenRecord, owner_marker
from hubsettings_operator.table.store import ApplyResult, SettingsStore
from tests.support.fakekube import FakeKube


def make_spec(settings: dict[str, Any] | None = None, **spec: Any) -> HubSettingsSpec:
    raw = {"database": {"secretRef": {"name": "db"}}, "settings": settings or {}, **spec}
    parsed, errors = validate_spec(raw)
    assert parsed is not None, errors
    return parsed


async def apply(
    dsn: str,
    spec: HubSettingsSpec,
    *,
    name: str = "hub",
    namespace: str = "scion",
    profile: str = "auto",
    create_table: bool = False,
    dry_run: bool = False,
    store: SettingsStore | None = None,
    last_written: Mapping[str, WrittenRecord] | None = None,
) -> ApplyResult:
    own = store is None
    store = store or SettingsStore(dsn)
    try:
        return await apply_spec(
            store,
            spec,
            owner_marker(namespace, name),
            dry_run=dry_run,
            last_written=last_written,
            target=target_for(spec, profile=Profile(profile), create_table=create_table),
        )
    finally:
        if own:
            await store.close()


def facts_type_errors(section: str, doc: dict[str, Any]) -> list[str]:
    """Check a section document's leaves against the JSON types in the Hub's facts table (independent of
    our pydantic models): every field known to the facts must carry the facts' type."""
    by_path = {p["path"]: p for p in catalog.facts()["properties"]}
    py_types = {
        "string": str,
        "integer": int,
        "boolean": bool,
        "array": list,
        "object": dict,
        "number": (int, float),
    }
    errors: list[str] = []

    def walk(path: str, value: Any) -> None:
        prop = by_path.get(path)
        if prop is not None:
            expected = py_types.get(prop["type"])
            if expected is not None and not isinstance(value, expected):  # type: ignore[arg-type]
                errors.append(f"{path}: {type(value).__name__} is not {prop['type']}")
            if expected is int and isinstance(value, bool):
                errors.append(f"{path}: bool is not integer")
            if prop.get("enum") and value not in prop["enum"]:
                errors.append(f"{path}: {value!r} not in {prop['enum']}")
            return
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{path}.{key}", sub)

    for field, value in doc.items():
        koanf = catalog.SECTION_KOANF[section].get(field)
        if koanf is not None:
            walk(koanf, value)
    return errors


def put_hubs(kube: FakeKube, db: str, count: int, *, app: str, marker: str) -> list[str]:
    """`count` HubSettings in namespace scion, each with its own Secret and table -> their names.

    A distinct DSN per object (as `count` databases would be, on the one server): `application_name` tells
    their connections apart. `marker` is the extraSettings key each object writes its own name under."""
    names = [f"hub{i:03d}" for i in range(count)]
    for i, name in enumerate(names):
        kube.secrets[("scion", f"db-{name}", "url")] = f"{db}&application_name={app}-{i}"
        kube.put(
            "scion",
            name,
            {
                "database": {
                    "secretRef": {"name": f"db-{name}", "key": "url"},
                    "table": f"hs_{name}",
                    "createTable": True,
                },
                "extraSettings": {marker: name},
            },
        )
    return names

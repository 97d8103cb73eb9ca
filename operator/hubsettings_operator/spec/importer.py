"""`hubsettings import`: turn a Hub `settings.yaml` into a HubSettings manifest (pure, no I/O).

Layer 1 keys go under `spec.settings.<section>` (every koanf path `pkg/config/opsettings/registry.go` gives
any of the 21 sections, the maps of named entries `runtimes`, `profiles` and `harness_configs` whole), Layer
0 keys under `spec.bootstrap.expected`, secrets are dropped (with a warning), and keys the catalog does not
know are reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hubsettings_operator.spec import catalog, facts
from hubsettings_operator.spec.models import API_VERSION, KIND

# Federation intervals: the settings file takes an unquoted 0, the section document only strings.
_STRING_INTERVALS = ("refresh_interval", "debounce_interval")


@dataclass
class ImportResult:
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings.yaml -> {koanf.path: leaf value}; lists and free-form maps stay whole."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value and _descend(path):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def _descend(path: str) -> bool:
    """Keep maps whole where the catalog has a setting for the map itself (e.g. telemetry.resource)."""
    setting = catalog.by_key(path)
    return setting is None or setting.json_type != "object" or (_owner(path) is None and setting.layer == 0)


def _owner(path: str) -> tuple[str, str | None, list[str]] | None:
    """(section, field, nested path) owning a koanf path, by longest registered prefix. The field is None
    for a section that is a map of named entries (the path is then inside the section's document)."""
    best: tuple[str, str | None, list[str]] | None = None
    best_len = -1
    for section, root in catalog.MAP_SECTION_KOANF.items():
        if path == root or path.startswith(root + "."):
            rest = path[len(root) + 1 :].split(".") if path != root else []
            best, best_len = (section, None, rest), len(root)
    for section, fields in catalog.SECTION_KOANF.items():
        for name, koanf in fields.items():
            if koanf is None:
                continue
            if (path == koanf or path.startswith(koanf + ".")) and len(koanf) > best_len:
                rest = path[len(koanf) + 1 :].split(".") if path != koanf else []
                best, best_len = (section, name, rest), len(koanf)
    return best


def _set(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _expected_value(value: Any) -> str | int | bool:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def import_settings_yaml(doc: Any, name: str, namespace: str, secret_name: str = "hub-db") -> ImportResult:
    warnings: list[str] = []
    settings: dict[str, Any] = {}
    expected: dict[str, str | int | bool] = {}
    if not isinstance(doc, Mapping):
        raise ValueError("settings.yaml must be a mapping at the top level")
    for path, raw in sorted(flatten(doc).items()):
        value = raw
        owner = _owner(path)
        leaf = path.rsplit(".", 1)[-1]
        if owner is not None:
            section, fname, rest = owner
            goes = facts.newest()["not_applied_from_table"].get(f"{section}.{fname}")
            if goes is not None:
                warnings.append(
                    f"{path}: left out: the Hub never applies it from its table (set it through {goes})"
                )
                continue
            if section == "access" and fname == "admin_emails" and isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if section == "federation" and fname in _STRING_INTERVALS and isinstance(value, int):
                value = str(value)  # the file loader reads an unquoted 0 as "0"; the section is strict
            target = settings.setdefault(section, {})
            parts = [fname, *rest] if fname is not None else rest
            if parts:
                _set(target, parts, value)
            elif isinstance(value, Mapping):
                target.update(value)
            continue
        if catalog.is_layer0_path(path) or catalog.by_key(path) is not None:
            setting = catalog.by_key(path)
            if (setting is not None and setting.secret) or catalog.is_secret_name(leaf):
                warnings.append(f"{path}: secret dropped (secrets stay in the secret backend)")
                continue
            if value in (None, "", [], {}):
                continue
            if isinstance(value, Mapping):
                for sub, subval in flatten(value, path).items():
                    sub_setting = catalog.by_key(sub)
                    if catalog.is_secret_name(sub.rsplit(".", 1)[-1]) or (sub_setting and sub_setting.secret):
                        warnings.append(f"{sub}: secret dropped (secrets stay in the secret backend)")
                    elif sub_setting is None:
                        warnings.append(f"{sub}: not in the settings catalog; left out")
                    else:
                        expected[sub] = _expected_value(subval)
                continue
            if setting is None:
                warnings.append(f"{path}: not in the settings catalog; left out")
                continue
            expected[path] = _expected_value(value)
            continue
        warnings.append(f"{path}: not a Hub server setting the catalog knows; left out")
    spec: dict[str, Any] = {
        "database": {"secretRef": {"name": secret_name, "key": "url"}},
        "settings": settings,
    }
    if expected:
        spec["bootstrap"] = {"expected": dict(sorted(expected.items()))}
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    return ImportResult(manifest=manifest, warnings=warnings)

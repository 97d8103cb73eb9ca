"""Layer 0 values from a `settings.yaml` a Hub pod mounts (from a ConfigMap or a Secret), flattened to catalog
keys as the Hub's koanf loader reads them. Pure.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

import yaml

from hubsettings_operator.drift.env import (
    SETTINGS_FILE,
    Sources,
    _json_type,
    normalize,
    secret_text,
)
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.importer import flatten


def _volume_files(
    vol: Mapping[str, Any], sources: Sources
) -> tuple[dict[str, str] | None, str, bool, set[str]] | None:
    """(file name -> content or None if unreadable, label, secret, file names the volume declares)."""
    if vol.get("configMap"):
        name = str(vol["configMap"].get("name", ""))
        data = sources.configmaps.get(name)
        label, secret, items = f"configMap/{name}", False, vol["configMap"].get("items")
        decoded: Mapping[str, str] | None = data
    elif vol.get("secret"):
        name = str(vol["secret"].get("secretName", ""))
        raw = sources.secrets.get(name)
        label, secret, items = f"secret/{name}", True, vol["secret"].get("items")
        decoded = None if raw is None else {k: secret_text(v) for k, v in raw.items()}
    else:
        return None
    declared = {str(i.get("path", "")) for i in items or []}
    if decoded is None:
        return None, label, secret, declared
    if items:
        files = {str(i.get("path", "")): decoded[i["key"]] for i in items if i.get("key") in decoded}
    else:
        files = dict(decoded)
    return files, label, secret, declared


def _settings_file_values(
    pod: Mapping[str, Any], container: Mapping[str, Any], sources: Sources
) -> tuple[dict[str, str], str, bool, list[str]]:
    """(Layer 0 values, source label, secret, unreadable) of a settings.yaml mounted into this container."""
    volumes = {v.get("name"): v for v in ((pod.get("spec") or {}).get("volumes") or [])}
    unreadable: list[str] = []
    for mount in container.get("volumeMounts") or []:
        vol = volumes.get(mount.get("name"))
        got = _volume_files(vol, sources) if vol else None
        if got is None:
            continue
        files, label, secret, declared = got
        sub = str(mount.get("subPath") or "")
        at_file = posixpath.basename(str(mount.get("mountPath", "")).rstrip("/")) == SETTINGS_FILE
        if sub and not at_file:
            continue
        wanted = sub if sub else SETTINGS_FILE
        if files is None:
            # We cannot look inside; only a mount that is explicitly the settings file counts as unresolved.
            if sub or SETTINGS_FILE in declared:
                unreadable.append(f"{SETTINGS_FILE} ({label})")
            continue
        if wanted not in files:
            continue
        try:
            doc = yaml.safe_load(files[wanted]) or {}
        except yaml.YAMLError:
            continue
        if isinstance(doc, Mapping):
            values = {
                k: normalize(v, _json_type(k)) for k, v in flatten(doc).items() if catalog.is_layer0_path(k)
            }
            return values, f"{SETTINGS_FILE} ({label})", secret, unreadable
    return {}, SETTINGS_FILE, False, unreadable

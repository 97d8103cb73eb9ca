"""Layer 0 values as a Hub pod's environment gives them: what a container's env and envFrom resolve to (through
the ConfigMaps and Secrets the caller could read), normalized the way the Hub parses them, and which ConfigMaps
and Secrets a set of pods refers to. Pure.

Secret values never leave in clear: a value is marked secret when it comes from a Secret (or the catalog says
so) and is shown only as a `sha256:` fingerprint.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from hubsettings_operator import selectors
from hubsettings_operator.redact import fingerprint
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import LabelSelector

DEFAULT_CAP = 50
UNSET = "<unset>"
SETTINGS_FILE = "settings.yaml"
FINGERPRINT_PREFIX = "sha256:"
MIN_FINGERPRINT_HEX = 8  # an expected fingerprint shorter than this never matches (too weak a check)

# Precedence of where a value comes from (higher wins), as the Hub merges them.
_RANK_FILE, _RANK_ENV_FROM, _RANK_ENV = 0, 1, 2
_TRUE = frozenset({"1", "t", "true"})  # Go strconv.ParseBool, case-insensitive
_FALSE = frozenset({"0", "f", "false"})


@dataclass(frozen=True)
class Value:
    """One effective value on one container, with where it came from."""

    text: str | None  # None: could not be resolved (a Secret or ConfigMap we may not read)
    source: str  # env, envFrom:configMap/NAME, envFrom:secret/NAME, configMap/NAME, secret/NAME, settings.yaml (...)
    env: str | None = None
    secret: bool = False

    def shown(self) -> str | None:
        if self.text is None:
            return None
        return fingerprint(self.text) if self.secret else self.text


@dataclass
class Sources:
    """What the caller could read. `None` for a name means it exists but may not be read (RBAC).

    A name absent from the mapping is treated the same way (not read: unresolved), never as empty.
    """

    configmaps: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str] | None] = field(
        default_factory=dict
    )  # values base64, as in the API


class _Raw(NamedTuple):
    """One env var's raw value and where it came from. A tuple: hashed and compared in C, as the per-pod
    resolution cache (`container._cached_candidate`) does for every env var of every pod."""

    text: str | None
    source: str
    secret: bool
    rank: int


def secret_text(value: str) -> str:
    """A Secret's data value (base64, as the API returns it) as text; a value that is not base64 is kept."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except ValueError:
        return value


def normalize(value: Any, json_type: str | None = None) -> str:
    """Expected and actual values compare as the Hub would parse them.

    Booleans: true/True/TRUE/1/t alike when the key is boolean (`json_type`), true/True alike otherwise.
    Integers: 9810, "9810" and "09810" alike. Lists: comma-joined, as the Hub's env vars write them.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(normalize(v) for v in value)
    text = str(value).strip()
    low = text.lower()
    if json_type == "boolean":
        if low in _TRUE:
            return "true"
        if low in _FALSE:
            return "false"
    elif json_type == "integer":
        try:
            return str(int(text, 10))
        except ValueError:
            return text
    if low in ("true", "false"):
        return low
    return text


def _json_type(key: str) -> str | None:
    setting = catalog.by_key(key)
    return setting.json_type if setting else None


# ---- what a pod refers to --------------------------------------------------------------------------------


def label_selector(sel: LabelSelector) -> str:
    """A LabelSelector as the API server's `labelSelector` query string (`k=v,k in (a,b),!k`); see selectors.py.

    Empty selector: empty string (every pod). Deterministic: matchLabels sorted, then matchExpressions in order.
    """
    return selectors.to_query(selectors.from_label_selector(sel.matchLabels, sel.matchExpressions))


def _mounted_volumes(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod's volumes that one of its containers mounts."""
    spec = pod.get("spec") or {}
    mounted = {m.get("name") for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    return [v for v in spec.get("volumes") or [] if v.get("name") in mounted]


def referenced_sources(pods: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) the pods' containers refer to through env, envFrom and mounted volumes.

    Exactly what a caller must try to read to build `Sources` for `compute`.
    """
    configmaps: set[str] = set()
    secrets: set[str] = set()
    for pod in pods:
        for c in (pod.get("spec") or {}).get("containers") or []:
            for item in c.get("envFrom") or []:
                if (item.get("configMapRef") or {}).get("name"):
                    configmaps.add(str(item["configMapRef"]["name"]))
                if (item.get("secretRef") or {}).get("name"):
                    secrets.add(str(item["secretRef"]["name"]))
            for item in c.get("env") or []:
                vf = item.get("valueFrom") or {}
                if (vf.get("configMapKeyRef") or {}).get("name"):
                    configmaps.add(str(vf["configMapKeyRef"]["name"]))
                if (vf.get("secretKeyRef") or {}).get("name"):
                    secrets.add(str(vf["secretKeyRef"]["name"]))
        for vol in _mounted_volumes(pod):
            if (vol.get("configMap") or {}).get("name"):
                configmaps.add(str(vol["configMap"]["name"]))
            if (vol.get("secret") or {}).get("secretName"):
                secrets.add(str(vol["secret"]["secretName"]))
    return configmaps, secrets


# ---- one container's effective values -------------------------------------------------------------------


def _ref_value(ref: Mapping[str, Any], sources: Sources, kind: str) -> tuple[str | None, str] | None:
    """(value or None if unresolved, source label) for a configMapKeyRef/secretKeyRef; None: var not set."""
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    pool = sources.configmaps if kind == "configMap" else sources.secrets
    label = f"{kind}/{name}"
    data = pool.get(name)
    if data is None:
        return None, label
    if key not in data:
        # An optional ref to a missing key leaves the var unset; a required one keeps the pod from starting.
        return None if ref.get("optional") else (None, label)
    raw = data[key]
    return (secret_text(raw) if kind == "secret" else raw), label


@lru_cache(maxsize=16384)
def _literal(value: str) -> _Raw:
    """A literal `env[].value`: the same few values recur in every Hub pod (one tuple each, not one per pod)."""
    return _Raw(value, "env", False, _RANK_ENV)


def _raw_env(container: Mapping[str, Any], sources: Sources) -> tuple[dict[str, _Raw], list[str]]:
    """(env var name -> raw value, unreadable envFrom sources). envFrom first, env after (env wins)."""
    out: dict[str, _Raw] = {}
    unreadable: list[str] = []
    for item in container.get("envFrom") or []:
        prefix = str(item.get("prefix") or "")
        for kind, ref_key in (("configMap", "configMapRef"), ("secret", "secretRef")):
            ref = item.get(ref_key)
            if not ref:
                continue
            name = str(ref.get("name", ""))
            pool = sources.configmaps if kind == "configMap" else sources.secrets
            label = f"envFrom:{kind}/{name}"
            data = pool.get(name)
            if data is None:
                # Unreadable: we cannot know which names it sets; keys it might set become unresolved.
                if not ref.get("optional") or name in pool:
                    unreadable.append(label)
                continue
            for key, raw in data.items():
                value = secret_text(raw) if kind == "secret" else raw
                out[prefix + key] = _Raw(value, label, kind == "secret", _RANK_ENV_FROM)
    for item in container.get("env") or []:
        name = str(item.get("name", ""))
        vf = item.get("valueFrom")
        if "value" in item or not vf:
            value = item.get("value")
            out[name] = (
                _literal(value) if type(value) is str else _Raw(str(value or ""), "env", False, _RANK_ENV)
            )
            continue
        if vf.get("configMapKeyRef"):
            got = _ref_value(vf["configMapKeyRef"], sources, "configMap")
            secret = False
        elif vf.get("secretKeyRef"):
            got = _ref_value(vf["secretKeyRef"], sources, "secret")
            secret = True
        else:  # fieldRef / resourceFieldRef: known only to the kubelet
            got, secret = (None, "fieldRef"), False
        if got is None:
            out.pop(name, None)  # an optional ref to a missing key: the var is not set at all
        else:
            out[name] = _Raw(got[0], got[1], secret, _RANK_ENV)
    return out, unreadable


def matches_selector(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether a pod's labels satisfy a metav1.LabelSelector (see selectors.py)."""
    return selectors.matches(selectors.from_label_selector(sel.matchLabels, sel.matchExpressions), labels)

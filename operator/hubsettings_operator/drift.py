"""Layer 0 drift: which Hub pods' bootstrap settings disagree with the HubSettings or with each other. Pure.

Input is plain data (pod objects as the API server returns them, the ConfigMaps and Secrets the caller could
read); output is a `DriftStatus`. For each pod and container the effective Layer 0 values are assembled the
way the Hub sees them: a mounted `settings.yaml` first, then `envFrom`, then `env` (later wins, as in
Kubernetes and in the Hub's koanf merge). Env var names map to catalog keys through the Hub's own names.

Secret-valued keys never leave this module in clear: they are compared and reported as `sha256:` fingerprints.
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import catalog
from .models import DriftItem, DriftStatus, OverrideItem, Profile
from .redact import fingerprint

DEFAULT_CAP = 50
UNSET = "<unset>"
SETTINGS_FILE = "settings.yaml"


@dataclass(frozen=True)
class Value:
    """One effective value on one container, with where it came from."""

    text: str | None  # None: could not be resolved (a Secret or ConfigMap we may not read)
    source: (
        str  # env, envFrom:configMap/NAME, envFrom:secret/NAME, configMap/NAME, secret/NAME, settings.yaml
    )
    env: str | None = None
    secret: bool = False

    def shown(self) -> str | None:
        if self.text is None:
            return None
        return fingerprint(self.text) if self.secret else self.text


@dataclass
class Sources:
    """What the caller could read. `None` for a name means it exists but may not be read (RBAC)."""

    configmaps: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str] | None] = field(
        default_factory=dict
    )  # values base64, as in the API


@dataclass
class ContainerView:
    pod: str
    container: str
    values: dict[str, Value]  # catalog key -> value
    overrides: list[OverrideItem]
    ineffective: list[DriftItem]


def _b64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except ValueError:
        return value


def normalize(value: Any) -> str:
    """Expected and actual values compare as the Hub would parse them (true/True/1 alike for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    low = text.lower()
    if low in ("true", "false"):
        return low
    return text


def _ref_value(ref: Mapping[str, Any], sources: Sources, kind: str) -> tuple[str | None, str, bool]:
    """(value or None if unresolved, source label, found) for a configMapKeyRef/secretKeyRef."""
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    pool = sources.configmaps if kind == "configMap" else sources.secrets
    label = f"{kind}/{name}"
    if name not in pool:
        return None, label, False
    data = pool[name]
    if data is None or key not in data:
        return None, label, data is not None
    raw = data[key]
    return (_b64(raw) if kind == "secret" else raw), label, True


def _raw_env(container: Mapping[str, Any], sources: Sources) -> dict[str, tuple[str | None, str, bool]]:
    """Env var name -> (value or None, source, from a Secret). envFrom first, env after (env wins)."""
    out: dict[str, tuple[str | None, str, bool]] = {}
    for item in container.get("envFrom") or []:
        prefix = str(item.get("prefix") or "")
        for kind, ref_key in (("configMap", "configMapRef"), ("secret", "secretRef")):
            ref = item.get(ref_key)
            if not ref:
                continue
            name = str(ref.get("name", ""))
            pool = sources.configmaps if kind == "configMap" else sources.secrets
            data = pool.get(name)
            if data is None:
                # Unreadable: we cannot know which names it sets; nothing to attribute.
                continue
            for key, raw in data.items():
                value = _b64(raw) if kind == "secret" else raw
                out[prefix + key] = (value, f"envFrom:{kind}/{name}", kind == "secret")
    for item in container.get("env") or []:
        name = str(item.get("name", ""))
        if "value" in item or not item.get("valueFrom"):
            out[name] = (str(item.get("value") or ""), "env", False)
            continue
        vf = item["valueFrom"]
        if vf.get("configMapKeyRef"):
            cm_value, label, _ = _ref_value(vf["configMapKeyRef"], sources, "configMap")
            out[name] = (cm_value, label, False)
        elif vf.get("secretKeyRef"):
            secret_value, label, _ = _ref_value(vf["secretKeyRef"], sources, "secret")
            out[name] = (secret_value, label, True)
        else:  # fieldRef / resourceFieldRef: known only to the kubelet
            out[name] = (None, "fieldRef", False)
    return out


def _settings_file_values(
    pod: Mapping[str, Any], container: Mapping[str, Any], sources: Sources
) -> dict[str, str]:
    """Layer 0 values of a settings.yaml mounted from a ConfigMap into this container."""
    volumes = {v.get("name"): v for v in (pod.get("spec", {}).get("volumes") or [])}
    for mount in container.get("volumeMounts") or []:
        vol = volumes.get(mount.get("name"))
        if not vol or not vol.get("configMap"):
            continue
        cm_name = vol["configMap"].get("name", "")
        data = sources.configmaps.get(cm_name)
        if not data:
            continue
        sub = mount.get("subPath") or ""
        mount_path = str(mount.get("mountPath", ""))
        if sub:
            key = sub if mount_path.endswith(SETTINGS_FILE) else None
        else:
            key = SETTINGS_FILE if SETTINGS_FILE in data else None
        if not key or key not in data:
            continue
        try:
            doc = yaml.safe_load(data[key]) or {}
        except yaml.YAMLError:
            continue
        if isinstance(doc, Mapping):
            from .importer import flatten

            return {k: normalize(v) for k, v in flatten(doc).items() if catalog.is_layer0_path(k)}
    return {}


def _suggest(env_name: str) -> str | None:
    if env_name in catalog.INERT_ENV:
        return catalog.INERT_ENV[env_name]
    squashed = env_name.replace("_", "")
    for s in catalog.settings():
        for name in s.env:
            if name.replace("_", "") == squashed and name != env_name:
                return name
    return None


def container_view(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    sources: Sources,
    profile: Profile,
    managed_sections: Iterable[str],
) -> ContainerView:
    pod_name = str(pod.get("metadata", {}).get("name", ""))
    cname = str(container.get("name", ""))
    managed = set(managed_sections)
    values: dict[str, Value] = {}
    overrides: list[OverrideItem] = []
    ineffective: list[DriftItem] = []
    for key, file_text in _settings_file_values(pod, container, sources).items():
        file_setting = catalog.by_key(key)
        values[key] = Value(file_text, SETTINGS_FILE, None, bool(file_setting and file_setting.secret))
    for env_name, (text, source, from_secret) in sorted(_raw_env(container, sources).items()):
        if not env_name.startswith("SCION_"):
            continue
        setting = catalog.by_env(env_name)
        if setting is None:
            if env_name.startswith("SCION_SERVER_") or env_name in catalog.INERT_ENV:
                hint = _suggest(env_name)
                ineffective.append(
                    DriftItem(
                        pod=pod_name,
                        container=cname,
                        key=env_name,
                        env=env_name,
                        reason="ineffectiveEnv",
                        source=source,
                        message=f"the Hub ignores {env_name}"
                        + (f"; use {hint}" if hint else "; it is not a setting the Hub knows"),
                    )
                )
            continue
        if setting.layer == 1:
            if env_name.startswith("SCION_SEED_"):
                effect = "seedOnly"
            elif profile is Profile.PROPOSAL:
                effect = "overridesTable"
            elif setting.section in managed:
                effect = "ignoredManagedRow"
            else:
                effect = "bootstrapFallback"
            overrides.append(
                OverrideItem(pod=pod_name, container=cname, key=setting.key, env=env_name, effect=effect)
            )
            continue
        secret = setting.secret or from_secret
        values[setting.key] = Value(None if text is None else normalize(text), source, env_name, secret)
    return ContainerView(pod_name, cname, values, overrides, ineffective)


def _skip(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return True
    return bool(pod.get("status", {}).get("phase") != "Running")


def _expected_text(key: str, value: Any) -> tuple[str, bool]:
    setting = catalog.by_key(key)
    secret = bool(setting and setting.secret)
    text = normalize(value)
    if secret and not text.startswith("sha256:"):
        text = fingerprint(text)  # never keep or show the secret itself
    return text, secret


def _matches(expected: str, actual: Value) -> bool:
    if actual.text is None:
        return False
    if actual.secret:
        fp = fingerprint(actual.text)
        return fp == expected or fingerprint(actual.text).startswith(expected) or expected.startswith(fp)
    return actual.text == expected


def compute(
    pods: Iterable[Mapping[str, Any]],
    expected: Mapping[str, Any],
    *,
    sources: Sources | None = None,
    container: str | None = None,
    require_consistency: bool = True,
    profile: Profile = Profile.SCION,
    managed_sections: Iterable[str] = (),
    cap: int = DEFAULT_CAP,
) -> DriftStatus:
    """The drift report for a set of pods. Deterministic: items sorted by pod, container, key."""
    sources = sources or Sources()
    managed = list(managed_sections)
    views: list[ContainerView] = []
    skipped = 0
    for pod in pods:
        if _skip(pod):
            skipped += 1
            continue
        containers = [
            c
            for c in pod.get("spec", {}).get("containers") or []
            if not container or c.get("name") == container
        ]
        if not containers:
            skipped += 1
            continue
        for c in containers:
            views.append(container_view(pod, c, sources, profile, managed))

    items: list[DriftItem] = []
    overrides: list[OverrideItem] = []
    for view in views:
        items += view.ineffective
        overrides += view.overrides
        for key, raw in expected.items():
            exp, _secret = _expected_text(key, raw)
            actual = view.values.get(key)
            if actual is None:
                setting = catalog.by_key(key)
                default = setting.default if setting else None
                if default is not None and normalize(default) == exp:
                    continue
                items.append(
                    DriftItem(
                        pod=view.pod,
                        container=view.container,
                        key=key,
                        env=(setting.env[0] if setting and setting.env else None),
                        reason="missing",
                        expected=exp,
                        actual=None if default is None else normalize(default),
                        source="default",
                        message="not set on the pod"
                        + ("" if default is None else "; the Hub's default applies"),
                    )
                )
            elif actual.text is None:
                items.append(
                    DriftItem(
                        pod=view.pod,
                        container=view.container,
                        key=key,
                        env=actual.env,
                        reason="unresolved",
                        expected=exp,
                        source=actual.source,
                        message=f"value comes from {actual.source}, which the operator may not read",
                    )
                )
            elif not _matches(exp, actual):
                items.append(
                    DriftItem(
                        pod=view.pod,
                        container=view.container,
                        key=key,
                        env=actual.env,
                        reason="mismatch",
                        expected=exp,
                        actual=actual.shown(),
                        source=actual.source,
                    )
                )

    if require_consistency and len(views) > 1:
        items += _consistency(views, set(expected))

    items.sort(key=lambda i: (i.pod, i.container, i.key, i.reason))
    overrides.sort(key=lambda o: (o.pod, o.container, o.key, o.env))
    drifted = {i.pod for i in items}
    return DriftStatus(
        checkedPods=len({v.pod for v in views}),
        driftedPods=len(drifted),
        skippedPods=skipped,
        items=items[:cap],
        truncated=max(0, len(items) - cap),
        overrides=overrides[:cap],
    )


def _consistency(views: list[ContainerView], expected_keys: set[str]) -> list[DriftItem]:
    """Pods that disagree with the majority on a Layer 0 key not covered by `expected`."""
    by_container: dict[str, list[ContainerView]] = defaultdict(list)
    for v in views:
        by_container[v.container].append(v)
    items: list[DriftItem] = []
    for cname, group in by_container.items():
        if len(group) < 2:
            continue
        keys = sorted({k for v in group for k in v.values} - expected_keys)
        for key in keys:
            seen: dict[str, Value | None] = {v.pod: v.values.get(key) for v in group}
            shown: dict[str, str] = {}
            for pod, val in seen.items():
                if val is None:
                    shown[pod] = UNSET
                elif val.text is None:
                    continue  # unresolved values take no part in the vote
                else:
                    shown[pod] = val.shown() or UNSET
            if len(set(shown.values())) <= 1:
                continue
            counts = Counter(shown.values()).most_common()
            tie = len(counts) > 1 and counts[0][1] == counts[1][1]
            majority = counts[0][0]
            for pod, text in sorted(shown.items()):
                if not tie and text == majority:
                    continue
                val = seen[pod]
                items.append(
                    DriftItem(
                        pod=pod,
                        container=cname,
                        key=key,
                        env=val.env if val else None,
                        reason="tie" if tie else "differsFromPeers",
                        expected=None if tie else majority,
                        actual=text,
                        source=val.source if val else None,
                        message=(
                            f"pods are split evenly on {key}; list it in spec.bootstrap.expected to say which is right"
                            if tie
                            else f"{counts[0][1]} of {len(shown)} pods have another value"
                        ),
                    )
                )
    return items

"""Layer 0 drift: which Hub pods' bootstrap settings disagree with the HubSettings or with each other. Pure.

Input is plain data (pod objects as the API server returns them, the ConfigMaps and Secrets the caller could
read); output is a `DriftStatus`. For each pod and container the effective Layer 0 values are assembled the
way the Hub sees them: a mounted `settings.yaml` first, then `envFrom`, then `env` (later wins, as in
Kubernetes and in the Hub's koanf merge). Env var names map to catalog keys through the Hub's own names.

Secret-valued keys never leave this module in clear: they are compared and reported as `sha256:` fingerprints.
A key is secret when the catalog says so or when any pod takes its value from a Secret.

Also here, pure and shared with the CLI: `label_selector` (a LabelSelector as the API's query string) and
`referenced_sources` (the ConfigMaps and Secrets a set of pods refers to, i.e. what to read for `Sources`).
"""

from __future__ import annotations

import base64
import posixpath
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from hubsettings_operator import selectors
from hubsettings_operator.redact import fingerprint
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.importer import flatten
from hubsettings_operator.spec.models import DriftItem, DriftStatus, LabelSelector, OverrideItem, Profile

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


@dataclass
class ContainerView:
    pod: str
    container: str
    values: dict[str, Value]  # catalog key -> value
    overrides: list[OverrideItem]
    ineffective: list[DriftItem]
    # Sources that may set any key but could not be read (envFrom of an unreadable ConfigMap/Secret, a
    # settings.yaml mount we may not read): a key not otherwise set is unresolved, not missing.
    unreadable: list[str] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        """Whether the container carries any Hub configuration at all (else it is likely a sidecar)."""
        return bool(self.values or self.overrides or self.ineffective or self.unreadable)


@dataclass(frozen=True)
class _Raw:
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
            out[name] = _Raw(str(item.get("value") or ""), "env", False, _RANK_ENV)
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


@cache
def _suggest(env_name: str) -> str | None:
    """The spelling the Hub reads for an ineffective env var name, if any."""
    if env_name in catalog.INERT_ENV:
        return catalog.INERT_ENV[env_name]
    squashed = env_name.replace("_", "")
    for s in catalog.settings():
        for name in (*s.env, *s.seed_env):
            if name.replace("_", "") == squashed and name != env_name:
                return name
    return None


def _is_ineffective_name(env_name: str) -> bool:
    return env_name.startswith(("SCION_SERVER_", "SCION_SEED_")) or env_name in catalog.INERT_ENV


def container_view(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    sources: Sources,
    profile: Profile,
    managed_sections: Iterable[str],
) -> ContainerView:
    """The effective Layer 0 values, Layer 1 overrides and ineffective env vars of one container."""
    pod_name = str((pod.get("metadata") or {}).get("name", ""))
    cname = str(container.get("name", ""))
    managed = set(managed_sections)
    overrides: list[OverrideItem] = []
    ineffective: list[DriftItem] = []
    file_values, file_label, file_secret, unreadable = _settings_file_values(pod, container, sources)
    # key -> (rank, preference among a key's env names, value); higher rank wins, then the primary name.
    best: dict[str, tuple[int, int, Value]] = {}
    for key, file_text in file_values.items():
        file_setting = catalog.by_key(key)
        # Keys the catalog does not know are judged by name: a `password` under server.* is a secret too.
        secret = (
            file_secret
            or bool(file_setting and file_setting.secret)
            or catalog.is_secret_name(key.rsplit(".", 1)[-1])
        )
        best[key] = (_RANK_FILE, 0, Value(file_text, file_label, None, secret))
    raw_env, unreadable_env = _raw_env(container, sources)
    unreadable += unreadable_env
    for env_name, raw in sorted(raw_env.items()):
        if not env_name.startswith("SCION_"):
            continue
        setting = catalog.by_env(env_name)
        if setting is None:
            if _is_ineffective_name(env_name):
                hint = _suggest(env_name)
                ineffective.append(
                    DriftItem(
                        pod=pod_name,
                        container=cname,
                        key=env_name,
                        env=env_name,
                        reason="ineffectiveEnv",
                        source=raw.source,
                        message=f"the Hub ignores {env_name}"
                        + (f"; use {hint}" if hint else "; it is not a setting the Hub reads"),
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
        secret = setting.secret or raw.secret
        text = None if raw.text is None else normalize(raw.text, setting.json_type)
        names = [n.upper() for n in setting.env]
        pref = -names.index(env_name.upper()) if env_name.upper() in names else -len(names)
        candidate = (raw.rank, pref, Value(text, raw.source, env_name, secret))
        current = best.get(setting.key)
        if current is None or candidate[:2] > current[:2]:
            best[setting.key] = candidate
    values = {key: entry[2] for key, entry in best.items()}
    return ContainerView(pod_name, cname, values, overrides, ineffective, sorted(set(unreadable)))


# ---- comparing --------------------------------------------------------------------------------------------


def _skip(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return True
    return bool((pod.get("status") or {}).get("phase") != "Running")


def _is_fingerprint(text: str) -> bool:
    return text.lower().startswith(FINGERPRINT_PREFIX)


def _expected_text(key: str, value: Any) -> tuple[str, bool]:
    setting = catalog.by_key(key)
    secret = bool(setting and setting.secret)
    text = normalize(value, setting.json_type if setting else None)
    if secret and not _is_fingerprint(text):
        text = fingerprint(text)  # never keep or show the secret itself
    return text, secret


def _fingerprint_matches(expected: str, fp: str) -> bool:
    """`expected` (sha256:<hex>, a prefix or the full digest) names the value whose fingerprint is `fp`."""
    want = expected.lower().removeprefix(FINGERPRINT_PREFIX)
    have = fp.removeprefix(FINGERPRINT_PREFIX)
    if len(want) < MIN_FINGERPRINT_HEX:
        return False
    return want.startswith(have) or have.startswith(want)


def _matches(expected: str, actual: Value) -> bool:
    if actual.text is None:
        return False
    if _is_fingerprint(expected):
        return _fingerprint_matches(expected, fingerprint(actual.text)) or (
            not actual.secret and actual.text == expected
        )
    if actual.secret:  # a plain expected value for a key a pod takes from a Secret
        return fingerprint(actual.text) == fingerprint(expected)
    return actual.text == expected


def _select_views(
    pod: Mapping[str, Any],
    container: str | None,
    sources: Sources,
    profile: Profile,
    managed: list[str],
) -> list[ContainerView]:
    containers = list((pod.get("spec") or {}).get("containers") or [])
    if container:
        return [
            container_view(pod, c, sources, profile, managed)
            for c in containers
            if c.get("name") == container
        ]
    views = [container_view(pod, c, sources, profile, managed) for c in containers]
    # Every container, except sidecars that carry no Hub configuration at all (they would report every
    # expected key as missing); a pod with none configured keeps its first (main) container.
    return [v for v in views if v.configured] or views[:1]


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
    """The drift report for a set of pods. Deterministic: items sorted by pod, container, key, reason."""
    sources = sources or Sources()
    managed = list(managed_sections)
    cap = max(0, cap)
    views: list[ContainerView] = []
    skipped = 0
    for pod in pods:
        if _skip(pod):
            skipped += 1
            continue
        pod_views = _select_views(pod, container, sources, profile, managed)
        if not pod_views:
            skipped += 1
            continue
        views += pod_views

    expected_texts = {key: _expected_text(key, raw)[0] for key, raw in expected.items()}
    items: list[DriftItem] = []
    overrides: list[OverrideItem] = []
    for view in views:
        items += view.ineffective
        overrides += view.overrides
        for key, exp in sorted(expected_texts.items()):
            item = _check(view, key, exp)
            if item is not None:
                items.append(item)

    if require_consistency and len(views) > 1:
        items += _consistency(views, set(expected))

    items.sort(key=lambda i: (i.pod, i.container, i.key, i.reason, i.env or ""))
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


def _check(view: ContainerView, key: str, exp: str) -> DriftItem | None:
    """The drift item for one expected key on one container, or None when it matches."""
    setting = catalog.by_key(key)
    actual = view.values.get(key)
    if actual is None and view.unreadable:
        sources = ", ".join(view.unreadable)
        return DriftItem(
            pod=view.pod,
            container=view.container,
            key=key,
            env=(setting.env[0] if setting and setting.env else None),
            reason="unresolved",
            expected=exp,
            source=sources,
            message=f"not set by a readable source; it may come from {sources}, which could not be read",
        )
    if actual is None:
        secret = bool(setting and setting.secret)
        default = setting.default if setting else None
        default_value = (
            None
            if default is None
            else Value(normalize(default, setting.json_type if setting else None), "default", None, secret)
        )
        if default_value is not None and _matches(exp, default_value):
            return None
        return DriftItem(
            pod=view.pod,
            container=view.container,
            key=key,
            env=(setting.env[0] if setting and setting.env else None),
            reason="missing",
            expected=exp,
            actual=None if default_value is None else default_value.shown(),
            source="default",
            message="not set on the pod" + ("" if default is None else "; the Hub's default applies"),
        )
    if actual.text is None:
        return DriftItem(
            pod=view.pod,
            container=view.container,
            key=key,
            env=actual.env,
            reason="unresolved",
            expected=exp,
            source=actual.source,
            message=f"value comes from {actual.source}, which could not be read",
        )
    if _matches(exp, actual):
        return None
    short = _is_fingerprint(exp) and len(exp) - len(FINGERPRINT_PREFIX) < MIN_FINGERPRINT_HEX
    return DriftItem(
        pod=view.pod,
        container=view.container,
        key=key,
        env=actual.env,
        reason="mismatch",
        expected=exp,
        actual=actual.shown(),
        source=actual.source,
        message=(
            f"expected fingerprint too short: give at least {MIN_FINGERPRINT_HEX} hex digits"
            if short
            else f"differs from spec.bootstrap.expected; set by {actual.env or actual.source}"
        ),
    )


def _consistency(views: list[ContainerView], expected_keys: set[str]) -> list[DriftItem]:
    """Pods that disagree with the majority on a Layer 0 key not covered by `expected`."""
    by_container: dict[str, list[ContainerView]] = defaultdict(list)
    for v in views:
        by_container[v.container].append(v)
    items: list[DriftItem] = []
    for cname, group in sorted(by_container.items()):
        if len(group) < 2:
            continue
        keys = sorted({k for v in group for k in v.values} - expected_keys)
        for key in keys:
            items += _vote(cname, key, group)
    return items


def _vote(cname: str, key: str, group: list[ContainerView]) -> list[DriftItem]:
    setting = catalog.by_key(key)
    seen: dict[str, Value | None] = {v.pod: v.values.get(key) for v in group}
    # Secret if the catalog says so or any pod takes it from a Secret: then every pod's value is shown as a
    # fingerprint (a literal shown in clear next to a matching Secret's fingerprint would give it away).
    secret = (
        bool(setting and setting.secret)
        or catalog.is_secret_name(key.rsplit(".", 1)[-1])
        or any(val is not None and val.secret for val in seen.values())
    )
    default = (
        None if setting is None or setting.default is None else normalize(setting.default, setting.json_type)
    )
    unreadable = {v.pod for v in group if v.unreadable}
    shown: dict[str, str] = {}
    for pod, val in seen.items():
        if val is None:
            if pod in unreadable:
                continue  # may be set by a source we could not read: no vote
            # Unset means the Hub's default: a pod setting the default explicitly agrees with one that does not.
            text = default
        elif val.text is None:
            continue  # unresolved values take no part in the vote
        else:
            text = val.text
        if text is None:
            shown[pod] = UNSET
        else:
            shown[pod] = fingerprint(text) if secret else text
    if len(set(shown.values())) <= 1:
        return []
    counts = Counter(shown.values()).most_common()
    tie = counts[0][1] == counts[1][1]
    majority = counts[0][0]
    items: list[DriftItem] = []
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
                source=val.source if val else "default",
                message=(
                    f"pods are split evenly on {key}; list it in spec.bootstrap.expected to say which is right"
                    if tie
                    else f"{counts[0][1]} of {len(shown)} pods have {majority}"
                ),
            )
        )
    return items


def matches_selector(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether a pod's labels satisfy a metav1.LabelSelector (see selectors.py)."""
    return selectors.matches(selectors.from_label_selector(sel.matchLabels, sel.matchExpressions), labels)

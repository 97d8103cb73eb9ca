"""One container's Layer 0 view: its effective values by catalog key (settings.yaml < envFrom < env, later
wins, as in Kubernetes and the Hub's koanf merge), the Layer 1 keys its env sets, and env var names the Hub
ignores. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from hubsettings_operator.drift.env import _RANK_FILE, Sources, Value, _Raw, _raw_env, normalize
from hubsettings_operator.drift.settings_yaml import _settings_file_values
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import DriftItem, OverrideItem


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


Candidate = tuple[int, int, Value]  # (rank, preference among a key's env names, value): higher wins


def _candidate(env_name: str, raw: _Raw) -> tuple[str, Candidate] | None:
    """(catalog key, candidate) for a Layer 0 env var; `None` when the name is not a Layer 0 setting."""
    setting = catalog.by_env(env_name)
    if setting is None or setting.layer == 1:
        return None
    secret = setting.secret or raw.secret
    text = None if raw.text is None else normalize(raw.text, setting.json_type)
    names = [n.upper() for n in setting.env]
    pref = -names.index(env_name.upper()) if env_name.upper() in names else -len(names)
    return setting.key, (raw.rank, pref, Value(text, raw.source, env_name, secret))


# Hub pods of one Deployment carry the same env: resolve each (name, raw value) once, not once per pod (pure;
# bounded; values read from a Secret are not kept, they are resolved every time).
_cached_candidate = lru_cache(maxsize=16384)(_candidate)


def _is_ineffective_name(env_name: str) -> bool:
    return env_name.startswith(("SCION_SERVER_", "SCION_SEED_")) or env_name in catalog.INERT_ENV


def container_view(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    sources: Sources,
    env_overrides_table: bool,
    managed_sections: Iterable[str],
) -> ContainerView:
    """The effective Layer 0 values, Layer 1 overrides and ineffective env vars of one container.

    `env_overrides_table`: the table layout's answer (`TableLayout.env_overrides_table`): whether a Layer 1
    env var wins over the table's row or is only the fallback of a section the table does not hold."""
    pod_name = str((pod.get("metadata") or {}).get("name", ""))
    cname = str(container.get("name", ""))
    managed = set(managed_sections)
    overrides: list[OverrideItem] = []
    ineffective: list[DriftItem] = []
    file_values, file_label, file_secret, unreadable = _settings_file_values(pod, container, sources)
    # key -> (rank, preference among a key's env names, value); higher rank wins, then the primary name.
    best: dict[str, Candidate] = {}
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
        found = _candidate(env_name, raw) if raw.secret else _cached_candidate(env_name, raw)
        if found is not None:
            key, candidate = found
            current = best.get(key)
            if current is None or candidate[:2] > current[:2]:
                best[key] = candidate
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
            elif env_overrides_table:
                effect = "overridesTable"
            elif setting.section in managed:
                effect = "ignoredManagedRow"
            else:
                effect = "bootstrapFallback"
            overrides.append(
                OverrideItem(pod=pod_name, container=cname, key=setting.key, env=env_name, effect=effect)
            )
    values = {key: entry[2] for key, entry in best.items()}
    return ContainerView(pod_name, cname, values, overrides, ineffective, sorted(set(unreadable)))

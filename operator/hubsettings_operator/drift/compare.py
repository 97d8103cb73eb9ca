"""Comparing the Hub pods' Layer 0 views: against `spec.bootstrap.expected` (fingerprints for secrets) and with
each other (a vote per key: the minority differs from its peers; no majority is a tie), into a `DriftStatus`.
Pure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from hubsettings_operator.drift.container import ContainerView, container_view
from hubsettings_operator.drift.env import (
    DEFAULT_CAP,
    FINGERPRINT_PREFIX,
    MIN_FINGERPRINT_HEX,
    UNSET,
    Sources,
    Value,
    normalize,
)
from hubsettings_operator.redact import fingerprint
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import DriftItem, DriftStatus, OverrideItem

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
    env_overrides_table: bool,
    managed: list[str],
) -> list[ContainerView]:
    containers = list((pod.get("spec") or {}).get("containers") or [])
    if container:
        return [
            container_view(pod, c, sources, env_overrides_table, managed)
            for c in containers
            if c.get("name") == container
        ]
    views = [container_view(pod, c, sources, env_overrides_table, managed) for c in containers]
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
    env_overrides_table: bool = False,
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
        pod_views = _select_views(pod, container, sources, env_overrides_table, managed)
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

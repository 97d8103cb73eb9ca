"""What drift compares, gathered once for the operator and the CLI: the Hub pods a podSelector picks, and the
ConfigMaps and Secrets they refer to, read through one small async protocol (`SourceReader`).

The operator's `runtime/kube.Kube` and the CLI's one reader `cli/kube.ClusterReader` both satisfy it. The
profile rule (`resolve_profile`) and the pod watch rule (`outside_watch`) are shared too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from hubsettings_operator import selectors
from hubsettings_operator.drift.env import Sources, referenced_sources
from hubsettings_operator.spec.models import LabelSelector, Profile


class SourceReader(Protocol):
    """Reads of one ConfigMap / Secret (Secret values base64, as the API returns them); None when the object
    is absent or may not be read (reported as unresolved, never a crash)."""

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None: ...

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None: ...


async def read_sources(reader: SourceReader, namespace: str, pods: Iterable[Mapping[str, Any]]) -> Sources:
    """Every ConfigMap and Secret the pods refer to, read concurrently."""
    configmaps, secrets = referenced_sources(pods)
    cm_names, secret_names = sorted(configmaps), sorted(secrets)
    cm_data = await asyncio.gather(*(reader.configmap_data(namespace, n) for n in cm_names))
    secret_data = await asyncio.gather(*(reader.secret_data(namespace, n) for n in secret_names))
    return Sources(
        configmaps=dict(zip(cm_names, cm_data, strict=True)),
        secrets=dict(zip(secret_names, secret_data, strict=True)),
    )


def select_pods(
    pods: Iterable[Mapping[str, Any]], selector: LabelSelector, namespace: str
) -> list[Mapping[str, Any]]:
    """The pods of `namespace` that `selector` picks (pods without a namespace field are taken as in it)."""
    reqs = selectors.from_label_selector(selector.matchLabels, selector.matchExpressions)
    return [
        p
        for p in pods
        if (p.get("metadata") or {}).get("namespace") in (None, namespace)
        and selectors.matches(reqs, (p.get("metadata") or {}).get("labels") or {})
    ]


def resolve_profile(known: str | Profile | None, declared: Profile) -> Profile:
    """The table profile drift reports overrides under: the one in use when known (the operator's
    status.profile, the CLI's --profile), else the spec's when concrete, else the shipped Hub's."""
    for candidate in (known, declared):
        profile = Profile(candidate) if candidate in set(Profile) else None
        if profile is not None and profile is not Profile.AUTO:
            return profile
    return Profile.SCION


def outside_watch(selector: LabelSelector, watch_selector: str) -> str | None:
    """A warning when `selector` may pick pods the operator's pod watch (--pod-selector) never delivers."""
    if not watch_selector:
        return None
    wanted = selectors.from_label_selector(selector.matchLabels, selector.matchExpressions)
    if selectors.implies(wanted, selectors.parse(watch_selector)):
        return None
    return (
        f"spec.bootstrap.podSelector ({selectors.to_query(wanted) or 'every pod'}) is not within the operator's "
        f"--pod-selector ({watch_selector}): pods outside it are never watched and are not checked; narrow "
        "the podSelector or widen --pod-selector"
    )

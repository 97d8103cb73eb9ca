"""The convergence probe: per Hub pod, is its listener connected and which revisions has it loaded.

Three reads per round, then the pure decision (`convergence/decide.py`):
- the table: the revision of each section this HubSettings owns (`updated_by` = its owner marker);
- `pg_stat_activity`: which client addresses hold an idle `LISTEN <channel>` connection (the Hub's dedicated
  listener; the Hub sets no application_name, so the pod IP is the only link). Needs the Hub's role to be
  superuser or a member of pg_read_all_stats, else other sessions' queries are hidden and `listening` is null;
- each pod, by its IP (never a Service, which would answer from any replica): `GET
  /api/v1/admin/server-config` with the admin token; in PostgreSQL mode its `section_metadata` gives the
  revision of every section that replica's cache holds (only where the table layout has that endpoint:
  `TableLayout.replica_endpoint`).

The token is read from its Secret on every round (registered with the redactor) and only ever sent in the
Authorization header. A rejected token (401/403) ends the round after the first pod: one request per period,
not one per pod and per second.

Used by the operator's convergence check (`runtime/convergence_check.py`) and by `hubsettings converge`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from hubsettings_operator import selectors
from hubsettings_operator.convergence import decide as convergence
from hubsettings_operator.convergence.decide import PodProbe
from hubsettings_operator.redact import register_secret
from hubsettings_operator.secretdata import decode
from hubsettings_operator.spec.models import (
    BootstrapSpec,
    ConvergenceScheme,
    ConvergenceSpec,
    HubSettingsSpec,
    Profile,
)
from hubsettings_operator.table.layouts import layout_for
from hubsettings_operator.table.store import SettingsStore, Target

SERVER_CONFIG_PATH = "/api/v1/admin/server-config"
HTTP_TIMEOUT_S = 5.0
MAX_PARALLEL_PROBES = 20


@dataclass(frozen=True)
class HubPod:
    name: str
    uid: str
    ip: str


class SecretReader(Protocol):
    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None: ...


def hub_pods(pods: Iterable[Mapping[str, Any]], spec: HubSettingsSpec, namespace: str) -> list[HubPod]:
    """The running, not terminating pods the HubSettings' pod selector picks, that have an IP."""
    sel = (spec.bootstrap or BootstrapSpec()).podSelector
    reqs = selectors.from_label_selector(sel.matchLabels, sel.matchExpressions)
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        if meta.get("namespace") not in (None, namespace) or meta.get("deletionTimestamp"):
            continue
        if status.get("phase") != "Running" or not status.get("podIP"):
            continue
        if selectors.matches(reqs, meta.get("labels") or {}):
            out.append(
                HubPod(str(meta.get("name")), str(meta.get("uid") or meta.get("name")), str(status["podIP"]))
            )
    return sorted(out, key=lambda p: p.name)


async def read_loaded(
    session: aiohttp.ClientSession, pod: HubPod, conv: ConvergenceSpec, token: str
) -> tuple[dict[str, int] | None, str | None]:
    """(section -> loaded revision, None) or (None, why unknown). Never raises; never shows the token."""
    host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
    url = f"{conv.scheme.value}://{host}:{conv.port}{SERVER_CONFIG_PATH}"
    try:
        async with session.get(
            url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            # The pod's certificate names the Hub's hostname, not the pod IP the operator must address.
            ssl=conv.scheme is not ConvergenceScheme.HTTPS,
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
            allow_redirects=False,
        ) as resp:
            if resp.status in (401, 403):
                return None, (
                    f"{convergence.TOKEN_REJECTED} by the Hub (HTTP {resp.status}): the token in "
                    "spec.convergence.adminTokenSecretRef must belong to a principal with hub.config.read"
                )
            if resp.status != 200:
                return None, f"HTTP {resp.status} from {SERVER_CONFIG_PATH}"
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
        return None, f"unreachable ({type(exc).__name__})"
    meta = body.get("section_metadata") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        return None, "no section_metadata in the answer: the Hub is not in PostgreSQL mode or predates it"
    loaded: dict[str, int] = {}
    for section, entry in meta.items():
        if isinstance(entry, dict) and entry.get("source") == "db" and isinstance(entry.get("revision"), int):
            loaded[str(section)] = int(entry["revision"])
    return loaded, None


async def read_token(
    reader: SecretReader, namespace: str, conv: ConvergenceSpec
) -> tuple[str | None, str | None]:
    """(token, None) or (None, why) from spec.convergence.adminTokenSecretRef."""
    ref = conv.adminTokenSecretRef
    if ref is None:
        return None, "no spec.convergence.adminTokenSecretRef: listener presence only"
    data = await reader.secret_data(namespace, ref.name)
    if data is None:
        return None, f"Secret {namespace}/{ref.name} (spec.convergence.adminTokenSecretRef) cannot be read"
    if ref.key not in data:
        return (
            None,
            f"Secret {namespace}/{ref.name} has no key {ref.key!r} (spec.convergence.adminTokenSecretRef)",
        )
    token = decode(data[ref.key])
    register_secret(token)
    return (token, None) if token else (None, f"Secret {namespace}/{ref.name} key {ref.key!r} is empty")


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def observe(
    store: SettingsStore,
    spec: HubSettingsSpec,
    profile: Profile,
    owner: str,
    pods: list[HubPod],
    token: str | None,
    token_problem: str | None,
) -> tuple[dict[str, int], list[PodProbe], str]:
    """One round of reads: (written revisions, one probe per pod, channel)."""
    conv = spec.convergence or ConvergenceSpec()
    layout = layout_for(profile)
    channel = spec.database.channel or layout.channel
    written, listening = await store.replica_view(
        Target(table=spec.database.table), owner, channel, revisions=layout.revisioned
    )
    checked = now_rfc3339()
    results: dict[str, tuple[dict[str, int] | None, str | None]] = {}
    if not layout.replica_endpoint:
        no_endpoint = (
            f"the {profile.value} table layout has no per-replica settings endpoint: only listener presence "
            "is reported"
        )
        results = {p.uid: (None, no_endpoint) for p in pods}
    elif token is None:
        results = {p.uid: (None, token_problem) for p in pods}
    elif pods:
        async with aiohttp.ClientSession() as session:
            first = await read_loaded(session, pods[0], conv, token)
            results[pods[0].uid] = first
            if (first[1] or "").startswith(convergence.TOKEN_REJECTED):
                results.update({p.uid: first for p in pods[1:]})
            else:
                limit = asyncio.Semaphore(MAX_PARALLEL_PROBES)

                async def one(pod: HubPod) -> None:
                    async with limit:
                        results[pod.uid] = await read_loaded(session, pod, conv, token)

                await asyncio.gather(*(one(p) for p in pods[1:]))
    probes = [
        PodProbe(
            name=p.name,
            uid=p.uid,
            listening=None if listening is None else p.ip in listening,
            loaded=results[p.uid][0],
            error=results[p.uid][1],
            checked_at=checked,
        )
        for p in pods
    ]
    return written, probes, channel

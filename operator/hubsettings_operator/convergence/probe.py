"""The convergence probe: per Hub pod, is its listener connected and which revisions has it loaded.

Three reads per round (the Hub's side is in `pkg/hub/admin_settings_db.go`, `auth.go` and `errors.go`), then
the pure decision (`convergence/decide.py`):
- the table: the revision of each section this HubSettings owns (`updated_by` = its owner marker);
- `pg_stat_activity`: which client addresses hold the Hub's dedicated listener connection, idle after a
  `LISTEN`/`UNLISTEN` of any of its channels (global or per-project, `table/replicas.py`; the Hub sets no
  application_name, so the pod IP is the only link). Sessions the role may not see make `listening` null
  for pods without a visible listener (the role must be the Hub's own, superuser or in pg_read_all_stats);
- each pod, by its IP (never a Service, which would answer from any replica): `GET
  /api/v1/admin/server-config` with the admin token; in PostgreSQL mode its `section_metadata` lists every
  section of that replica's registry (the revision of those its cache holds) and its `scion_version` (only
  where the table layout has that endpoint: `TableLayout.replica_endpoint`);
- once per Hub version the replicas run, `GET /api/v1/admin/server-config/schema` from one replica of it (the
  running Hub's section schemas, kept per version in `spec.live_schema` for the reconcile's validation).

The token is read from its Secret on every round (registered with the redactor) and only ever sent in the
Authorization header. A rejected token (401: TokenRejected; 403, a principal without hub.config.read:
TokenForbidden) ends the round after the first pod: one request per period, not one per pod and per second.

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
from hubsettings_operator.convergence import schedule
from hubsettings_operator.convergence.decide import PodProbe
from hubsettings_operator.redact import register_secret, scrub
from hubsettings_operator.secretdata import decode
from hubsettings_operator.spec import live_schema
from hubsettings_operator.spec.live_schema import SCHEMA_PATH, LiveSchemas, parse_schema_response
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


@dataclass(frozen=True)
class Answer:
    """What one replica's server-config said: loaded revisions (None: unknown, see error), the sections its
    registry lists (None: not known) and its scion_version."""

    loaded: dict[str, int] | None
    error: str | None = None
    known: frozenset[str] | None = None
    version: str | None = None


TOKEN_GUIDANCE_401 = (
    "the token in spec.convergence.adminTokenSecretRef is not a valid token for this Hub (mistyped, expired or "
    "revoked): put a valid token of a principal with hub.config.read in that Secret"
)
TOKEN_GUIDANCE_403 = (
    "the token in spec.convergence.adminTokenSecretRef is valid, but its principal lacks the permission "
    "hub.config.read: grant it that permission (a Hub admin role has it) or use a token of a principal that has it"
)


async def _hub_error_message(resp: aiohttp.ClientResponse) -> str:
    """The Hub's own `error.message` (e.g. "invalid access token"), short and scrubbed; "" if none."""
    try:
        body = await resp.json(content_type=None)
    except (aiohttp.ClientError, ValueError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return scrub(str(message))[:120] if isinstance(message, str) else ""


def _admin_get(
    session: aiohttp.ClientSession, pod: HubPod, conv: ConvergenceSpec, token: str, path: str
) -> Any:
    """One admin GET to this very pod (by its IP, never a Service) with the token in the header only."""
    host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
    return session.get(
        f"{conv.scheme.value}://{host}:{conv.port}{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        # The pod's certificate names the Hub's hostname, not the pod IP the operator must address.
        ssl=conv.scheme is not ConvergenceScheme.HTTPS,
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
        allow_redirects=False,
    )


async def read_loaded(
    session: aiohttp.ClientSession, pod: HubPod, conv: ConvergenceSpec, token: str
) -> Answer:
    """The replica's answer; never raises; never shows the token."""
    try:
        async with _admin_get(session, pod, conv, token, SERVER_CONFIG_PATH) as resp:
            if resp.status in (401, 403):
                said = await _hub_error_message(resp)
                said = f" {said!r}" if said else ""
                if resp.status == 401:
                    why = f"{convergence.TOKEN_REJECTED} by the Hub (HTTP 401{said}): {TOKEN_GUIDANCE_401}"
                else:
                    why = f"{convergence.TOKEN_FORBIDDEN} by the Hub (HTTP 403{said}): {TOKEN_GUIDANCE_403}"
                return Answer(None, why)
            if resp.status != 200:
                return Answer(None, f"HTTP {resp.status} from {SERVER_CONFIG_PATH}")
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
        return Answer(None, f"unreachable ({type(exc).__name__})")
    return parse_server_config(body)


# Versions whose replicas answered 404 to the schema endpoint (a Hub before it): not asked again.
_no_schema_endpoint: set[str] = set()


async def read_schema(
    session: aiohttp.ClientSession, pod: HubPod, conv: ConvergenceSpec, token: str, version: str
) -> LiveSchemas | None:
    """The replica's `GET /api/v1/admin/server-config/schema` as LiveSchemas; None if not served or not
    readable (validation then uses the generated facts for that version). Never raises; never shows the token."""
    try:
        async with _admin_get(session, pod, conv, token, SCHEMA_PATH) as resp:
            if resp.status == 404:
                _no_schema_endpoint.add(version)
                return None
            if resp.status != 200:
                return None
            return parse_schema_response(await resp.json(content_type=None), version)
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
        return None


async def learn_schemas(
    session: aiohttp.ClientSession,
    pods: list[HubPod],
    results: Mapping[str, Answer],
    conv: ConvergenceSpec,
    token: str,
) -> None:
    """Fetch the schema endpoint once per Hub version the replicas run (from one replica of that version) and
    keep it in `spec.live_schema`'s per-version cache, where the reconcile finds it."""
    asked: set[str] = set()
    for pod in pods:
        version = results[pod.uid].version
        if not version or version in asked or version in _no_schema_endpoint:
            continue
        if results[pod.uid].error or live_schema.cached(version) is not None:
            continue
        asked.add(version)
        found = await read_schema(session, pod, conv, token, version)
        if found is not None:
            live_schema.remember(found)


def parse_server_config(body: Any) -> Answer:
    """The Hub's `GET /api/v1/admin/server-config` answer (PostgreSQL mode) as an Answer: every section of the
    replica's own registry is listed (`db` with its revision, or `file`/`default` without), never another;
    empty fields are omitted, so a missing `revision` is not an error."""
    meta = body.get("section_metadata") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        return Answer(
            None, "no section_metadata in the answer: the Hub is not in PostgreSQL mode or predates it"
        )
    loaded: dict[str, int] = {}
    for section, entry in meta.items():
        if isinstance(entry, dict) and entry.get("source") == "db" and isinstance(entry.get("revision"), int):
            loaded[str(section)] = int(entry["revision"])
    version = body.get("scion_version")
    return Answer(
        loaded,
        known=frozenset(str(s) for s in meta),
        version=str(version)[:64] if isinstance(version, str) and version else None,
    )


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
    # The table and pg_stat_activity are read while the replicas are asked (one round costs the longer of the
    # two, not their sum: this round is what stands between a replica's reload and Converged).
    view = asyncio.ensure_future(
        store.replica_view(Target(table=spec.database.table), owner, channel, revisions=layout.revisioned)
    )
    try:
        results = await _ask_replicas(pods, conv, token, token_problem, layout.replica_endpoint, profile)
    except BaseException:
        view.cancel()
        raise
    written, listening = await view
    checked = now_rfc3339()
    probes = [
        PodProbe(
            name=p.name,
            uid=p.uid,
            listening=listening.listening(p.ip),
            loaded=results[p.uid].loaded,
            error=results[p.uid].error,
            checked_at=checked,
            known=results[p.uid].known,
            version=results[p.uid].version,
        )
        for p in pods
    ]
    return written, probes, channel


async def _ask_replicas(
    pods: list[HubPod],
    conv: ConvergenceSpec,
    token: str | None,
    token_problem: str | None,
    replica_endpoint: bool,
    profile: Profile,
) -> dict[str, Answer]:
    """Each pod's answer (by pod uid). The first pod is asked alone: a rejected token ends the round there (one
    request, not one per pod); the others at most `schedule.MAX_IN_FLIGHT` at a time."""
    if not replica_endpoint:
        no_endpoint = (
            f"the {profile.value} table layout has no per-replica settings endpoint: only listener presence "
            "is reported"
        )
        return {p.uid: Answer(None, no_endpoint) for p in pods}
    if token is None:
        return {p.uid: Answer(None, token_problem) for p in pods}
    results: dict[str, Answer] = {}
    if not pods:
        return results
    async with aiohttp.ClientSession() as session:
        first = await read_loaded(session, pods[0], conv, token)
        results[pods[0].uid] = first
        if convergence.token_problem(first.error):
            results.update({p.uid: first for p in pods[1:]})
        else:

            async def one(pod: HubPod) -> None:
                results[pod.uid] = await read_loaded(session, pod, conv, token)

            await schedule.gather_bounded(pods[1:], one, schedule.MAX_IN_FLIGHT)
        await learn_schemas(session, pods, results, conv, token)
    return results

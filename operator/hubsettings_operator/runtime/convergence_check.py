"""The convergence check's I/O: per Hub pod, is its listener connected and which revisions has it loaded.

Three reads per round (the Hub's side is in `pkg/hub/admin_settings_db.go`, `auth.go` and `errors.go`), then the pure decision (`convergence/decide.py`):
- the table: the revision of each section this HubSettings owns (`updated_by` = its owner marker);
- `pg_stat_activity`: which client addresses hold the Hub's dedicated listener connection, idle after a
  `LISTEN`/`UNLISTEN` of any of its channels (global or per-project, `table/replicas.py`; the Hub sets no
  application_name, so the pod IP is the only link). Sessions the role may not see make `listening` null
  for pods without a visible listener (the role must be the Hub's own, superuser or in pg_read_all_stats);
- each pod, by its IP (never a Service, which would answer from any replica): `GET
  /api/v1/admin/server-config` with the admin token; in PostgreSQL mode its `section_metadata` lists every
  section of that replica's registry (the revision of those its cache holds) and its `scion_version`.

The token is read from its Secret on every round (registered with the redactor) and only ever sent in the
Authorization header. A rejected token (401: TokenRejected; 403, a principal without hub.config.read: TokenForbidden) ends the round after the first pod: one request per period,
not one per pod and per second.

In the operator a kopf daemon per HubSettings with `spec.convergence` runs `ConvergenceChecker.run`: a round
right after each apply that changed rows (`poke`), every second while a replica is behind, else every
`interval` seconds.

Over 400 lines: the three reads of a round, the per-pod HTTP probe and the daemon that paces rounds belong
to one concern (the decision itself is pure, in convergence/decide.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import kopf

from hubsettings_operator import selectors
from hubsettings_operator.conditions import CondType, Desired, EventReason, EventType, Reason
from hubsettings_operator.convergence import decide as convergence
from hubsettings_operator.convergence.decide import PodProbe, Tracking
from hubsettings_operator.drift.sources import resolve_profile
from hubsettings_operator.redact import register_secret, scrub
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.drift_check import outside_watch
from hubsettings_operator.runtime.status_writer import Written
from hubsettings_operator.runtime.status_writer import uid as object_uid
from hubsettings_operator.spec.models import (
    BootstrapSpec,
    ConvergenceScheme,
    ConvergenceSpec,
    HubSettingsSpec,
    Profile,
)
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status.rules import Event, StatusUpdate, Verdict
from hubsettings_operator.table.layout import layout_for
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.store import SettingsStore, Target

log = logging.getLogger(__name__)

SERVER_CONFIG_PATH = "/api/v1/admin/server-config"
HTTP_TIMEOUT_S = 5.0
MAX_PARALLEL_PROBES = 20
PENDING_RECHECK_S = 0.25
PENDING_WINDOW_S = 10.0
PROPOSAL_NO_ENDPOINT = (
    "the proposal table layout has no per-replica settings endpoint: only listener presence is reported"
)


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


async def read_loaded(
    session: aiohttp.ClientSession, pod: HubPod, conv: ConvergenceSpec, token: str
) -> Answer:
    """The replica's answer; never raises; never shows the token."""
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
    token = base64.b64decode(data[ref.key]).decode("utf-8", errors="replace").strip()
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
    channel = spec.database.channel or layout_for(profile).channel
    written, listening = await store.replica_view(
        Target(table=spec.database.table), owner, channel, revisions=profile is Profile.SCION
    )
    checked = now_rfc3339()
    results: dict[str, Answer] = {}
    if profile is not Profile.SCION:
        results = {p.uid: Answer(None, PROPOSAL_NO_ENDPOINT) for p in pods}
    elif token is None:
        results = {p.uid: Answer(None, token_problem) for p in pods}
    elif pods:
        async with aiohttp.ClientSession() as session:
            first = await read_loaded(session, pods[0], conv, token)
            results[pods[0].uid] = first
            if convergence.token_problem(first.error):
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


# ---- the operator's side -----------------------------------------------------------------------------------


class StatusWriter(Protocol):
    """What the checker needs of the operator's status writer (runtime/status_writer.py's StatusWriter)."""

    def lock_for(self, body: Mapping[str, Any]) -> asyncio.Lock: ...

    async def write(self, body: Mapping[str, Any], update: StatusUpdate) -> Written: ...


class OperatorKube(SecretReader, Protocol):
    async def dsn_from_secret(self, namespace: str, name: str, key: str) -> str: ...


def _without_checked_at(status: Mapping[str, Any] | None) -> Any:
    if not status:
        return status
    return {
        **status,
        "replicas": [{k: v for k, v in r.items() if k != "checkedAt"} for r in status.get("replicas") or []],
    }


class ConvergenceChecker:
    """One per operator process; remembers per HubSettings what the pure decision needs between rounds."""

    def __init__(
        self,
        writer: StatusWriter,
        kube: OperatorKube,
        emit: Callable[[Mapping[str, Any], Event], None],
        store_factory: Callable[[str, str], SettingsStore],
        *,
        interval: float = 30.0,
        fast_interval: float = 1.0,
        watch_selector: str = "",
    ) -> None:
        self.watch_selector = watch_selector
        # The reconciler's: convergence reads share its bounded pool (and the object's pool owner).
        self.store_factory = store_factory
        self.writer = writer
        self.kube = kube
        self.emit = emit
        self.interval = interval
        self.fast_interval = fast_interval
        self._tracking: dict[str, Tracking] = {}
        self._pokes: dict[str, asyncio.Event] = {}
        self._changed_at: dict[str, float] = {}  # uid -> monotonic time of the apply not yet converged
        self._token_seen: dict[str, str] = {}  # uid -> fingerprint of the token the last round used

    def poke(self, body: Mapping[str, Any]) -> None:
        """An apply changed rows: check now (and time how long the replicas take)."""
        uid = object_uid(body)
        self._changed_at.setdefault(uid, time.monotonic())
        self._pokes.setdefault(uid, asyncio.Event()).set()

    def forget(self, body: Mapping[str, Any]) -> None:
        uid = object_uid(body)
        for store in (self._tracking, self._pokes, self._changed_at, self._token_seen):
            store.pop(uid, None)

    async def check_token(self, body: Mapping[str, Any]) -> bool:
        """Called on the health period (which already re-reads the DSN Secret): when the token Secret no
        longer holds the token the last round used, start a round now (a fixed or rotated token shows within
        one health period, not one convergence period). True when it poked. The operator only `get`s Secrets
        it is pointed at (it never lists or watches Secrets), so this is a read, not a watch."""
        uid = object_uid(body)
        if uid not in self._token_seen:  # no round yet (or no spec.convergence): nothing to compare with
            return False
        spec, _errors = validate_spec(body.get("spec"))
        if spec is None or spec.convergence is None:
            return False
        namespace = str(body.get("metadata", {}).get("namespace"))
        token, _problem = await read_token(self.kube, namespace, spec.convergence)
        if _fingerprint(token) == self._token_seen[uid]:
            return False
        ref = spec.convergence.adminTokenSecretRef
        log.info(
            "token Secret %s/%s of %s changed: convergence round now",
            namespace,
            ref.name if ref else "",
            _ident(body),
        )
        self._pokes.setdefault(uid, asyncio.Event()).set()
        return True

    async def run(
        self,
        body: Mapping[str, Any],
        pods: Callable[[], list[Mapping[str, Any]]],
        stopped: Callable[[], bool],
    ) -> None:
        """The daemon's loop (until `stopped()`): a round, then wait for a poke or the period."""
        uid = object_uid(body)
        poke = self._pokes.setdefault(uid, asyncio.Event())
        while not stopped():
            poke.clear()
            wait_s = self.interval
            try:
                decision = await self.check(body, pods())
                changed_at = self._changed_at.get(uid)
                just_applied = changed_at is not None and time.monotonic() - changed_at < PENDING_WINDOW_S
                if decision is not None and decision.pending and just_applied:
                    # Our own status write reaches kopf's live body within milliseconds: look again soon
                    # (only right after an apply; a CR that stays unsynced is checked at the normal pace).
                    wait_s = min(PENDING_RECHECK_S, self.interval)
                elif decision is not None and decision.behind:
                    # Replicas catching up: confirm within a second. Steady unknowns (no token, no pods, a
                    # rejected token) wait the normal period: no polling storm.
                    wait_s = min(self.fast_interval, self.interval)
            except Exception as exc:  # a failed round is retried next period; never a secret in the log
                log.warning(
                    "convergence check of %s failed: %s", _ident(body), scrub(f"{type(exc).__name__}: {exc}")
                )
            deadline = time.monotonic() + wait_s
            while not stopped() and not poke.is_set() and time.monotonic() < deadline:
                # Short slices: `stopped` is a flag kopf sets, not something to await here.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        poke.wait(), timeout=min(0.5, max(0.01, deadline - time.monotonic()))
                    )
        self.forget(body)

    async def check(
        self, body: Mapping[str, Any], pods: list[Mapping[str, Any]]
    ) -> convergence.Decision | None:
        spec, _errors = validate_spec(body.get("spec"))
        if spec is None or spec.convergence is None:
            return None
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        status = body.get("status") or {}
        profile = resolve_profile(status.get("profile"), spec.database.profile)
        ref = spec.database.secretRef
        dsn = await self.kube.dsn_from_secret(namespace, ref.name, ref.key)
        token, problem = await read_token(self.kube, namespace, spec.convergence)
        self._token_seen[object_uid(body)] = _fingerprint(token)
        selected = hub_pods(pods, spec, namespace)
        written, probes, channel = await observe(
            self.store_factory(dsn, object_uid(body)),
            spec,
            profile,
            owner_marker(namespace, name),
            selected,
            token,
            problem,
        )
        uid = object_uid(body)
        tracking = self._tracking.setdefault(uid, Tracking())
        synced: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == CondType.SYNCED.value), {}
        )
        generation = meta.get("generation")
        pending = None
        if synced.get("status") != "True" or status.get("observedGeneration") != generation:
            pending = (
                f"waiting for the settings of generation {generation} to be written (Synced is not True)"
            )
        not_synced = pending is not None
        outside = outside_watch((spec.bootstrap or BootstrapSpec()).podSelector, self.watch_selector)
        if outside:  # a replica the operator cannot see could be behind: never claim convergence
            pending = f"{pending}; {outside}" if pending else outside
        decision = convergence.decide(
            written,
            probes,
            tracking,
            now=time.monotonic(),
            timeout_s=spec.convergence.timeoutSeconds,
            channel=channel,
            pending=pending,
        )
        decision = dataclasses.replace(decision, pending=not_synced)
        await self._publish(body, spec, decision)
        metrics.REPLICAS_BEHIND.labels(namespace, name).set(len(decision.behind))
        if decision.converged and uid in self._changed_at:
            metrics.CONVERGE_SECONDS.labels(namespace, name).observe(
                time.monotonic() - self._changed_at.pop(uid)
            )
        return decision

    async def _publish(
        self, body: Mapping[str, Any], spec: HubSettingsSpec, decision: convergence.Decision
    ) -> None:
        status = body.get("status") or {}
        before = next(
            (c for c in status.get("conditions") or [] if c.get("type") == CondType.CONVERGED.value), None
        )
        desired: list[Desired] = [decision.condition]
        ready: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == CondType.READY.value), {}
        )
        if (
            spec.convergence is not None
            and spec.convergence.requiredForReady
            and not decision.converged
            and (
                ready.get("status") == "True"
                or ready.get("reason") in {r.value for r in convergence.GATE_REASONS}
            )
        ):
            desired.append(
                Desired(
                    CondType.READY,
                    False,
                    decision.condition.reason,
                    f"{convergence.READY_GATE_PREFIX}{decision.condition.message}",
                )
            )
        elif spec.convergence is not None and spec.convergence.requiredForReady and decision.converged:
            # Ready's input just changed: release it now, not at the next reconcile or health round.
            released = convergence.released_ready(status, body.get("metadata", {}).get("generation"))
            if released is not None:
                desired.append(released)
        generation = body.get("metadata", {}).get("generation")
        report = decision.status.model_dump(mode="json")
        if _without_checked_at(status.get("convergence")) == _without_checked_at(report):
            report = status["convergence"]  # only the check times moved: write nothing
        update = StatusUpdate(
            fields={"convergence": report},
            verdict=Verdict(tuple(desired)),
            generation=generation if isinstance(generation, int) else None,
            observe=False,  # convergence applies no spec: the top-level observedGeneration is the reconciler's
        )
        async with self.writer.lock_for(body):
            await self.writer.write(body, update)
        for pod in decision.overdue:
            self.emit(
                body,
                Event(
                    EventType.WARNING,
                    Reason.REPLICAS_BEHIND,
                    f"Hub pod {pod} has not loaded the written revisions within "
                    f"{spec.convergence.timeoutSeconds if spec.convergence else 0} s "
                    f"(spec.convergence.timeoutSeconds): {decision.condition.message}",
                ),
            )
        was = (before or {}).get("reason")
        now = decision.condition.reason.value
        if now != was and decision.token_rejected:
            self.emit(body, Event(EventType.WARNING, decision.condition.reason, decision.condition.message))
        elif now != was and decision.converged and before is not None:
            self.emit(body, Event(EventType.NORMAL, EventReason.CONVERGED, decision.condition.message))


def register(
    registry: kopf.OperatorRegistry,
    resource: tuple[str, str, str],
    state: Any,
    emit: Callable[[Mapping[str, Any], Event], None],
    *,
    watch_selector: str = "",
) -> ConvergenceChecker:
    """Register the convergence daemon on `registry` (state: handlers.State); the reconcile handlers call
    `poke` on the returned checker after an apply that changed rows. Period: $HUBSETTINGS_CONVERGENCE_SECONDS
    (default 30 s; 1 s while a replica is behind)."""
    checker = ConvergenceChecker(
        state.reconciler.writer,
        state.kube,
        emit,
        state.reconciler.store_factory,
        interval=float(os.environ.get("HUBSETTINGS_CONVERGENCE_SECONDS", "30")),
        watch_selector=watch_selector,
    )

    @kopf.daemon(
        *resource,
        id="hubsettings.convergence",
        registry=registry,
        cancellation_timeout=5.0,
        when=lambda spec, **_: bool(spec.get("convergence")),
    )
    async def convergence_daemon(
        body: kopf.Body, stopped: kopf.DaemonStopped, namespace: str | None, **kwargs: Any
    ) -> None:
        index: kopf.Index[str | None, dict[str, Any]] = kwargs["hubsettings_pods"]
        await checker.run(body, lambda: list(index.get(namespace, [])), lambda: bool(stopped))

    return checker


def _fingerprint(token: str | None) -> str:
    """Compares tokens between rounds without keeping one in memory longer than a round."""
    return hashlib.sha256((token or "").encode()).hexdigest()


def _ident(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"

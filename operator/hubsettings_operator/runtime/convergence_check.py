"""The convergence check's I/O: per Hub pod, is its listener connected and which revisions has it loaded.

Three reads per round, then the pure decision (`convergence/decide.py`):
- the table: the revision of each section this HubSettings owns (`updated_by` = its owner marker);
- `pg_stat_activity`: which client addresses hold an idle `LISTEN <channel>` connection (the Hub's dedicated
  listener; the Hub sets no application_name, so the pod IP is the only link). Needs the Hub's role to be
  superuser or a member of pg_read_all_stats, else other sessions' queries are hidden and `listening` is null;
- each pod, by its IP (never a Service, which would answer from any replica): `GET
  /api/v1/admin/server-config` with the admin token; in PostgreSQL mode its `section_metadata` gives the
  revision of every section that replica's cache holds.

The token is read from its Secret on every round (registered with the redactor) and only ever sent in the
Authorization header. A rejected token (401/403) ends the round after the first pod: one request per period,
not one per pod and per second.

In the operator a kopf daemon per HubSettings with `spec.convergence` runs `ConvergenceChecker.run`: a round
right after each apply that changed rows (`poke`), every second while a replica is behind, else every
`interval` seconds.

Over 400 lines: the three reads of a round, the per-pod HTTP probe and the daemon that paces rounds belong
to one concern (the decision itself is pure, in convergence/decide.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import kopf

from hubsettings_operator.conditions import CondType, Desired, EventReason, EventType, Reason
from hubsettings_operator.convergence import decide as convergence
from hubsettings_operator.convergence.decide import Tracking
from hubsettings_operator.convergence.probe import SecretReader, hub_pods, observe, read_token
from hubsettings_operator.drift.sources import resolve_profile
from hubsettings_operator.redact import scrub
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.drift_check import outside_watch
from hubsettings_operator.runtime.status_writer import Written
from hubsettings_operator.runtime.status_writer import uid as object_uid
from hubsettings_operator.spec.models import (
    BootstrapSpec,
    HubSettingsSpec,
)
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status.rules import Event, StatusUpdate, Verdict
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.store import SettingsStore

log = logging.getLogger(__name__)

PENDING_RECHECK_S = 0.25
PENDING_WINDOW_S = 10.0


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

    def poke(self, body: Mapping[str, Any]) -> None:
        """An apply changed rows: check now (and time how long the replicas take)."""
        uid = object_uid(body)
        self._changed_at.setdefault(uid, time.monotonic())
        self._pokes.setdefault(uid, asyncio.Event()).set()

    def forget(self, body: Mapping[str, Any]) -> None:
        uid = object_uid(body)
        for store in (self._tracking, self._pokes, self._changed_at):
            store.pop(uid, None)

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
                    f"spec.convergence.requiredForReady: {decision.condition.message}",
                )
            )
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


def _ident(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"

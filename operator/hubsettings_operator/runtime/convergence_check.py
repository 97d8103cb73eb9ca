"""The convergence check: per HubSettings with `spec.convergence`, have the Hub replicas loaded what was written?

Reads with the replica probe (`convergence/probe.py`: the table, pg_stat_activity, each pod's admin endpoint),
hands what it read to the pure decision (`convergence/decide.py`) and verdict (`status/convergence.py`, with
the one Ready gate), then writes through the one status writer and posts the verdict's Events.

In the operator a kopf daemon per HubSettings with `spec.convergence` runs `ConvergenceChecker.run`: a round
right after each apply that changed rows (`poke`), then again after 20, 40, 80, ... ms up to one second while
the replicas catch up (`convergence/schedule.py`, which also says which verdicts wait for a grace before they
are written), every second while a replica stays behind, else every `OperatorConfig.convergence_seconds`. The health timer calls `check_token`: a changed token Secret starts a
round at once (a fixed or rotated token shows within one health period). When a round changes the Hub version
that governs validation (status/hub_version.py), the handlers' `revalidate` reconciles the object at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf

from hubsettings_operator.convergence import decide as convergence
from hubsettings_operator.convergence import schedule
from hubsettings_operator.convergence.decide import Tracking
from hubsettings_operator.convergence.probe import hub_pods, observe, read_token
from hubsettings_operator.drift.sources import outside_watch, resolve_profile
from hubsettings_operator.redact import scrub
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.services import Services, generation_of
from hubsettings_operator.runtime.status_writer import Written
from hubsettings_operator.runtime.status_writer import uid as object_uid
from hubsettings_operator.spec.models import BootstrapSpec, ConvergenceSpec, HubSettingsSpec
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status import hub_version
from hubsettings_operator.status.convergence import convergence_verdict, pending_write
from hubsettings_operator.status.rules import Event
from hubsettings_operator.table.plan import owner_marker

log = logging.getLogger(__name__)

PENDING_WINDOW_S = 10.0  # after a commit, rounds that find the replicas catching up follow the fast schedule


class ConvergenceChecker:
    """One per operator process; remembers per HubSettings what the pure decision needs between rounds."""

    def __init__(self, services: Services, *, fast_interval: float = 1.0, watch_selector: str = "") -> None:
        self.watch_selector = watch_selector
        # Convergence reads share the bounded pools (and the object's pool owner) through the one store factory.
        self.services = services
        self.interval = services.config.convergence_seconds
        self.fast_interval = fast_interval
        self._tracking: dict[str, Tracking] = {}
        self._pokes: dict[str, asyncio.Event] = {}
        self._changed_at: dict[str, float] = {}  # uid -> monotonic time of the apply not yet converged
        self._committed_at: dict[
            str, float
        ] = {}  # uid -> monotonic time of the latest apply that changed rows
        self._token_seen: dict[str, str] = {}  # uid -> fingerprint of the token the last round used
        # uid -> (DSN, token, why no token) as the first round after a commit read them, for that burst's
        # follow-up rounds only (dropped when the burst ends: a token is not kept between bursts).
        self._burst_reads: dict[str, tuple[str, str | None, str | None]] = {}
        # Set by the handlers: reconcile an object now (this check never imports the reconcile).
        self.revalidate: Callable[[Mapping[str, Any]], Awaitable[None]] | None = None

    def poke(self, body: Mapping[str, Any]) -> None:
        """An apply changed rows: check now (and time how long the replicas take)."""
        uid = object_uid(body)
        now = time.monotonic()
        self._changed_at.setdefault(uid, now)
        self._committed_at[uid] = now
        self._pokes.setdefault(uid, asyncio.Event()).set()

    def forget(self, body: Mapping[str, Any]) -> None:
        uid = object_uid(body)
        for store in (
            self._tracking,
            self._pokes,
            self._changed_at,
            self._committed_at,
            self._token_seen,
            self._burst_reads,
        ):
            store.pop(uid, None)

    async def check_token(self, body: Mapping[str, Any]) -> bool:
        """Called on the health period (every period, whatever `--secret-seconds` says of the DSN Secret): when
        the token Secret no longer holds the token the last round used, start a round now (a fixed or rotated token shows within
        one health period, not one convergence period). True when it poked. The operator only `get`s Secrets
        it is pointed at (it never lists or watches Secrets), so this is a read, not a watch."""
        uid = object_uid(body)
        if uid not in self._token_seen:  # no round yet (or no spec.convergence): nothing to compare with
            return False
        spec, _errors = validate_spec(body.get("spec"))
        if spec is None or spec.convergence is None:
            return False
        namespace = str(body.get("metadata", {}).get("namespace"))
        token, _problem = await read_token(self.services.kube, namespace, spec.convergence)
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
        polls = 0  # rounds since the latest poke that found the replicas catching up
        while not stopped():
            if poke.is_set():
                polls = 0
            poke.clear()
            wait_s = self.interval
            try:
                decision = await self.check(body, pods(), reuse_reads=polls > 0)
                since = self.since_commit(uid)
                just_applied = since is not None and since < PENDING_WINDOW_S
                if decision is not None and just_applied and schedule.catching_up(decision):
                    # Right after a commit: look again within milliseconds, backing off to the fast interval
                    # (a CR that stays unsynced, or long after an apply, is checked at the normal pace).
                    wait_s = schedule.recheck_delay(polls, cap=min(self.fast_interval, self.interval))
                    polls += 1
                else:
                    polls = 0
                    self._burst_reads.pop(uid, None)  # the next round reads the Secrets again
                    if decision is not None and decision.behind:
                        # Replicas catching up: confirm within a second. Steady unknowns (no token, no pods,
                        # a rejected token) wait the normal period: no polling storm.
                        wait_s = min(self.fast_interval, self.interval)
            except Exception as exc:  # a failed round is retried next period; never a secret in the log
                polls = 0
                self._burst_reads.pop(uid, None)
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

    def since_commit(self, uid: str) -> float | None:
        """Seconds since the latest apply of this object that changed rows (None: none seen)."""
        at = self._committed_at.get(uid)
        return None if at is None else time.monotonic() - at

    async def check(
        self, body: Mapping[str, Any], pods: list[Mapping[str, Any]], *, reuse_reads: bool = False
    ) -> convergence.Decision | None:
        """One round. `reuse_reads`: a follow-up round right after a commit, which uses the Secrets the round
        the commit started read (a burst of rounds costs two Secret reads, not two per round)."""
        spec, _errors = validate_spec(body.get("spec"))
        if spec is None or spec.convergence is None:
            return None
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        uid = object_uid(body)
        since = self.since_commit(uid)
        status = body.get("status") or {}
        profile = resolve_profile(status.get("profile"), spec.database.profile)
        dsn, token, problem = await self._reads(uid, namespace, spec, spec.convergence, reuse_reads)
        written, probes, channel = await observe(
            self.services.store_factory(dsn, uid),
            spec,
            profile,
            owner_marker(namespace, name),
            hub_pods(pods, spec, namespace),
            token,
            problem,
        )
        tracking = self._tracking.setdefault(uid, Tracking())
        outside = outside_watch((spec.bootstrap or BootstrapSpec()).podSelector, self.watch_selector)
        timeout_s = spec.convergence.timeoutSeconds

        def decide(tracked: Tracking, pending: str | None) -> convergence.Decision:
            # A replica the operator cannot see (`outside`) could be behind: never claim convergence.
            why = "; ".join(p for p in (pending, outside) if p) or None
            found = convergence.decide(
                written,
                probes,
                tracked,
                now=time.monotonic(),
                timeout_s=timeout_s,
                channel=channel,
                pending=why,
            )
            return dataclasses.replace(found, pending=pending is not None)

        writer = self.services.writer
        pending = pending_write(status, meta.get("generation"))
        written_obj: tuple[Written, list[Event]] | None = None
        if pending is not None and since is not None and since < PENDING_WINDOW_S:
            # Right after a commit: the reconcile's own status write may still be under way (this round started
            # at the commit) or not yet in kopf's copy of the object. What the replicas say decides first:
            trial = copy.deepcopy(tracking)  # decided again below if written: an overdue is announced once
            settled = decide(trial, None)
            if schedule.hold_back(settled, since):
                self._tracking[uid] = trial
                decision = dataclasses.replace(settled, pending=True)  # catching up: nothing to write yet
            else:
                # A verdict to write: after the reconcile's write (the object's lock), over the object as read.
                async with writer.lock_for(body):
                    fresh = await self.services.kube.get_hubsettings(namespace, name)
                    if fresh is None:
                        return None
                    body = fresh
                    decision = decide(tracking, pending_write(body.get("status") or {}, generation_of(body)))
                    if not schedule.hold_back(decision, since):
                        written_obj = await self._write(body, spec, decision, read_under_lock=True)
        else:
            decision = decide(tracking, pending)
            if not schedule.hold_back(decision, since):
                async with writer.lock_for(body):
                    written_obj = await self._write(body, spec, decision, read_under_lock=False)
        if written_obj is not None:
            await self._after_write(body, *written_obj)
        metrics.REPLICAS_BEHIND.labels(namespace, name).set(len(decision.behind))
        if decision.converged and uid in self._changed_at:
            metrics.CONVERGE_SECONDS.labels(namespace, name).observe(
                time.monotonic() - self._changed_at.pop(uid)
            )
        return decision

    async def _reads(
        self, uid: str, namespace: str, spec: HubSettingsSpec, conv: ConvergenceSpec, reuse: bool
    ) -> tuple[str, str | None, str | None]:
        """(DSN, token, why no token) from their Secrets, both read at once (one API round trip of this round's
        latency, not two); a follow-up round of a burst reuses the burst's first reads."""
        if reuse and uid in self._burst_reads:
            return self._burst_reads[uid]
        ref = spec.database.secretRef
        kube = self.services.kube
        dsn, (token, problem) = await asyncio.gather(
            kube.dsn_from_secret(namespace, ref.name, ref.key), read_token(kube, namespace, conv)
        )
        self._token_seen[uid] = _fingerprint(token)
        self._burst_reads[uid] = (dsn, token, problem)
        return dsn, token, problem

    async def _write(
        self,
        body: Mapping[str, Any],
        spec: HubSettingsSpec,
        decision: convergence.Decision,
        *,
        read_under_lock: bool,
    ) -> tuple[Written, list[Event]]:
        """The verdict's status write and its Events (posted after the lock is released); call with the
        object's lock held (`read_under_lock`: `body` was read from the API under this lock, so the writer
        need not read it again)."""
        timeout_s = spec.convergence.timeoutSeconds if spec.convergence else 0
        update, events = convergence_verdict(body, decision, timeout_s=timeout_s)
        writer = self.services.writer
        if read_under_lock:
            return await writer.write_over(body, update), events
        return await writer.write(body, update), events

    async def _after_write(self, body: Mapping[str, Any], written: Written, events: list[Event]) -> None:
        for event in events:
            self.services.emit(body, event)
        after = {**(written.fresh or {}), "status": written.status}
        if self.revalidate is not None and written.fresh is not None and hub_version.changed(after):
            # The replicas' versions moved (an old replica replaced, or one added): the governing version of
            # validation changed, so the reconcile must run now (outside the object lock it takes itself).
            log.info("Hub versions of %s changed: reconciling now", _ident(body))
            await self.revalidate(after)


def register(
    registry: kopf.OperatorRegistry,
    resource: tuple[str, str, str],
    services: Services,
    *,
    watch_selector: str = "",
) -> ConvergenceChecker:
    """Register the convergence daemon on `registry`; the reconcile handlers call `poke` on the returned
    checker after an apply that changed rows."""
    checker = ConvergenceChecker(services, watch_selector=watch_selector)

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

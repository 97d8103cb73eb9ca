"""The reconcile check: orchestrates one HubSettings at a time; kopf handlers only call this.

It takes the process's `Services` (runtime/services.py) and imports neither the drift nor the convergence
check. It decides nothing about status itself (`status/rules.py` holds the rules, `status/checks.py` and
`status/ready.py` what concerns the other checks) and writes status only through the services' status writer. Steps of a reconcile, under the object's lock:

1. snapshot the body (kopf hands timers a *live* body that changes under a running reconcile: the spec and
   the generation written to status must come from the same snapshot);
2. an object never seen before gets Reconciling=True at once, before any database work;
3. validate against the governing Hub version (status/hub_version.py: spec.hubVersion, else the oldest replica's
   as the convergence check last reported it, with that version's live schema, else the facts; InvalidSpec ->
   Stalled, nothing written) -> suspend? -> DSN from the Secret -> one store apply;
4. status and events from the pure rules; a newer generation seen while writing is reconciled right away.

Over 400 lines: reconcile, retarget, health probe and finalizer share the object lock, the store factory and
the generation guard; each is a short method over `status/rules.py`'s rules.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hubsettings_operator.conditions import EventReason, EventType, Reason
from hubsettings_operator.errors import DatabaseUnavailable, HubSettingsError, WaitingForConnection
from hubsettings_operator.redact import describe_dsn, fingerprint, scrub
from hubsettings_operator.runtime import metrics
from hubsettings_operator.runtime.noop_memo import NoopKey, NoopMemo
from hubsettings_operator.runtime.services import Services, generation_of, snapshot
from hubsettings_operator.runtime.status_writer import Written, uid
from hubsettings_operator.spec import live_schema
from hubsettings_operator.spec.models import (
    DatabaseSpec,
    DeletionPolicy,
    HubSettingsSpec,
    Profile,
    TargetStatus,
)
from hubsettings_operator.spec.validation import unvalidated_sections, validate_spec
from hubsettings_operator.status import hub_version, rules
from hubsettings_operator.status.checks import drop_disabled_checks
from hubsettings_operator.status.rules import (
    DELETE_ATTEMPTS_BEFORE_RELEASE,
    FORCE_RELEASE_ANNOTATION,
    MAX_CONFLICTS_IN_STATUS,
    Event,
    StatusUpdate,
    changed_fields,
)
from hubsettings_operator.table.apply import apply_spec
from hubsettings_operator.table.plan import OWNER_PREFIX, Action, WrittenRecord, owner_marker
from hubsettings_operator.table.store import ApplyResult, Target
from hubsettings_operator.table.wanted import WantedCache

log = logging.getLogger(__name__)

__all__ = [
    "DELETE_ATTEMPTS_BEFORE_RELEASE",
    "FORCE_RELEASE_ANNOTATION",
    "MAX_CONFLICTS_IN_STATUS",
    "Event",
    "Outcome",
    "Reconciler",
    "backoff",
    "changed_fields",
]

# Reconciles of a newer generation found while writing status, run back to back before giving up the lock.
MAX_CATCH_UP = 3


@dataclass
class Outcome:
    """What one reconcile did. `retry_in` is set for transient failures (capped exponential backoff)."""

    result: str
    status: dict[str, Any] = field(default_factory=dict)  # the owned fields as written (or wanted)
    events: list[Event] = field(default_factory=list)
    retry_in: float | None = None
    error: str | None = None
    apply: ApplyResult | None = None
    update: StatusUpdate | None = None
    noop_key: NoopKey | None = None  # the inputs of this outcome (runtime/noop_memo.py), when it may be kept
    noop_held: tuple[Any, ...] = ()


def backoff(attempt: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Capped exponential backoff with jitter: 2, 4, 8, ... up to `cap` seconds. The jitter spans half the
    delay: a thousand objects failing together (one database server down) retry spread out, not in waves."""
    return float(min(cap, base * 2 ** max(0, attempt)) * random.uniform(0.5, 1.0))


# A reconcile that waited its whole bounded turn for a connection (the operator's cap full) queues again
# this soon: it is waiting, not failing, so no exponential backoff.
REQUEUE_AFTER = (0.5, 2.0)


@functools.lru_cache(maxsize=4096)
def database_fingerprint(dsn: str) -> str:
    """Identity of the database a DSN points at (host:port/name), without its credentials: a rotated
    password is the same database. A pure function of the text: computed once per DSN."""
    return fingerprint(describe_dsn(dsn))


# Records are immutable and recur on every resync (same revision, same digest): built once each, not per
# reconcile (a frozen dataclass is slow to construct; a no-op resync of 21 sections built 21).
_record = functools.lru_cache(maxsize=65536, typed=True)(WrittenRecord)


def last_written_of(status: Mapping[str, Any]) -> dict[str, WrittenRecord]:
    """`status.written` as the table layer's records: what this object wrote last, per row key."""
    out: dict[str, WrittenRecord] = {}
    for key, raw in (status.get("written") or {}).items():
        # `type(...) is dict` first: the ABC check alone cost more than the rest of the loop.
        if (type(raw) is dict or isinstance(raw, Mapping)) and isinstance(digest := raw.get("digest"), str):
            revision = raw.get("revision")
            out[str(key)] = _record(revision if isinstance(revision, int) else None, digest)
    return out


def written_status(result: ApplyResult) -> dict[str, dict[str, Any]]:
    """`status.written` from the apply's records (revision and digest per owned row; never a value)."""
    return {
        key: {"revision": rec.revision, "digest": rec.digest} for key, rec in sorted(result.written.items())
    }


def _ident(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata", {})
    return str(meta.get("namespace")), str(meta.get("name"))


class Reconciler:
    """Reconciles HubSettings objects; one instance per operator process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.kube = services.kube
        self.config = services.config
        self.registry = services.pools
        self.max_backoff = services.config.max_backoff_seconds
        self.emit = services.emit
        self.clock = services.clock
        self.writer = services.writer
        self.store_factory = services.store_factory
        # Fingerprint of the DSN each object's last reconcile used (the health probe compares it).
        self._dsn_seen: dict[str, str] = {}
        # The DSN last read from each object's Secret and when (monotonic): the health probe pings with it and
        # re-reads the Secret every `config.secret_seconds`, or at once when the ping fails.
        self._dsn_read: dict[str, tuple[str, float]] = {}
        # Highest generation whose spec was applied, per object: an older body (a timer's) is never applied
        # over it.
        self._applied_generation: dict[str, int] = {}
        # Canonical texts of each validated spec's rows, so a no-op resync does not canonicalise them again.
        self._wanted = WantedCache()
        # Set by the handlers: told of each apply that changed rows as soon as it is committed (before this
        # reconcile's status write), so the convergence check asks the replicas while that write is under way.
        self.committed: Callable[[Mapping[str, Any]], None] | None = None
        # The status outcome of each object's last no-op reconcile, on a key covering all of its inputs.
        self._noops = NoopMemo()
        # Generation whose Ready=True this process wrote or found last, per object: the health probe's body may
        # lag the API server (kopf's, under load), and a stale "not Ready" must not start a reconcile.
        self._ready_generation: dict[str, int] = {}
        # Objects this process has started a reconcile of: the health probe leaves the others to their
        # create/resume handler (at start, a thousand objects queued for it would each be reconciled twice).
        self._attempted: set[str] = set()

    def dsn_changed(self, body: Mapping[str, Any], dsn: str) -> bool:
        """Whether `dsn` differs from the one the last reconcile of this object used."""
        seen = self._dsn_seen.get(uid(body))
        return seen is not None and seen != fingerprint(dsn)

    def lock_for(self, body: Mapping[str, Any]) -> asyncio.Lock:
        return self.writer.lock_for(body)

    def now(self) -> str:
        return rules.rfc3339(self.clock())

    async def forget(self, body: Mapping[str, Any]) -> None:
        """The object is gone: drop what this process remembers of it and release its database connections."""
        key = uid(body)
        self._dsn_seen.pop(key, None)
        self._dsn_read.pop(key, None)
        self._applied_generation.pop(key, None)
        self._noops.forget(key)
        self._attempted.discard(key)
        self._ready_generation.pop(key, None)
        self.writer.forget(body)
        await self.registry.release(key)

    async def close(self) -> None:
        await self.registry.close()

    def deadline_for(self, spec: HubSettingsSpec | None) -> float:
        per_object = spec.progressDeadlineSeconds if spec is not None else None
        return float(per_object) if per_object else self.config.progress_deadline_seconds

    # ---- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any], attempt: int = 0) -> Outcome:
        """Reconcile one object; write its status (only what changed) and events (only on transitions)."""
        async with self.lock_for(body):
            outcome = Outcome("noop")
            current: Mapping[str, Any] = snapshot(body)
            for _ in range(MAX_CATCH_UP):
                outcome, written = await self._reconcile_once(current, attempt)
                newer = written.fresh if written is not None else None
                gen, newer_gen = generation_of(current), generation_of(newer or {})
                if newer is None or gen is None or newer_gen is None or newer_gen <= gen:
                    break
                # The spec changed while this (e.g. timer) reconcile waited on the database: apply the newer
                # generation now, not at the next backoff or resync.
                log.info(
                    "generation %s arrived during the reconcile of %s: reconciling it now", newer_gen, gen
                )
                current = newer
            return outcome

    async def _reconcile_once(self, body: Mapping[str, Any], attempt: int) -> tuple[Outcome, Written | None]:
        key = uid(body)
        self._attempted.add(key)
        generation = generation_of(body)
        if generation is not None and generation < self._applied_generation.get(key, 0):
            return Outcome("stale"), None  # a newer spec is already applied: never apply an older one
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            # Being deleted: never write again (a late resync could re-insert rows the finalizer removed).
            return Outcome("deleting"), None
        status: Mapping[str, Any] = body.get("status") or {}
        if not status.get("conditions"):
            first = await self.writer.write(
                body, StatusUpdate(verdict=rules.progressing(), generation=generation), only_first=True
            )
            status = first.status
            body = {**body, "status": status}
        outcome = await self._decide(body, attempt)
        if outcome.result == "applied" and self.committed is not None:
            self.committed(body)
        metrics.RECONCILES.labels(*_ident(body), outcome.result).inc()
        if outcome.apply is not None:
            self._record_apply(body, outcome)
        written: Written | None = None
        if outcome.update is not None:
            drop_disabled_checks(body.get("spec") or {}, status, outcome.update)
            rules.gate_on_convergence(body, outcome.update, changed=outcome.result == "applied")
            written = await self.writer.write(body, outcome.update)
            outcome.status = {**outcome.update.fields, **written.patch}
            if outcome.noop_key is not None and not written.patch and not outcome.events:
                self._noops.put(key, outcome.noop_key, outcome.noop_held, outcome.status)
            self._note_ready(key, written.status, written.generation)
        if outcome.apply is not None and generation is not None:
            self._applied_generation[key] = max(generation, self._applied_generation.get(key, 0))
        for event in outcome.events:
            self.emit(body, event)
        return outcome, written

    async def _decide(self, body: Mapping[str, Any], attempt: int) -> Outcome:
        namespace, name = _ident(body)
        generation = generation_of(body)
        status = body.get("status") or {}
        # The oldest running replica's version governs (status/hub_version.py), with its live schema.
        hub = hub_version.governing(body.get("spec"), status)
        live = live_schema.cached(hub.effective) if hub.source == hub_version.SOURCE_REPLICAS else None
        spec, errors = validate_spec(body.get("spec"), hub_version=hub.hub_version, live=live)
        mixed = hub_version.mixed_event(status, hub)
        if spec is None:
            message = "; ".join(str(e) for e in errors[:5]) + (
                f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
            )
            verdict = rules.stalled(Reason.INVALID_SPEC, message)
            return Outcome(
                "invalid",
                update=StatusUpdate(
                    fields={"hubVersion": hub.as_status()}, verdict=verdict, generation=generation
                ),
                events=rules.transition_events(status, verdict) + ([mixed] if mixed else []),
            )
        if spec.suspend:
            return Outcome(
                "suspended",
                update=StatusUpdate(
                    fields={"hubVersion": hub.as_status()}, verdict=rules.suspended(), generation=generation
                ),
            )
        try:
            ref = spec.database.secretRef
            dsn = await self.kube.dsn_from_secret(namespace, ref.name, ref.key)
            self._dsn_seen[uid(body)] = fingerprint(dsn)
            self._dsn_read[uid(body)] = (dsn, time.monotonic())
            store = self.store_factory(dsn, uid(body))
            where = database_fingerprint(dsn)
            last_written = last_written_of(status)

            async def apply(released: frozenset[str] = frozenset()) -> ApplyResult:
                return await apply_spec(
                    store,
                    spec,
                    owner_marker(namespace, name),
                    last_written=last_written,
                    released_owners=released,
                    wanted=self._wanted,
                )

            result = await apply()
            released = await self._released_owners(result, spec.database.table, where)
            adopted_event = None
            if released:
                # Rows of a HubSettings that no longer exists (deleted with Retain, renamed in Git): take
                # them over instead of reporting KeyOwnedByOther forever.
                result = await apply(released)
                adopted = [c.key for c in result.plan.writes if c.current_by in released]
                adopted_event = Event(
                    EventType.NORMAL,
                    EventReason.ADOPTED_ROWS,
                    f"took over {', '.join(adopted)} from deleted HubSettings {', '.join(sorted(released))}",
                )
        except HubSettingsError as exc:
            return self._failed(exc, body, spec, attempt)
        noop_key: NoopKey | None = None
        held: tuple[Any, ...] = ()
        if not released and mixed is None and not result.plan.writes:
            # Nothing written: the status this reconcile wants follows from these inputs alone.
            held = (spec, live, result.plan)
            noop_key = self._noops.key(status, generation, held, where, result.profile)
            kept = self._noops.get(uid(body), noop_key) if noop_key is not None else None
            if kept is not None:
                return Outcome("noop", status=kept, apply=result)  # found in place before: nothing to write
        update, events = rules.applied(result, status, generation, self.now())
        target = TargetStatus(
            table=spec.database.table,
            profile=result.profile.value,
            dsnFingerprint=where,
            secretName=ref.name,
            secretKey=ref.key,
        )
        update.fields["target"] = target.model_dump()
        update.fields["written"] = written_status(result)
        # What the operator wrote without being able to check it, and what it only watches (Observe).
        update.fields["unvalidatedSections"] = unvalidated_sections(spec, live)
        update.fields["hubVersion"] = hub.as_status()
        update.fields["observedDrift"] = sorted(c.key for c in result.plan.observed_drift)
        outcome = Outcome(
            "applied" if result.plan.writes else "noop",
            apply=result,
            update=update,
            events=events,
            noop_key=noop_key,
            noop_held=held,
        )
        if adopted_event is not None:
            outcome.events.insert(0, adopted_event)
        if mixed is not None:
            outcome.events.append(mixed)
        moved = await self._leave_old_target(body, spec, dsn, target)
        if moved is not None:
            outcome.events.insert(0, moved)
        return outcome

    async def _leave_old_target(
        self, body: Mapping[str, Any], spec: HubSettingsSpec, dsn: str, new: TargetStatus
    ) -> Event | None:
        """spec.database now points elsewhere than the rows this object wrote: release them there (another
        HubSettings may claim them, see `_released_owners`), or delete them under `deletion: Delete`."""
        try:
            old = TargetStatus.model_validate((body.get("status") or {}).get("target"))
        except ValueError:
            return None
        if (old.table, old.dsnFingerprint) == (new.table, new.dsnFingerprint):
            return None
        namespace, name = _ident(body)
        moved = f"spec.database moved from table {old.table} on database {old.dsnFingerprint} to table {new.table}"
        if new.dsnFingerprint != old.dsnFingerprint:
            moved += f" on database {new.dsnFingerprint}"
        if spec.policy.deletion is not DeletionPolicy.DELETE:
            return Event(
                EventType.NORMAL,
                EventReason.RETARGETED,
                f"{moved}: the rows in the old table are left as they are and released (deletion policy "
                "Retain): another HubSettings may take them over",
            )
        try:
            old_dsn = dsn
            if old.dsnFingerprint != new.dsnFingerprint:
                old_dsn = await self.kube.dsn_from_secret(namespace, old.secretName, old.secretKey)
                if database_fingerprint(old_dsn) != old.dsnFingerprint:
                    raise DatabaseUnavailable(f"Secret {old.secretName} no longer points at the old database")
            old_target = Target(table=old.table, profile=Profile(old.profile), channel=spec.database.channel)
            store = self.store_factory(old_dsn, uid(body))
            result = await store.delete_owned(old_target, owner_marker(namespace, name))
        except HubSettingsError as exc:
            return Event(
                EventType.WARNING,
                EventReason.RETARGETED,
                f"{moved}: the rows in the old table could not be deleted ({scrub(exc.message)}); they are "
                "left and released",
            )
        removed = [c.key for c in result.plan.by_action(Action.DELETE)]
        return Event(
            EventType.NORMAL,
            EventReason.RETARGETED,
            f"{moved}: deleted {len(removed)} row(s) from the old table ({', '.join(removed) or 'none'}; "
            "deletion policy Delete)",
        )

    def _failed(
        self, exc: HubSettingsError, body: Mapping[str, Any], spec: HubSettingsSpec | None, attempt: int
    ) -> Outcome:
        message = scrub(exc.message)
        status = body.get("status") or {}
        if exc.reason is Reason.WAITING_FOR_CONNECTION:
            return self._waiting(message, body)
        verdict = rules.failure(
            exc.reason,
            message,
            transient=exc.transient or exc.reason is Reason.SECRET_NOT_FOUND,
            old_status=status,
            now=self.clock(),
            deadline_seconds=self.deadline_for(spec),
        )
        return Outcome(
            exc.reason.value,
            error=message,
            retry_in=backoff(attempt, cap=self.max_backoff),
            update=StatusUpdate(verdict=verdict, generation=generation_of(body)),
            events=rules.transition_events(status, verdict),
        )

    def _waiting(self, message: str, body: Mapping[str, Any]) -> Outcome:
        """Queued behind other objects for a connection: requeue soon. An object already Ready for this
        generation keeps its status (its rows are applied; only a resync waited)."""
        status = body.get("status") or {}
        generation = generation_of(body)
        update = None
        if not (rules.is_ready(status) and status.get("observedGeneration") == generation):
            update = StatusUpdate(
                verdict=rules.transient_failure(Reason.WAITING_FOR_CONNECTION, message), generation=generation
            )
        return Outcome(
            Reason.WAITING_FOR_CONNECTION.value,
            error=message,
            retry_in=random.uniform(*REQUEUE_AFTER),
            update=update,
        )

    def _record_apply(self, body: Mapping[str, Any], outcome: Outcome) -> None:
        namespace, name = _ident(body)
        result = outcome.apply
        assert result is not None
        series = metrics.apply_series(namespace, name)
        series.apply_seconds.observe(result.duration_s)
        for change in result.plan.writes:
            metrics.ROWS_CHANGED.labels(namespace, name, change.action.value).inc()
        if result.notifications:
            series.notifications.inc(len(result.notifications))
        series.last_apply.set(time.time())
        conflicts = len(result.plan.owned_by_other) + len(result.plan.conflicts)
        series.conflicts.set(min(conflicts, MAX_CONFLICTS_IN_STATUS))

    async def _released_owners(self, result: ApplyResult, table: str, where: str) -> frozenset[str]:
        """Owner markers of rows owned by another HubSettings that no longer exists, or that now writes to
        another table or database (its status.target moved). A HubSettings the operator may not read
        (another namespace, namespaced install) counts as present."""
        released: set[str] = set()
        for marker in {c.current_by for c in result.plan.owned_by_other if c.current_by}:
            ns, _, other = marker.removeprefix(OWNER_PREFIX).partition("/")
            try:
                obj = await self.kube.get_hubsettings(ns, other)
            except Exception:  # forbidden or unreachable: assume it exists
                log.debug("cannot tell whether %s exists", marker, exc_info=True)
                continue
            if obj is None:
                released.add(marker)
                continue
            try:
                there = TargetStatus.model_validate((obj.get("status") or {}).get("target"))
            except ValueError:
                continue
            if (there.table, there.dsnFingerprint) != (table, where):
                released.add(marker)
        return frozenset(released)

    # ---- health probe -------------------------------------------------------------------------------

    async def health(self, body: Mapping[str, Any]) -> str:
        """The health timer: probe the database (bounded by `config.probe_timeout`, below the health period),
        report an outage at once, reconcile when not Ready or when the DSN changed. -> what it did."""
        snap: Mapping[str, Any] = snapshot(body)
        status = snap.get("status") or {}
        if uid(snap) not in self._attempted:
            return "not-yet"  # its create/resume handler has not run yet; it reconciles the object
        if self.lock_for(snap).locked():
            # A reconcile (or a status write) of this object is under way and will write status itself. Under
            # load its writes wait for the API server; a probe reconcile queued behind it adds more of them.
            return "in-progress"
        if not rules.should_probe(status):
            return "skipped"
        spec, _ = validate_spec(snap.get("spec"))
        if spec is None or spec.suspend:
            return "skipped"
        namespace, name = _ident(snap)
        ref = spec.database.secretRef
        key = uid(snap)
        dsn_changed = False

        async def read_dsn() -> str:
            dsn = await self.kube.dsn_from_secret(namespace, ref.name, ref.key)
            self._dsn_read[key] = (dsn, time.monotonic())
            return dsn

        try:
            # The Secret read is outside the probe's bound: a slow API server (a thousand objects queued on
            # it) says nothing about the database. Read every `secret_seconds`, not every probe.
            cached = self._dsn_read.get(key)
            read_now = cached is None or time.monotonic() - cached[1] >= self.config.secret_seconds
            dsn = await read_dsn() if read_now or cached is None else cached[0]
            dsn_changed = self.dsn_changed(snap, dsn)
            try:
                async with asyncio.timeout(self.config.probe_timeout):
                    if not dsn_changed:
                        # No queueing: a probe that finds the cap full is no evidence against the database.
                        await self.store_factory(dsn, key).ping(
                            Target(table=spec.database.table), queue=False
                        )
            except (TimeoutError, HubSettingsError) as failure:
                if read_now or isinstance(failure, WaitingForConnection):
                    raise
                # The DSN was read up to `secret_seconds` ago: a rotated password fails with the old one.
                # Read the Secret before blaming the database.
                dsn_changed = self.dsn_changed(snap, await read_dsn())
                if not dsn_changed:
                    raise
        except WaitingForConnection:
            return "busy"
        except TimeoutError:
            exc: HubSettingsError = DatabaseUnavailable(
                f"database of spec.database.secretRef {ref.name} did not answer within "
                f"{self.config.probe_timeout:g}s (health probe)"
            )
            await self._report_down(snap, spec, exc)
            return "down"
        except HubSettingsError as exc:
            await self._report_down(snap, spec, exc)
            return "down"
        if dsn_changed:
            log.info("DSN in Secret %s/%s changed: reconciling HubSettings %s", namespace, ref.name, name)
            await self.reconcile(body)
            return "dsn-changed"
        if rules.is_ready(status) or self._ready_generation.get(key) == generation_of(snap):
            return "ok"
        await self.reconcile(body)
        return "reconciled"

    def _note_ready(self, key: str, status: Mapping[str, Any], generation: int | None) -> None:
        """Remember whether the status just written says Ready for its generation (see `_ready_generation`)."""
        observed = status.get("observedGeneration")
        if rules.is_ready(status) and isinstance(observed, int) and observed == generation:
            self._ready_generation[key] = observed
        else:
            self._ready_generation.pop(key, None)

    async def _report_down(
        self, body: Mapping[str, Any], spec: HubSettingsSpec, exc: HubSettingsError
    ) -> None:
        """An outage found by the probe goes to status now, without waiting for an apply to time out. The
        generation stays the one already observed: the probe applies no spec."""
        async with self.lock_for(body):
            fresh = await self.kube.get_hubsettings(*_ident(body))
            if fresh is None or (fresh.get("metadata") or {}).get("deletionTimestamp"):
                return
            outcome = self._failed(exc, fresh, spec, 0)
            assert outcome.update is not None
            outcome.update.generation = None
            written = await self.writer.write(fresh, outcome.update)
            self._note_ready(uid(body), written.status, written.generation)
            if written.patch:
                for event in outcome.events:
                    self.emit(fresh, event)

    # ---- deletion -----------------------------------------------------------------------------------

    async def finalize(self, body: Mapping[str, Any], attempt: int) -> Outcome:
        """Deletion policy Delete: remove this object's rows and notify. Bounded when the DB is gone; while it
        waits, status says why the deletion is blocked (Ready=False, Reconciling=True, reason Deleting)."""
        async with self.lock_for(body):  # never interleaved with a reconcile of the same object
            snap: Mapping[str, Any] = snapshot(body)
            outcome, decision = await self._finalize(snap, attempt)
            if decision.update is not None:
                await self.writer.write(snap, decision.update)
            outcome.events.extend(decision.events)
            if decision.retry:
                outcome.retry_in = backoff(attempt, cap=self.max_backoff)
            return outcome

    async def _finalize(
        self, body: Mapping[str, Any], attempt: int
    ) -> tuple[Outcome, rules.FinalizeDecision]:
        namespace, name = _ident(body)
        meta = body.get("metadata") or {}
        # Only spec.database is needed to delete by owner marker: a spec that became invalid elsewhere must
        # not leave its rows behind.
        try:
            database = DatabaseSpec.model_validate((body.get("spec") or {}).get("database"))
        except ValueError:
            return Outcome("deleted-invalid"), rules.finalize_invalid(owner_marker(namespace, name))
        try:
            ref = database.secretRef
            dsn = await self.kube.dsn_from_secret(namespace, ref.name, ref.key)
            store = self.store_factory(dsn, uid(body))
            target = Target(
                table=database.table, profile=database.profile, channel=database.channel, create_table=False
            )
            result = await store.delete_owned(target, owner_marker(namespace, name))
        except HubSettingsError as exc:
            message = scrub(exc.message)
            decision = rules.finalize_failed(
                message, attempt, meta.get("annotations") or {}, generation_of(body)
            )
            return Outcome("delete-failed", error=message), decision
        removed = [c.key for c in result.plan.by_action(Action.DELETE)]
        return Outcome("deleted", apply=result), rules.finalize_done(removed, len(result.notifications))

"""The reconcile service: one HubSettings object in, status and events out. kopf handlers only call this.

Steps: validate (InvalidSpec -> Stalled, nothing written) -> suspend? -> DSN from the Secret -> one store
apply -> conditions and status fields -> events on transitions. Status is patched only when a field this
service owns changed, so a periodic resync of an unchanged object writes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hubsettings_operator import conditions as cond
from hubsettings_operator.conditions import Condition, CondType, Desired, Reason
from hubsettings_operator.drift import convergence
from hubsettings_operator.errors import HubSettingsError, SecretNotFound
from hubsettings_operator.redact import fingerprint, scrub
from hubsettings_operator.runtime import metrics
from hubsettings_operator.spec.models import ConflictItem, DatabaseSpec, HubSettingsSpec
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.layout import desired_rows
from hubsettings_operator.table.plan import OWNER_PREFIX, Action, owner_marker, settings_hash
from hubsettings_operator.table.store import ApplyResult, PoolRegistry, SettingsStore, Target, summarize

log = logging.getLogger(__name__)

# Annotation that lets the finalizer go when the database is gone for good (docs/runbook.md).
FORCE_RELEASE_ANNOTATION = "hubsettings.scion.dev/release-finalizer-on-failure"
DELETE_ATTEMPTS_BEFORE_RELEASE = 5
MAX_CONFLICTS_IN_STATUS = 50


class KubeAPI(Protocol):
    async def dsn_from_secret(self, namespace: str, name: str, key: str) -> str: ...
    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """What one reconcile decided. `retry_in` is set for transient failures (capped exponential backoff)."""

    result: str
    status: dict[str, Any] = field(default_factory=dict)  # the fields this service owns, as they should be
    events: list[Event] = field(default_factory=list)
    retry_in: float | None = None
    error: str | None = None
    apply: ApplyResult | None = None
    desired: tuple[list[Desired], list[CondType]] | None = None


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def backoff(attempt: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Capped exponential backoff with jitter: 2, 4, 8, ... up to `cap` seconds."""
    return float(min(cap, base * 2 ** max(0, attempt)) * random.uniform(0.8, 1.0))


def _conditions(status: Mapping[str, Any]) -> list[Condition]:
    out = []
    for raw in status.get("conditions") or []:
        try:
            out.append(Condition.model_validate(raw))
        except ValueError:
            continue
    return out


def _target(spec: HubSettingsSpec) -> Target:
    db = spec.database
    return Target(table=db.table, profile=db.profile, channel=db.channel, create_table=db.createTable)


class Reconciler:
    """Reconciles HubSettings objects; one instance per operator process."""

    def __init__(
        self,
        kube: KubeAPI,
        registry: PoolRegistry | None = None,
        *,
        max_backoff: float = 60.0,
        emit: Callable[[Mapping[str, Any], Event], None] | None = None,
    ) -> None:
        self.kube = kube
        self.registry = registry or PoolRegistry()
        self.max_backoff = max_backoff
        self.emit = emit or (lambda body, event: None)
        self._locks: dict[str, asyncio.Lock] = {}
        # Fingerprint of the DSN each object's last reconcile used (the health probe compares it).
        self._dsn_seen: dict[str, str] = {}

    def dsn_changed(self, body: Mapping[str, Any], dsn: str) -> bool:
        """Whether `dsn` differs from the one the last reconcile of this object used."""
        seen = self._dsn_seen.get(_uid(body))
        return seen is not None and seen != fingerprint(dsn)

    def lock_for(self, body: Mapping[str, Any]) -> asyncio.Lock:
        return self._locks.setdefault(_uid(body), asyncio.Lock())

    async def close(self) -> None:
        await self.registry.close()

    # ---- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any], attempt: int = 0) -> Outcome:
        """Reconcile one object and write its status (only if it changed) and events (only on transitions)."""
        async with self.lock_for(body):
            outcome = await self._decide(body, attempt)
            await self._publish(body, outcome)
            return outcome

    async def _decide(self, body: Mapping[str, Any], attempt: int) -> Outcome:
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        if meta.get("deletionTimestamp"):
            # Being deleted: never write again (a late resync could re-insert rows the finalizer removed).
            return Outcome("deleting")
        spec, errors = validate_spec(body.get("spec"))
        if spec is None:
            message = "; ".join(str(e) for e in errors[:5]) + (
                f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
            )
            return self._with_conditions(body, Outcome("invalid"), cond.stalled(Reason.INVALID_SPEC, message))
        if spec.suspend:
            return self._with_conditions(body, Outcome("suspended"), cond.suspended())
        try:
            ref = spec.database.secretRef
            dsn = await self.kube.dsn_from_secret(namespace, ref.name, ref.key)
            self._dsn_seen[_uid(body)] = fingerprint(dsn)
            store = SettingsStore(dsn, self.registry)

            async def apply(released: frozenset[str] = frozenset()) -> ApplyResult:
                return await store.apply(
                    _target(spec),
                    lambda profile: desired_rows(spec, profile),
                    owner_marker(namespace, name),
                    prune=spec.policy.prune,
                    conflicts=spec.policy.conflicts,
                    released_owners=released,
                )

            result = await apply()
            released = await self._released_owners(result)
            if released:
                # Rows of a HubSettings that no longer exists (deleted with Retain, renamed in Git): take
                # them over instead of reporting KeyOwnedByOther forever.
                result = await apply(released)
                adopted = [c.key for c in result.plan.writes if c.current_by in released]
                adopted_event = Event(
                    "Normal",
                    "AdoptedRows",
                    f"took over {', '.join(adopted)} from deleted HubSettings {', '.join(sorted(released))}",
                )
            else:
                adopted_event = None
        except HubSettingsError as exc:
            message = scrub(exc.message)
            outcome = Outcome(exc.reason.value, error=message)
            outcome.retry_in = backoff(attempt, cap=self.max_backoff)
            if isinstance(exc, SecretNotFound) or exc.transient:
                return self._with_conditions(body, outcome, cond.transient_failure(exc.reason, message))
            return self._with_conditions(body, outcome, cond.stalled(exc.reason, message))
        outcome = self._applied(body, spec, result)
        if adopted_event is not None:
            outcome.events.insert(0, adopted_event)
        return outcome

    async def _released_owners(self, result: ApplyResult) -> frozenset[str]:
        """Owner markers of rows owned by another HubSettings that no longer exists. A HubSettings the
        operator may not read (another namespace, namespaced install) counts as existing."""
        released: set[str] = set()
        for marker in {c.current_by for c in result.plan.owned_by_other if c.current_by}:
            ns, _, other = marker.removeprefix(OWNER_PREFIX).partition("/")
            try:
                if await self.kube.get_hubsettings(ns, other) is None:
                    released.add(marker)
            except Exception:  # forbidden or unreachable: assume it exists
                log.debug("cannot tell whether %s exists", marker, exc_info=True)
        return frozenset(released)

    def _applied(self, body: Mapping[str, Any], spec: HubSettingsSpec, result: ApplyResult) -> Outcome:
        plan = result.plan
        status = body.get("status") or {}
        owned = result.owned_keys
        owned_rows = {k: result.desired[k] for k in owned if k in result.desired}
        changes = plan.value_changes
        outcome = Outcome("applied" if plan.writes else "noop", apply=result)
        outcome.status = {
            "profile": result.profile.value,
            "settingsHash": settings_hash(owned_rows),
            "appliedKeys": len(owned),
            "lastAppliedTime": now_rfc3339() if plan.writes else status.get("lastAppliedTime"),
            "conflicts": [
                ConflictItem(
                    key=c.key,
                    updatedBy=c.current_by,
                    updatedAt=c.current_at.isoformat() if c.current_at else None,
                    action=(
                        "ownedByOther"
                        if c.action is Action.OWNED_BY_OTHER
                        else ("overwritten" if c.action is Action.UPDATE else "left")
                    ),
                ).model_dump(exclude_none=True)
                for c in [*plan.owned_by_other, *plan.conflicts][:MAX_CONFLICTS_IN_STATUS]
            ],
        }
        total = len(result.desired)
        detail = f"{len(owned)} of {total} rows owned ({result.profile.value} profile)"
        if plan.owned_by_other:
            keys = ", ".join(c.key for c in plan.owned_by_other)
            owners = ", ".join(sorted({str(c.current_by) for c in plan.owned_by_other}))
            message = (
                f"{keys} owned by {owners}: not written; remove them from one of the HubSettings. {detail}"
            )
            desired = cond.stalled(Reason.KEY_OWNED_BY_OTHER, message)
        elif plan.by_action(Action.CONFLICT):
            keys = ", ".join(c.key for c in plan.by_action(Action.CONFLICT))
            message = f"{keys} edited out of band and left as found (policy Report). {detail}"
            desired = (
                [
                    Desired(CondType.READY, True, Reason.CONFLICTS_REPORTED, message),
                    Desired(CondType.SYNCED, False, Reason.CONFLICTS_REPORTED, message),
                ],
                [CondType.RECONCILING, CondType.STALLED],
            )
        else:
            # Stable text (what changed goes to the Applied event), so a resync rewrites nothing.
            desired = cond.success(detail, Reason.APPLIED)
        if changes:
            outcome.events.append(
                Event("Normal", "Applied", f"{summarize(changes)}; {len(result.notifications)} NOTIFY sent")
            )
        overwritten = [c.key for c in plan.conflicts if c.action is Action.UPDATE]
        if overwritten:
            outcome.events.append(
                Event(
                    "Warning",
                    "ConflictOverwritten",
                    f"out-of-band edits overwritten (policy Enforce): {', '.join(overwritten)}",
                )
            )
        return self._with_conditions(body, outcome, desired)

    def _with_conditions(
        self, body: Mapping[str, Any], outcome: Outcome, desired: tuple[list[Desired], list[CondType]]
    ) -> Outcome:
        status = body.get("status") or {}
        generation = body.get("metadata", {}).get("generation")
        if not (body.get("spec") or {}).get("bootstrap"):
            # No drift check any more: drop a report and a Drifted condition left from an earlier spec.
            desired = (desired[0], [*desired[1], CondType.DRIFTED])
            if status.get("drift") is not None:
                outcome.status["drift"] = None
        if not (body.get("spec") or {}).get("convergence"):
            desired = (desired[0], [*desired[1], CondType.CONVERGED])
            if status.get("convergence") is not None:
                outcome.status["convergence"] = None
        desired = convergence.gate_ready(desired, body, changed=outcome.result == "applied")
        wanted, _remove = desired
        existing = _conditions(status)
        outcome.desired = desired
        outcome.status["conditions"] = merged_conditions(status, desired, generation)
        outcome.status["observedGeneration"] = generation
        # Events on transitions only: a Stalled/failed condition whose reason or message is new.
        before = {c.type: (c.status, c.reason, c.message) for c in existing}
        for d in wanted:
            if d.type not in (CondType.STALLED, CondType.RECONCILING, CondType.SYNCED):
                continue
            now = ("True" if d.status else "False", d.reason.value, d.message[:1024])
            failing = (d.type is not CondType.SYNCED and d.status) or (
                d.type is CondType.SYNCED and not d.status
            )
            if failing and before.get(d.type.value) != now and d.reason is not Reason.SUSPENDED:
                outcome.events.append(Event("Warning", d.reason.value, d.message))
                break
        return outcome

    async def _publish(self, body: Mapping[str, Any], outcome: Outcome) -> None:
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        metrics.RECONCILES.labels(namespace, name, outcome.result).inc()
        if outcome.apply is not None:
            result = outcome.apply
            metrics.APPLY_SECONDS.labels(namespace, name).observe(result.duration_s)
            for change in result.plan.writes:
                metrics.ROWS_CHANGED.labels(namespace, name, change.action.value).inc()
            if result.notifications:
                metrics.NOTIFICATIONS.labels(namespace, name).inc(len(result.notifications))
            metrics.LAST_APPLY.labels(namespace, name).set(time.time())
            metrics.CONFLICTS.labels(namespace, name).set(len(outcome.status.get("conflicts", [])))
        await self.write_status(body, outcome.status, outcome.desired)
        for event in outcome.events:
            self.emit(body, event)

    async def write_status(
        self,
        body: Mapping[str, Any],
        wanted: dict[str, Any],
        desired: tuple[list[Desired], list[CondType]] | None,
        *,
        generation: int | None = None,
    ) -> bool:
        """Patch the fields of `wanted` that changed. When something did, re-read the object first and
        re-merge the conditions over its latest status, so the drift timer and the reconciler (which own
        different conditions) never undo each other's writes. -> whether a patch was sent."""
        if not changed_fields(body.get("status") or {}, wanted):
            return False
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        fresh = await self.kube.get_hubsettings(namespace, name)
        if fresh is None:
            return False
        fresh_status = fresh.get("status") or {}
        if desired is not None:
            wanted = {
                **wanted,
                "conditions": merged_conditions(
                    fresh_status,
                    desired,
                    generation if generation is not None else wanted.get("observedGeneration"),
                ),
            }
        patch = changed_fields(fresh_status, wanted)
        if patch:
            await self.kube.patch_status(namespace, name, patch)
        return bool(patch)

    # ---- deletion -----------------------------------------------------------------------------------

    async def finalize(self, body: Mapping[str, Any], attempt: int) -> Outcome:
        """Deletion policy Delete: remove this object's rows and notify. Bounded when the DB is gone."""
        async with self.lock_for(body):  # never interleaved with a reconcile of the same object
            return await self._finalize(body, attempt)

    async def _finalize(self, body: Mapping[str, Any], attempt: int) -> Outcome:
        meta = body.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        # Only spec.database is needed to delete by owner marker: a spec that became invalid elsewhere must
        # not leave its rows behind.
        try:
            database = DatabaseSpec.model_validate((body.get("spec") or {}).get("database"))
        except ValueError:
            outcome = Outcome("deleted-invalid")
            outcome.events.append(
                Event(
                    "Warning",
                    "RowsLeft",
                    "spec.database is invalid, so this object's rows could not be located and were left in the "
                    f"table (owner marker {owner_marker(namespace, name)})",
                )
            )
            return outcome
        try:
            ref = database.secretRef
            dsn = await self.kube.dsn_from_secret(namespace, ref.name, ref.key)
            store = SettingsStore(dsn, self.registry)
            target = Target(
                table=database.table,
                profile=database.profile,
                channel=database.channel,
                create_table=False,
            )
            result = await store.delete_owned(target, owner_marker(namespace, name))
        except HubSettingsError as exc:
            message = scrub(exc.message)
            outcome = Outcome("delete-failed", error=message, retry_in=backoff(attempt, cap=self.max_backoff))
            annotations = meta.get("annotations") or {}
            allowed = str(annotations.get(FORCE_RELEASE_ANNOTATION, "")).lower() == "true"
            if attempt + 1 >= DELETE_ATTEMPTS_BEFORE_RELEASE and allowed:
                outcome.retry_in = None
                outcome.events.append(
                    Event(
                        "Warning",
                        "FinalizerReleased",
                        f"rows could not be deleted after {attempt + 1} attempts ({message}); finalizer released "
                        f"because {FORCE_RELEASE_ANNOTATION}=true: the rows may remain in the table",
                    )
                )
            else:
                hint = (
                    f"; set annotation {FORCE_RELEASE_ANNOTATION}=true to let the deletion finish without "
                    "removing the rows"
                    if attempt + 1 >= DELETE_ATTEMPTS_BEFORE_RELEASE
                    else ""
                )
                outcome.events.append(
                    Event("Warning", "DeleteFailed", f"attempt {attempt + 1}: {message}{hint}")
                )
            return outcome
        outcome = Outcome("deleted", apply=result)
        removed = [c.key for c in result.plan.by_action(Action.DELETE)]
        outcome.events.append(
            Event(
                "Normal",
                "RowsDeleted",
                f"deleted {len(removed)} row(s) ({', '.join(removed) or 'none'}); "
                f"{len(result.notifications)} NOTIFY sent",
            )
        )
        return outcome


def merged_conditions(
    status: Mapping[str, Any], desired: tuple[list[Desired], list[CondType]], generation: int | None
) -> list[dict[str, Any]]:
    wanted, remove = desired
    merged = cond.merge(_conditions(status), wanted, generation=generation, now=now_rfc3339(), remove=remove)
    return [c.model_dump(exclude_none=True) for c in merged]


def changed_fields(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `wanted` that differs from `current` (a merge patch of only what changed)."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def _uid(body: Mapping[str, Any]) -> str:
    return str(body.get("metadata", {}).get("uid") or _ident(body))


def _ident(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"

"""The reconcile's kstatus rules as pure functions: outcome + spec + old status -> status, conditions, events.

Nothing here does I/O or reads the clock (callers pass `now`), so each rule is unit-tested directly
(tests/unit/test_status_rules.py). The rules:

- success: Ready=True, Synced=True; Reconciling and Stalled removed (abnormal-true conditions are present
  only while true, as kstatus recommends);
- first sight of an object (no condition yet): Reconciling=True, Ready=False, reason Progressing, written
  before any database work, so kstatus never reads a new object as Current before it was applied;
- transient failure (database down, Secret missing, permission denied): Ready=False, Synced=False,
  Reconciling=True with the reason; past the progress deadline (counted from when Ready turned False) the
  same reason moves to Stalled=True (kstatus Failed, Argo CD Degraded) and Reconciling goes, until the cause
  goes away;
- spec the operator cannot apply (InvalidSpec, KeyOwnedByOther): Ready=False, Stalled=True;
- suspended: Ready=False, Synced=False, reason Suspended, neither Reconciling nor Stalled;
- deletion blocked (finalizer waiting for the database): Ready=False and Reconciling=True, reason Deleting;
- `observedGeneration` (top level and per condition) is the generation of the body whose spec was acted on,
  never a newer one; a write whose generation is older than the one already in status is dropped.

`lastTransitionTime` changes only when a condition's status changes, so an unchanged outcome produces an
identical list and the status patch is skipped.

Over 400 lines on purpose: every rule of the reconcile in one place (with the merging every check's write goes
through), so the conditions Flux and Argo CD read are decided here; the drift and convergence verdicts and the
Ready gate are its siblings (status/drift.py, status/convergence.py, status/ready.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hubsettings_operator.conditions import (
    Condition,
    CondStatus,
    CondType,
    Desired,
    EventReason,
    EventType,
    Reason,
)
from hubsettings_operator.spec.models import ConflictItem
from hubsettings_operator.status import ready
from hubsettings_operator.table.plan import Action, Change
from hubsettings_operator.table.store import summarize

if TYPE_CHECKING:
    from hubsettings_operator.table.store import ApplyResult

MAX_MESSAGE = 1024
MAX_CONFLICTS_IN_STATUS = 50
FORCE_RELEASE_ANNOTATION = "hubsettings.scion.dev/release-finalizer-on-failure"
DELETE_ATTEMPTS_BEFORE_RELEASE = 5


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: EventReason | Reason
    message: str


@dataclass(frozen=True)
class Verdict:
    """What the conditions should say: these set, those removed, the others (e.g. Drifted) kept."""

    set: tuple[Desired, ...]
    remove: tuple[CondType, ...] = ()

    def get(self, ctype: CondType) -> Desired | None:
        return next((d for d in self.set if d.type is ctype), None)

    def also_remove(self, *types: CondType) -> Verdict:
        return Verdict(self.set, (*self.remove, *types))


# ---- verdicts -------------------------------------------------------------------------------------------


def success(message: str, reason: Reason = Reason.APPLIED) -> Verdict:
    return Verdict(
        (
            Desired(CondType.READY, True, Reason.SYNCED, message),
            Desired(CondType.SYNCED, True, reason, message),
        ),
        (CondType.RECONCILING, CondType.STALLED),
    )


def conflicts_reported(message: str) -> Verdict:
    return Verdict(
        (
            Desired(CondType.READY, True, Reason.CONFLICTS_REPORTED, message),
            Desired(CondType.SYNCED, False, Reason.CONFLICTS_REPORTED, message),
        ),
        (CondType.RECONCILING, CondType.STALLED),
    )


def progressing(message: str = "reconciling: the operator is applying this generation") -> Verdict:
    return Verdict(
        (
            Desired(CondType.READY, False, Reason.PROGRESSING, message),
            Desired(CondType.RECONCILING, True, Reason.PROGRESSING, message),
        ),
        (CondType.STALLED,),
    )


def transient_failure(reason: Reason, message: str) -> Verdict:
    return Verdict(
        (
            Desired(CondType.READY, False, reason, message),
            Desired(CondType.SYNCED, False, reason, message),
            Desired(CondType.RECONCILING, True, reason, message),
        ),
        (CondType.STALLED,),
    )


def stalled(reason: Reason, message: str) -> Verdict:
    return Verdict(
        (
            Desired(CondType.READY, False, reason, message),
            Desired(CondType.SYNCED, False, reason, message),
            Desired(CondType.STALLED, True, reason, message),
        ),
        (CondType.RECONCILING,),
    )


def suspended() -> Verdict:
    msg = "spec.suspend is true: nothing is written; drift is still reported"
    return Verdict(
        (
            Desired(CondType.READY, False, Reason.SUSPENDED, msg),
            Desired(CondType.SYNCED, False, Reason.SUSPENDED, msg),
        ),
        (CondType.RECONCILING, CondType.STALLED),
    )


def deleting(message: str) -> Verdict:
    return Verdict(
        (
            Desired(CondType.READY, False, Reason.DELETING, message),
            Desired(CondType.RECONCILING, True, Reason.DELETING, message),
        ),
        (CondType.STALLED,),
    )


# ---- progress deadline ----------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def not_ready_since(status: Mapping[str, Any]) -> datetime | None:
    """When Ready last turned False (None when Ready is True or absent): the start of a failing period."""
    ready = get(conditions_of(status), CondType.READY)
    if ready is None or ready.status == CondStatus.TRUE:
        return None
    return parse_time(ready.lastTransitionTime)


def failure(
    reason: Reason,
    message: str,
    *,
    transient: bool,
    old_status: Mapping[str, Any],
    now: datetime,
    deadline_seconds: float,
) -> Verdict:
    """A failure's verdict: transient ones retry (Reconciling) until the progress deadline, then Stalled."""
    if not transient:
        return stalled(reason, message)
    since = not_ready_since(old_status)
    if since is not None and (now - since).total_seconds() > deadline_seconds:
        return stalled(
            reason,
            f"{message}; no progress for over {deadline_seconds:g}s (progress deadline): still retrying, "
            "recovers by itself when the cause is fixed",
        )
    return transient_failure(reason, message)


# ---- merging --------------------------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def conditions_of(status: Mapping[str, Any]) -> list[Condition]:
    out = []
    for raw in status.get("conditions") or []:
        try:
            out.append(Condition.model_validate(raw))
        except ValueError:
            continue
    return out


def status_text(value: bool | None) -> str:
    """A Desired status as the API writes it (None is "Unknown")."""
    if value is None:
        return CondStatus.UNKNOWN.value
    return CondStatus.TRUE.value if value else CondStatus.FALSE.value


def get(conditions: Sequence[Condition], ctype: CondType) -> Condition | None:
    return next((c for c in conditions if c.type == ctype.value), None)


def merge(
    existing: Sequence[Condition],
    desired: Iterable[Desired],
    *,
    generation: int | None,
    now: str,
    remove: Iterable[CondType] = (),
) -> list[Condition]:
    """New condition list: `desired` set, `remove` dropped, others kept (e.g. Drifted, owned by the drift timer).

    Message length is capped so status never grows unbounded."""
    by_type = {c.type: c for c in existing}
    out: dict[str, Condition] = dict(by_type)
    for t in remove:
        out.pop(t.value, None)
    for d in desired:
        old = by_type.get(d.type.value)
        status = status_text(d.status)
        transition = old.lastTransitionTime if old is not None and old.status == status else now
        out[d.type.value] = Condition(
            type=d.type.value,
            status=status,
            reason=d.reason.value,
            message=d.message[:MAX_MESSAGE],
            lastTransitionTime=transition,
            observedGeneration=generation,
        )
    order = [t.value for t in CondType]
    return sorted(out.values(), key=lambda c: (order.index(c.type) if c.type in order else 99, c.type))


def merged_conditions(
    status: Mapping[str, Any], verdict: Verdict, generation: int | None, now: str
) -> list[dict[str, Any]]:
    merged = merge(conditions_of(status), verdict.set, generation=generation, now=now, remove=verdict.remove)
    return [c.model_dump(exclude_none=True) for c in merged]


def changed_fields(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `wanted` that differs from `current` (a merge patch of only what changed)."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


@dataclass
class StatusUpdate:
    """One write to status: owned top-level fields, a verdict on the conditions, and the generation acted on.

    `generation` None: conditions keep the generation already observed and the top-level
    `observedGeneration` is left alone (used by the health probe, which applies no spec)."""

    fields: dict[str, Any] = field(default_factory=dict)
    verdict: Verdict | None = None
    generation: int | None = None
    observe: bool = True  # write the top-level observedGeneration


def render(current: Mapping[str, Any], update: StatusUpdate, now: str) -> dict[str, Any] | None:
    """The merge patch that makes `current` status say `update`; None when a newer generation is already
    reported there (a slow, older reconcile never overwrites a newer one), {} when nothing changes."""
    observed = current.get("observedGeneration")
    generation = update.generation
    if generation is None:
        generation = observed if isinstance(observed, int) else None
    elif isinstance(observed, int) and generation < observed:
        return None
    wanted = dict(update.fields)
    if update.verdict is not None:
        wanted["conditions"] = merged_conditions(current, update.verdict, generation, now)
    if update.observe and update.generation is not None:
        wanted["observedGeneration"] = update.generation
    return changed_fields(current, wanted)


# ---- events ---------------------------------------------------------------------------------------------


def transition_events(old_status: Mapping[str, Any], verdict: Verdict) -> list[Event]:
    """A Warning when a failure condition appears or its reason/message changes; none per tick."""
    before = {c.type: (c.status, c.reason, c.message) for c in conditions_of(old_status)}
    for d in verdict.set:
        if d.type not in (CondType.STALLED, CondType.RECONCILING, CondType.SYNCED):
            continue
        if d.reason in (Reason.SUSPENDED, Reason.PROGRESSING, Reason.DELETING):
            continue
        now = (
            status_text(d.status),
            d.reason.value,
            d.message[:MAX_MESSAGE],
        )
        failing = (d.type is not CondType.SYNCED and d.status) or (d.type is CondType.SYNCED and not d.status)
        if failing and before.get(d.type.value) != now:
            return [Event(EventType.WARNING, d.reason, d.message)]
    return []


def gate_on_convergence(body: Mapping[str, Any], update: StatusUpdate, *, changed: bool) -> None:
    """`spec.convergence.requiredForReady`: Ready stays False until every replica has loaded (the one gate:
    status/ready.py)."""
    if update.verdict is None:
        return
    wanted, remove = ready.gate_reconcile(
        (list(update.verdict.set), list(update.verdict.remove)), body, changed=changed
    )
    update.verdict = Verdict(tuple(wanted), tuple(remove))


# ---- a successful apply -------------------------------------------------------------------------------


def _conflict_action(change: Change) -> str:
    if change.action is Action.OWNED_BY_OTHER:
        return "ownedByOther"
    return "overwritten" if change.action is Action.UPDATE else "left"


def applied(
    result: ApplyResult, old_status: Mapping[str, Any], generation: int | None, now: str
) -> tuple[StatusUpdate, list[Event]]:
    """Status and events after an apply that ran (it may still have left rows owned by another object)."""
    plan = result.plan
    owned = result.owned_keys
    fields: dict[str, Any] = {
        "profile": result.profile.value,
        "settingsHash": result.owned_settings_hash(),
        "appliedKeys": len(owned),
        "lastAppliedTime": now if plan.writes else old_status.get("lastAppliedTime"),
        "conflicts": [
            ConflictItem(
                key=c.key,
                updatedBy=c.current_by,
                updatedAt=c.current_at.isoformat() if c.current_at else None,
                action=_conflict_action(c),
            ).model_dump(exclude_none=True)
            for c in [*plan.owned_by_other, *plan.conflicts][:MAX_CONFLICTS_IN_STATUS]
        ],
    }
    detail = f"{len(owned)} of {len(result.desired)} rows owned ({result.profile.value} profile)"
    if plan.owned_by_other:
        keys = ", ".join(c.key for c in plan.owned_by_other)
        owners = ", ".join(sorted({str(c.current_by) for c in plan.owned_by_other}))
        verdict = stalled(
            Reason.KEY_OWNED_BY_OTHER,
            f"{keys} owned by {owners}: not written; remove them from one of the HubSettings. {detail}",
        )
    elif plan.by_action(Action.CONFLICT):
        keys = ", ".join(c.key for c in plan.by_action(Action.CONFLICT))
        verdict = conflicts_reported(f"{keys} edited out of band and left as found (policy Report). {detail}")
    else:
        # Stable text (what changed goes to the Applied event), so a resync rewrites nothing.
        verdict = success(detail, Reason.APPLIED)
    events: list[Event] = []
    if plan.value_changes:
        events.append(
            Event(
                EventType.NORMAL,
                EventReason.APPLIED,
                f"{summarize(plan.value_changes)}; {len(result.notifications)} NOTIFY sent",
            )
        )
    already_left = {
        c.get("key")
        for c in old_status.get("conflicts") or []
        if isinstance(c, Mapping) and c.get("action") == "left"
    }
    # Keys only, never values: a row edited by hand may hold anything.
    modified = [c for c in plan.conflicts if not (c.action is Action.CONFLICT and c.key in already_left)]
    if modified:
        events.append(
            Event(
                EventType.WARNING,
                EventReason.MODIFIED_OUT_OF_BAND,
                "modified out of band: "
                + ", ".join(
                    f"{c.key} (by {c.current_by or 'unknown'}; "
                    f"{'overwritten' if c.action is Action.UPDATE else 'left as found'})"
                    for c in modified
                ),
            )
        )
    overwritten = [c.key for c in plan.conflicts if c.action is Action.UPDATE]
    if overwritten:
        events.append(
            Event(
                EventType.WARNING,
                EventReason.CONFLICT_OVERWRITTEN,
                f"out-of-band edits overwritten (policy Enforce): {', '.join(overwritten)}",
            )
        )
    events.extend(transition_events(old_status, verdict))
    return StatusUpdate(fields=fields, verdict=verdict, generation=generation), events


# ---- health probe ---------------------------------------------------------------------------------------


def should_probe(status: Mapping[str, Any]) -> bool:
    """Whether the health timer probes this object: not while only a spec change can help, nor suspended."""
    conds = conditions_of(status)
    stalled_cond = get(conds, CondType.STALLED)
    ready = get(conds, CondType.READY)
    if (
        stalled_cond is not None
        and stalled_cond.status == CondStatus.TRUE
        and stalled_cond.reason == Reason.INVALID_SPEC
    ):
        return False  # only a spec change helps; the update handler runs then
    return not (ready is not None and ready.reason == Reason.SUSPENDED.value)


def is_ready(status: Mapping[str, Any]) -> bool:
    ready = get(conditions_of(status), CondType.READY)
    return ready is not None and ready.status == CondStatus.TRUE


# ---- deletion -------------------------------------------------------------------------------------------


@dataclass
class FinalizeDecision:
    """What a failed or finished finalizer says: events, whether to retry, and the status to show."""

    events: list[Event]
    retry: bool
    update: StatusUpdate | None = None


def finalize_failed(
    message: str, attempt: int, annotations: Mapping[str, Any], generation: int | None
) -> FinalizeDecision:
    """Rows of a `deletion: Delete` object could not be deleted: retry and say why deletion is blocked, or
    release the finalizer after DELETE_ATTEMPTS_BEFORE_RELEASE attempts when the annotation allows it."""
    allowed = str(annotations.get(FORCE_RELEASE_ANNOTATION, "")).lower() == "true"
    if attempt + 1 >= DELETE_ATTEMPTS_BEFORE_RELEASE and allowed:
        return FinalizeDecision(
            [
                Event(
                    EventType.WARNING,
                    EventReason.FINALIZER_RELEASED,
                    f"rows could not be deleted after {attempt + 1} attempts ({message}); finalizer released "
                    f"because {FORCE_RELEASE_ANNOTATION}=true: the rows may remain in the table",
                )
            ],
            retry=False,
        )
    hint = (
        f"; set annotation {FORCE_RELEASE_ANNOTATION}=true to let the deletion finish without removing the rows"
        if attempt + 1 >= DELETE_ATTEMPTS_BEFORE_RELEASE
        else ""
    )
    blocked = (
        f"deletion blocked: this object's rows (deletion policy Delete) cannot be removed yet: {message}; "
        f"retrying{hint}"
    )
    return FinalizeDecision(
        [Event(EventType.WARNING, EventReason.DELETE_FAILED, f"attempt {attempt + 1}: {message}{hint}")],
        retry=True,
        update=StatusUpdate(verdict=deleting(blocked), generation=generation),
    )


def finalize_invalid(owner: str) -> FinalizeDecision:
    return FinalizeDecision(
        [
            Event(
                EventType.WARNING,
                EventReason.ROWS_LEFT,
                "spec.database is invalid, so this object's rows could not be located and were left in the "
                f"table (owner marker {owner})",
            )
        ],
        retry=False,
    )


def finalize_done(removed: Sequence[str], notifications: int) -> FinalizeDecision:
    return FinalizeDecision(
        [
            Event(
                EventType.NORMAL,
                EventReason.ROWS_DELETED,
                f"deleted {len(removed)} row(s) ({', '.join(removed) or 'none'}); {notifications} NOTIFY sent",
            )
        ],
        retry=False,
    )

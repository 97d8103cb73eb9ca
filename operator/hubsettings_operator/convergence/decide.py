"""Convergence of the Hub replicas: what each Hub pod has loaded, in, `status.convergence` and the Converged
condition out. Pure: the I/O (table, pg_stat_activity, each pod's admin endpoint) is `runtime/convergence_check.py`.

Inputs per pod: whether a `LISTEN` connection from its IP is open (None: the database role cannot see other
sessions) and the revision of each section it has loaded (None: unknown, with the reason). The written side is
the revision of each section this HubSettings owns in the table.

Condition rules (first that applies):
- the operator's write for the current generation is not done (`pending`): Unknown / Unknown;
- no Hub pods: Unknown / Unknown;
- the token was rejected (HTTP 401): Unknown / TokenRejected; its principal lacks hub.config.read (HTTP 403):
  Unknown / TokenForbidden (listener presence is still reported);
- a replica does not know a written section (its server-config lists every section of its own registry and
  never another): False / SectionsUnknownToReplica, naming the replica, its version and what to do; such a
  section is not counted as behind (the replica will never load it);
- a pod is behind and has no listener: False / ListenerMissing (it only catches up at its poll backstop);
- a pod is behind: False / ReplicasBehind;
- a pod's loaded revisions are unknown: False / ListenerMissing if a pod has no listener, else Unknown / Unknown;
- otherwise True / AllReplicasLoaded (a missing listener is named in the message: the next change would be late).

A pod behind for longer than `timeoutSeconds` is reported once per (pod, written revisions) as `overdue`, so the
caller posts one Warning Event, not one per check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hubsettings_operator.conditions import CondType, Desired, Reason
from hubsettings_operator.spec.models import ConvergenceStatus, ReplicaConvergence
from hubsettings_operator.spec.versions import effective_hub_version

# Errors a probe reports that are the token's fault, not the pod's (one rejection stops the round).
TOKEN_REJECTED = "token rejected"  # HTTP 401: not a valid token for this Hub
TOKEN_FORBIDDEN = "token forbidden"  # HTTP 403: a valid principal without hub.config.read


@dataclass(frozen=True)
class PodProbe:
    """What the operator found out about one Hub pod in one check."""

    name: str
    uid: str
    listening: bool | None
    loaded: Mapping[str, int] | None  # section -> revision; None when unknown (see error)
    error: str | None = None
    checked_at: str | None = None
    known: frozenset[str] | None = None  # sections its server-config lists (its registry); None: not known
    version: str | None = None  # its scion_version


def token_problem(error: str | None) -> Reason | None:
    """TokenRejected / TokenForbidden when a probe's error is the token's fault, else None."""
    if (error or "").startswith(TOKEN_REJECTED):
        return Reason.TOKEN_REJECTED
    if (error or "").startswith(TOKEN_FORBIDDEN):
        return Reason.TOKEN_FORBIDDEN
    return None


def unknown_sections(written: Mapping[str, int], pod: PodProbe) -> list[str]:
    """Written sections the replica's registry does not have (it never lists a section it does not know)."""
    return [] if pod.known is None else sorted(s for s in written if s not in pod.known)


def _unknown_message(written: Mapping[str, int], pods: Sequence[PodProbe]) -> str:
    parts = [
        f"{p.name} (scion {p.version or 'version unknown'}) does not know {', '.join(unknown_sections(written, p))}"
        for p in pods[:5]
    ]
    sections = sorted({s for p in pods for s in unknown_sections(written, p)})
    return (
        f"{'; '.join(parts)}: that replica never loads {'it' if len(sections) == 1 else 'them'}. Upgrade the "
        f"replica to a Hub version that knows {', '.join(sections)}, or drop "
        f"{'it' if len(sections) == 1 else 'them'} from spec.settings for now"
    )


@dataclass
class Tracking:
    """What one HubSettings' checks remember between rounds (kept by the caller, one per object)."""

    behind_since: dict[str, float] = field(default_factory=dict)  # pod uid -> first seen behind (monotonic)
    warned: set[str] = field(default_factory=set)  # "uid@revisions" already announced by an Event


@dataclass(frozen=True)
class Decision:
    status: ConvergenceStatus
    condition: Desired
    converged: bool
    behind: list[str]  # pod names
    overdue: list[str]  # pod names behind past the timeout, not announced before
    token_rejected: bool
    pending: bool = False  # the written side was not settled: check again soon


def behind_sections(written: Mapping[str, int], loaded: Mapping[str, int]) -> list[str]:
    """Written sections whose revision the replica has not loaded yet (a newer one counts as loaded)."""
    return sorted(s for s, rev in written.items() if loaded.get(s, 0) < rev)


def lag_sections(written: Mapping[str, int], pod: PodProbe) -> list[str]:
    """The sections `pod` is behind on, among those it knows."""
    unknown = set(unknown_sections(written, pod))
    return behind_sections({s: r for s, r in written.items() if s not in unknown}, pod.loaded or {})


def _names(pods: Sequence[PodProbe], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in pods[:limit])
    return shown + (f" and {len(pods) - limit} more" if len(pods) > limit else "")


def decide(
    written: Mapping[str, int],
    pods: Sequence[PodProbe],
    tracking: Tracking,
    *,
    now: float,
    timeout_s: float,
    channel: str,
    pending: str | None = None,
) -> Decision:
    """The status block and the Converged condition for one check; updates `tracking` in place.

    `pending`: why the written side is not settled yet (e.g. the current generation is not synced): then
    nothing is claimed about convergence, whatever the replicas report."""
    pods = sorted(pods, key=lambda p: p.name)
    key = ",".join(f"{s}@{r}" for s, r in sorted(written.items()))
    replicas: list[ReplicaConvergence] = []
    behind: list[PodProbe] = []
    unknown: list[PodProbe] = []
    overdue: list[str] = []
    seen: set[str] = set()
    for pod in pods:
        seen.add(pod.uid)
        unknown_here = unknown_sections(written, pod)
        known_written = {s: r for s, r in written.items() if s not in unknown_here}
        lag = behind_sections(known_written, pod.loaded) if pod.loaded is not None else []
        replicas.append(
            ReplicaConvergence(
                name=pod.name,
                listening=pod.listening,
                loaded={s: int(pod.loaded[s]) for s in sorted(pod.loaded) if s in written}
                if pod.loaded is not None
                else {},
                behind=lag,
                unknownSections=unknown_here,
                version=pod.version,
                error=pod.error,
                checkedAt=pod.checked_at,
            )
        )
        if pod.loaded is None:
            unknown.append(pod)
            continue
        if not lag:
            tracking.behind_since.pop(pod.uid, None)
            continue
        behind.append(pod)
        since = tracking.behind_since.setdefault(pod.uid, now)
        if now - since >= timeout_s and f"{pod.uid}@{key}" not in tracking.warned:
            tracking.warned.add(f"{pod.uid}@{key}")
            overdue.append(pod.name)
    # Forget pods that are gone (a restarted pod has a new uid and starts afresh).
    for uid in set(tracking.behind_since) - seen:
        del tracking.behind_since[uid]
    tracking.warned = {w for w in tracking.warned if w.partition("@")[0] in seen}

    # A replica that will never load a written section has not loaded everything either.
    incomplete = {p.uid for p in behind + unknown} | {p.uid for p in pods if unknown_sections(written, p)}
    loaded_all = len(pods) - len(incomplete)
    status = ConvergenceStatus(
        written=dict(sorted(written.items())),
        replicas=replicas,
        oldestVersion=effective_hub_version([p.version for p in pods]).version,
    )
    status.summary = f"{loaded_all}/{len(pods)}"
    missing = [p for p in pods if p.listening is False]
    rejected = any(token_problem(p.error) for p in unknown)
    strangers = [p for p in pods if unknown_sections(written, p)]
    listen_note = (
        f"; no LISTEN {channel} connection from {_names(missing)}: a change reaches it only at its poll (60 s)"
        if missing
        else ""
    )
    if pending is not None:
        cond = Desired(CondType.CONVERGED, None, Reason.UNKNOWN, f"{pending}{listen_note}")
    elif not pods:
        cond = Desired(
            CondType.CONVERGED,
            None,
            Reason.UNKNOWN,
            "no running Hub pods with a pod IP match the pod selector",
        )
    elif rejected:
        first = next(p for p in unknown if token_problem(p.error))
        reason = token_problem(first.error) or Reason.TOKEN_REJECTED
        cond = Desired(CondType.CONVERGED, None, reason, f"{first.error}{listen_note}")
    elif strangers:
        # Before "behind": waiting cannot fix it, the user must act.
        msg = f"{status.summary} replicas loaded; {_unknown_message(written, strangers)}{listen_note}"
        cond = Desired(CondType.CONVERGED, False, Reason.SECTIONS_UNKNOWN_TO_REPLICA, msg)
    elif behind:
        lagging = [p for p in behind if p.listening is False]
        detail = "; ".join(f"{p.name} behind on {', '.join(lag_sections(written, p))}" for p in behind[:5])
        if lagging:
            msg = (
                f"{status.summary} replicas loaded; {detail}; no LISTEN {channel} connection from "
                f"{_names(lagging)}: it catches up only at its poll (60 s)"
            )
            cond = Desired(CondType.CONVERGED, False, Reason.LISTENER_MISSING, msg)
        else:
            cond = Desired(
                CondType.CONVERGED,
                False,
                Reason.REPLICAS_BEHIND,
                f"{status.summary} replicas loaded; {detail}",
            )
    elif unknown:
        why = "; ".join(f"{p.name}: {p.error}" for p in unknown[:3])
        msg = f"loaded revisions unknown for {_names(unknown)} ({why}){listen_note}"
        if missing:
            cond = Desired(CondType.CONVERGED, False, Reason.LISTENER_MISSING, msg)
        else:
            cond = Desired(CondType.CONVERGED, None, Reason.UNKNOWN, msg)
    else:
        revs = ", ".join(f"{s}@{r}" for s, r in sorted(written.items())) or "no rows written"
        cond = Desired(
            CondType.CONVERGED,
            True,
            Reason.ALL_REPLICAS_LOADED,
            f"{status.summary} replicas loaded {revs}{listen_note}",
        )
    return Decision(
        status=status,
        condition=cond,
        converged=cond.status is True,
        behind=[p.name for p in behind],
        overdue=overdue,
        token_rejected=rejected,
        pending=pending is not None,
    )

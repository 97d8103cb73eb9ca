"""When the convergence check looks at the replicas again after a commit, when a round's verdict is written,
and how many replicas are asked at once. Pure (no I/O; `gather_bounded` only schedules the caller's coroutines).

After an apply that changed rows, the replicas reload within tens of milliseconds (the Hub refreshes its cache on
the NOTIFY of the commit). A round right after the commit usually finds them done; otherwise the next rounds
follow after 20, 40, 80, ... ms, doubling up to the check's fast interval (1 s), so `Converged` follows the
replicas' own reload by one short wait, and a replica that stays behind costs one round per fast interval, as
before.

Within `CATCH_UP_GRACE_S` of a commit, a verdict that only says "still catching up" (the operator's own status
write not visible yet, or replicas behind with a listener each) is not written: a replica that reloads within
the grace costs one status write (Converged=True on the new revisions), not one per round in between. Every
other verdict (a listener missing, a section unknown to a replica, a rejected token, converged) is written at
once, and a replica still behind after the grace is written then.

Each round asks at most `MAX_IN_FLIGHT` replicas at once, so 20 or 200 replicas are asked in waves, not all at
once by every round of every HubSettings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from hubsettings_operator.conditions import Reason
from hubsettings_operator.convergence.decide import Decision

FIRST_RECHECK_S = 0.02  # the first look again after a round that found the replicas catching up
BACKOFF_FACTOR = 2.0
CATCH_UP_GRACE_S = 1.0  # "still catching up" is written only once this long has passed since the commit
MAX_IN_FLIGHT = 8  # replicas asked at once by one round

T = TypeVar("T")


def recheck_delay(
    polls: int, *, cap: float, first: float = FIRST_RECHECK_S, factor: float = BACKOFF_FACTOR
) -> float:
    """The wait after the `polls`-th round since the commit (0: the round the commit started) that found the
    replicas catching up: `first`, doubling, never above `cap` (the fast interval)."""
    if polls < 0:
        raise ValueError("polls counts rounds since the commit: 0 or more")
    if first >= cap:
        return cap
    # No float overflow for long runs of rounds: past the cap the answer is the cap.
    delay = first
    for _ in range(polls):
        delay *= factor
        if delay >= cap:
            return cap
    return delay


def catching_up(decision: Decision) -> bool:
    """The verdict only says the replicas (or the operator's own status) have not caught up yet: nothing a
    person must act on."""
    if decision.pending:
        return True
    return (
        decision.condition.reason is Reason.REPLICAS_BEHIND
        and not decision.overdue
        and not decision.token_rejected
    )


def hold_back(decision: Decision, since_commit: float | None, *, grace: float = CATCH_UP_GRACE_S) -> bool:
    """Whether this round's verdict is left unwritten: "still catching up" within `grace` seconds of a commit
    (`since_commit`: seconds since the apply that changed rows; None: no recent commit)."""
    return since_commit is not None and 0 <= since_commit < grace and catching_up(decision)


async def gather_bounded(items: Iterable[T], work: Callable[[T], Awaitable[None]], limit: int) -> None:
    """`work(item)` for every item, at most `limit` at a time (the items' order is the start order)."""
    if limit < 1:
        raise ValueError("limit must be 1 or more")
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))

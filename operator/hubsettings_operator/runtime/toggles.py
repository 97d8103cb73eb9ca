"""kopf's readiness toggles with one waiter per awaited state: start-up linear in the number of Hub pods.

Until every indexed object of the initial listing is in its index, kopf holds all handling back: each listed
pod gets a toggle in the `operator_indexed` set, and its worker drops the toggle, then waits for the whole set
(`ToggleSet.wait_for`) on one `asyncio.Condition`. Every drop (and every new toggle) wakes *every* waiting
worker, which re-takes the condition's lock in turn: with 1,000 Hub pods listed at start that is about half a
million wake-ups, most of the 11 s from start to the first Ready (measured with py-spy, docs/performance.md).

`SharedWaitToggleSet.wait_for` keeps kopf's meaning (return once the set has been seen in the state asked
for) but lets one task per state wait on the condition; every caller awaits that task. A drop then wakes at
most two tasks. `install()` puts the class where kopf looks it up when it builds its sets (the operator's
start only); with a kopf whose toggle set differs from the one this was written against it does nothing, and
kopf's own class stays.
"""

from __future__ import annotations

import asyncio
import logging

from kopf._cogs.aiokits import aiotoggles

log = logging.getLogger(__name__)


class SharedWaitToggleSet(aiotoggles.ToggleSet):
    """A `kopf` toggle set whose waiters share one condition wait per awaited state."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._shared: dict[bool, asyncio.Task[None]] = {}

    async def wait_for(self, __state: bool) -> None:
        state = bool(__state)
        if self.is_on() == state:  # kopf's predicate, checked before any waiting (as Condition.wait_for does)
            return
        task = self._shared.get(state)
        if task is None or task.done():
            task = asyncio.create_task(super().wait_for(state), name=f"toggle set: wait for {state}")
            self._shared[state] = task
        # A caller cancelled while waiting must not cancel the wait the other callers share.
        await asyncio.shield(task)


def install() -> bool:
    """Make kopf build its toggle sets as `SharedWaitToggleSet`; False (nothing changed) when kopf's class is
    not the one this was written for (its methods moved or renamed)."""
    base = aiotoggles.ToggleSet
    if base is SharedWaitToggleSet:
        return True
    if not all(
        callable(getattr(base, name, None)) for name in ("wait_for", "is_on", "make_toggle", "drop_toggle")
    ):
        log.info("kopf's ToggleSet has another shape: its start-up wait stays as it is")
        return False
    aiotoggles.ToggleSet = SharedWaitToggleSet  # type: ignore[misc]
    return True

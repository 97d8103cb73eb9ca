"""Spreading each object's periodic timers over their period.

kopf starts every object's timer with the same initial delay, so a thousand objects seen at start (an operator
restart) probe their databases, read their Secrets and write drift status in the same second, every period,
competing with the reconciles that make them Ready. Each object's first run is shifted by a fraction of the
period derived from its uid: the load is spread evenly and stays spread (a kopf timer's interval counts from
the end of the previous run), and one object keeps the same phase while the process runs.
"""

from __future__ import annotations

import asyncio
import hashlib


def phase(key: str, period: float) -> float:
    """The shift of `key`'s first run, in [0, period): uniform over keys, the same for one key every time."""
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return period * fraction


class Stagger:
    """Remembers which objects had their first run of one timer (one instance per timer)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._started: set[str] = set()

    def first_wait(self, key: str) -> float:
        """Seconds to wait before `key`'s first run (0 for every later run); marks the first run as taken."""
        if key in self._started:
            return 0.0
        self._started.add(key)
        return phase(key, self.period)

    async def wait_turn(self, key: str) -> None:
        await asyncio.sleep(self.first_wait(key))

    def forget(self, key: str) -> None:
        self._started.discard(key)

"""One "Hub replica process" of benchmark 1's multi-process variant: `python -m bench.propagation_worker`.

Protocol (one JSON object per line; the DSN travels on stdin, never in argv):

- stdin, first line: `{"dsn": ..., "profile": "scion"|"proposal", "listeners": n, "timeout": s}`. The worker
  starts n `SettingsCache` instances (listen=True) on its own event loop, then writes
  `{"ready": n, "pid": ...}`.
- stdin, then: `{"expect": message}`. The worker waits until every one of its caches holds `message` as
  the maintenance message, then writes `{"token": message, "last": ..., "first": ..., "notified": ...,
  "notifications": ...}`: the latest / earliest `last_change_at` and the latest `last_notify_at` over its
  caches, all `time.monotonic()` values (CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare
  them with its own clock), and the notifications received so far by all its caches.
- stdin `{"stop": true}` or EOF: stop the caches and exit 0.

Errors are written as `{"error": ...}` before exiting 1. Anything else the process prints goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, TextIO

from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.listener import SettingsCache

CONNECT_BATCH = 5  # concurrent connects per worker (the workers also start at the same time)


def message_of(cache: SettingsCache) -> Any:
    values = cache.snapshot.values
    if cache.profile is Profile.SCION:
        doc = values.get("maintenance")
        return doc.get("maintenance_message") if isinstance(doc, dict) else None
    return values.get("maintenance_message")


def _send(out: TextIO, doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc) + "\n")
    out.flush()


async def _stdin_reader() -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1 << 20)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(out: TextIO) -> None:
    reader = await _stdin_reader()
    config = json.loads(await reader.readline())
    profile = Profile(config["profile"])
    timeout = float(config.get("timeout", 30.0))
    caches = [
        SettingsCache(config["dsn"], profile=profile, listen=True, poll_interval=3600.0)
        for _ in range(int(config["listeners"]))
    ]
    try:
        for i in range(0, len(caches), CONNECT_BATCH):
            await asyncio.gather(*(c.start(timeout=timeout) for c in caches[i : i + CONNECT_BATCH]))
        _send(out, {"ready": len(caches), "pid": os.getpid()})
        while line := await reader.readline():
            command = json.loads(line)
            if command.get("stop"):
                break
            message = command["expect"]
            await asyncio.gather(
                *(c.wait_for(lambda c, m=message: message_of(c) == m, timeout) for c in caches)  # type: ignore[misc]
            )
            stamps = [c.last_change_at or 0.0 for c in caches]
            _send(
                out,
                {
                    "token": message,
                    "last": max(stamps),
                    "first": min(stamps),
                    "notified": max(c.last_notify_at or 0.0 for c in caches),
                    "notifications": sum(c.notifications for c in caches),
                },
            )
    finally:
        await asyncio.gather(*(c.stop() for c in caches))


def main() -> int:
    out = sys.stdout
    sys.stdout = sys.stderr  # the protocol owns the real stdout
    try:
        asyncio.run(serve(out))
    except Exception as exc:
        _send(out, {"error": f"{type(exc).__name__}: {exc}"[:300]})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark `propagation`: DB propagation. `SettingsStore.apply` of one changed key -> all N listeners hold the new value.

Listeners are `SettingsCache` instances ("Hub replicas"), all in this process on one event loop, each with
its own PostgreSQL connection. Latency = (latest `last_change_at` among the N caches) - (time just before
`apply`), so it includes the apply transaction, the NOTIFY fan-out and every replica's reload. Running the
N replicas on one Python event loop serializes their reloads, which makes large N pessimistic compared with
N separate Hub processes.

The multi-process variant is closer to a real deployment: the same N listeners spread over W worker
processes (`bench/propagation_worker.py`, each with its own event loop and N/W caches). Each worker reports,
per change, the latest `last_change_at` of its caches; the latency is the latest over all workers minus the
time just before `apply`. Both sides use `time.monotonic()` (CLOCK_MONOTONIC is system-wide on Linux, so the
stamps of different processes are comparable).

Baselines in the same run: the same listeners with `listen=False` polling every 1 s (measured, with a random
wait before each apply so the change lands at a random phase of the poll cycle), and polling every 30 s
(the reference listener's default; computed, not measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import random
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from tests.support.hubdb import PROPOSAL_DDL, SCION_DDL
from tests.support.pgserver import PgServer

from bench.common import (
    EXAMPLE_FULL,
    REPO_ROOT,
    CpuProfile,
    Row,
    Sizes,
    create_database,
    now,
    percentile,
    profile_async,
)
from bench.propagation_worker import message_of
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.layouts import desired_rows
from hubsettings_operator.table.listener import SettingsCache
from hubsettings_operator.table.plan import owner_marker
from hubsettings_operator.table.store import PoolRegistry, SettingsStore, Target

BENCH = "propagation"
TARGET_MS = 50.0
WAIT_S = 30.0


@functools.cache
def _example() -> dict[str, Any]:
    with EXAMPLE_FULL.open() as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)["spec"]
    return spec


def example_spec(message: str, secret: str = "db") -> dict[str, Any]:
    """examples/full.yaml's spec (19 sections, 44 proposal keys) with one field set to `message`."""
    spec = copy.deepcopy(_example())
    spec["settings"]["maintenance"]["maintenance_message"] = message
    spec["database"]["secretRef"] = {"name": secret, "key": "url"}
    spec.pop("bootstrap", None)
    return spec


def parsed_spec(message: str) -> HubSettingsSpec:
    spec, errors = validate_spec(example_spec(message))
    if spec is None:
        raise RuntimeError(f"example spec invalid: {errors}")
    return spec


class Harness:
    """N started listeners on one table and a store that applies the example spec with a given message."""

    def __init__(self, dsn: str, profile: Profile, caches: list[SettingsCache]) -> None:
        self.dsn = dsn
        self.profile = profile
        self.caches = caches
        self.registry = PoolRegistry()
        self.store = SettingsStore(dsn, self.registry)
        self.target = Target(profile=profile)
        self.counter = 0

    async def apply(self, message: str) -> None:
        rows = desired_rows(parsed_spec(message), self.profile)
        await self.store.apply(self.target, lambda _p: rows, owner_marker("bench", "hub"))

    async def change_once(self, tag: str) -> tuple[float, float, float, float]:
        """Apply a new message -> (last listener updated, first listener updated, apply duration, last
        listener notified) in ms since just before the apply."""
        self.counter += 1
        message = f"{tag}-{self.counter}"
        rows = desired_rows(parsed_spec(message), self.profile)
        started = now()
        await self.store.apply(self.target, lambda _p: rows, owner_marker("bench", "hub"))
        applied = now()
        await asyncio.gather(
            *(c.wait_for(lambda c, m=message: message_of(c) == m, WAIT_S) for c in self.caches)  # type: ignore[misc]
        )
        stamps = [c.last_change_at or applied for c in self.caches]
        notified = [c.last_notify_at or 0.0 for c in self.caches]
        return (
            (max(stamps) - started) * 1000,
            (min(stamps) - started) * 1000,
            (applied - started) * 1000,
            (max(notified) - started) * 1000,
        )

    async def close(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.caches))
        await self.registry.close()


async def start_harness(
    pg: PgServer, profile: Profile, n: int, *, listen: bool, poll_interval: float
) -> Harness:
    dsn = create_database(pg, SCION_DDL if profile is Profile.SCION else PROPOSAL_DDL)
    caches = [
        SettingsCache(dsn, profile=profile, listen=listen, poll_interval=poll_interval) for _ in range(n)
    ]
    harness = Harness(dsn, profile, caches)
    await harness.apply("initial")
    # Connect in small batches: 100 simultaneous SCRAM handshakes only measure the connect storm.
    for i in range(0, n, 20):
        await asyncio.gather(*(c.start(timeout=WAIT_S) for c in caches[i : i + 20]))
    return harness


async def measure_listen(
    pg: PgServer, profile: Profile, n: int, iterations: int, profiles: list[CpuProfile]
) -> Row:
    harness = await start_harness(pg, profile, n, listen=True, poll_interval=3600.0)
    try:
        await harness.change_once("warmup")
        last: list[float] = []
        first: list[float] = []
        apply_ms: list[float] = []
        notified: list[float] = []
        for _ in range(iterations):
            a, b, c, d = await harness.change_once("listen")
            last.append(a)
            first.append(b)
            apply_ms.append(c)
            notified.append(d)
            await asyncio.sleep(0.02)
        row = Row(
            BENCH,
            f"LISTEN/NOTIFY, {profile.value} profile",
            n,
            "ms",
            last,
            extra={
                "first_listener_p50_ms": round(percentile(first, 50), 2),
                "last_notified_p50_ms": round(percentile(notified, 50), 2),
                "apply_p50_ms": round(percentile(apply_ms, 50), 2),
                "notifications_per_listener": round(sum(c.notifications for c in harness.caches) / n, 1),
            },
        )
        if n >= 100:
            row.target = f"p99 < {TARGET_MS:g} ms"
            row.met = row.stats()["p99"] < TARGET_MS
            if not row.met:

                async def once() -> None:
                    await harness.change_once("profile")

                profiles.append(
                    await profile_async(
                        f"{BENCH} {profile.value} N={n}: apply + NOTIFY + {n} reloads (bench process)",
                        once,
                        min(10, iterations),
                    )
                )
        return row
    finally:
        await harness.close()


STARTUP_S = 120.0  # a worker's interpreter start, imports and connections (all workers start at once)
STOP_S = 10.0


class Worker:
    """One `bench.propagation_worker` subprocess and its JSON-lines pipe (see that module's protocol)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(cls) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.propagation_worker",
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def send(self, doc: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        if stdin is None:
            raise RuntimeError("worker has no stdin")
        stdin.write((json.dumps(doc) + "\n").encode())
        await stdin.drain()

    async def receive(self, timeout: float) -> dict[str, Any]:
        stdout = self.proc.stdout
        if stdout is None:
            raise RuntimeError("worker has no stdout")
        line = await asyncio.wait_for(stdout.readline(), timeout)
        if not line:
            await self.proc.wait()
            raise RuntimeError(f"worker {self.proc.pid} exited with status {self.proc.returncode}")
        doc: dict[str, Any] = json.loads(line)
        if "error" in doc:
            raise RuntimeError(f"worker {self.proc.pid}: {doc['error']}")
        return doc

    async def close(self) -> None:
        """Ask the worker to stop (it closes its connections), kill it if it does not exit in time."""
        proc = self.proc
        try:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    await self.send({"stop": True})
                    proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_S)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def measure_processes(pg: PgServer, profile: Profile, n: int, workers: int, iterations: int) -> Row:
    """The listeners spread over `workers` processes (n // workers each), like separate Hub replicas."""
    per_worker = max(1, n // workers)
    n = per_worker * workers
    dsn = create_database(pg, SCION_DDL if profile is Profile.SCION else PROPOSAL_DDL)
    harness = Harness(dsn, profile, [])
    procs: list[Worker] = []
    try:
        await harness.apply("initial")
        for _ in range(workers):
            procs.append(await Worker.spawn())
        config = {"dsn": dsn, "profile": profile.value, "listeners": per_worker, "timeout": WAIT_S}
        await asyncio.gather(*(w.send(config) for w in procs))
        for ready in await asyncio.gather(*(w.receive(STARTUP_S) for w in procs)):
            if ready.get("ready") != per_worker:
                raise RuntimeError(f"unexpected readiness line from a worker: {ready}")

        async def change_once(tag: str) -> dict[str, float]:
            harness.counter += 1
            message = f"{tag}-{harness.counter}"
            rows = desired_rows(parsed_spec(message), profile)
            # The new message is the iteration token: each worker answers once all its caches hold it.
            await asyncio.gather(*(w.send({"expect": message}) for w in procs))
            started = now()
            await harness.store.apply(harness.target, lambda _p: rows, owner_marker("bench", "hub"))
            applied = now()
            reports = await asyncio.gather(*(w.receive(WAIT_S + 5) for w in procs))
            if any(r.get("token") != message for r in reports):
                raise RuntimeError(f"a worker answered for another change than {message!r}: {reports}")
            return {
                "last": (max(r["last"] for r in reports) - started) * 1000,
                "first": (min(r["first"] for r in reports) - started) * 1000,
                "apply": (applied - started) * 1000,
                "notified": (max(r["notified"] for r in reports) - started) * 1000,
                "span": max(r["last"] - r["first"] for r in reports) * 1000,
                "notifications": sum(r["notifications"] for r in reports),
            }

        await change_once("warmup")
        samples: list[dict[str, float]] = []
        for _ in range(iterations):
            samples.append(await change_once("workers"))
            await asyncio.sleep(0.02)

        def p50(key: str) -> float:
            return round(percentile([s[key] for s in samples], 50), 2)

        row = Row(
            BENCH,
            f"LISTEN/NOTIFY, {profile.value} profile, {workers} processes x {per_worker} listeners",
            n,
            "ms",
            [s["last"] for s in samples],
            extra={
                "first_listener_p50_ms": p50("first"),
                "last_notified_p50_ms": p50("notified"),
                "apply_p50_ms": p50("apply"),
                "worker_reload_span_p50_ms": p50("span"),
                "notifications_per_listener": round(samples[-1]["notifications"] / n, 1) if samples else 0,
            },
            note="worker_reload_span = max over workers of (its last - its first listener updated)",
        )
        if n >= 100:
            row.target = f"p99 < {TARGET_MS:g} ms"
            row.met = row.stats()["p99"] < TARGET_MS
        return row
    finally:
        await asyncio.gather(*(w.close() for w in procs), return_exceptions=True)
        await harness.registry.close()


async def measure_poll(pg: PgServer, n: int, iterations: int, interval: float) -> Row:
    harness = await start_harness(pg, Profile.SCION, n, listen=False, poll_interval=interval)
    try:
        samples: list[float] = []
        for _ in range(iterations):
            await asyncio.sleep(random.uniform(0, interval))
            last, _first, _apply, _notified = await harness.change_once("poll")
            samples.append(last)
        return Row(
            BENCH,
            f"baseline: poll every {interval:g} s (listen=False), scion",
            n,
            "ms",
            samples,
            note="random phase per iteration; the client adds 0-10% jitter to each period",
        )
    finally:
        await harness.close()


def computed_poll(interval: float) -> Row:
    """Polling every `interval` s: the change lands at a uniformly random point of the period."""
    return Row(
        BENCH,
        f"baseline: poll every {interval:g} s (default), computed",
        None,
        "ms",
        computed=True,
        fixed={
            "p50": interval / 2 * 1000,
            "p95": interval * 0.95 * 1000,
            "p99": interval * 0.99 * 1000,
            "max": interval * 1000,
        },
        extra={
            "expected_mean_s": interval / 2,
            "worst_s": interval,
            "worst_with_10pct_jitter_s": interval * 1.1,
        },
        note="computed, not measured: uniform arrival within the poll period",
    )


async def run(pg: PgServer, sizes: Sizes, profiles: list[CpuProfile]) -> list[Row]:
    rows: list[Row] = []
    steps: list[Callable[[], Awaitable[Row]]] = []
    for n in sizes.listeners:
        steps.append(
            lambda n=n: measure_listen(pg, Profile.SCION, n, sizes.propagation_iterations, profiles)  # type: ignore[misc]
        )
    steps.append(
        lambda: measure_listen(
            pg, Profile.PROPOSAL, sizes.proposal_listeners, sizes.propagation_iterations, profiles
        )
    )
    # Separate processes like real Hub replicas: 4 x 25 (smoke: 2 x 1), in the same run as the single loop.
    workers = 2 if sizes.smoke else 4
    steps.append(
        lambda: measure_processes(
            pg, Profile.SCION, max(sizes.listeners), workers, sizes.propagation_iterations
        )
    )
    if not sizes.smoke:
        steps.append(
            lambda: measure_processes(
                pg, Profile.PROPOSAL, sizes.proposal_listeners, workers, sizes.propagation_iterations
            )
        )
    for n in sizes.listeners:
        steps.append(lambda n=n: measure_poll(pg, n, sizes.poll_iterations, 1.0))  # type: ignore[misc]
    for step in steps:
        rows.append(await step())
    rows.append(computed_poll(30.0))
    return rows

"""Shared pieces of the benchmarks: sizes, result rows, percentiles, profiling, database helpers.

Every benchmark returns `Row`s: one measured (or computed) case with its samples, p50/p95/p99/max, extra
counters, and an optional target it is reported against (never asserted).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import math
import pstats
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from tests.support.hubdb import listening
from tests.support.pgserver import PgServer

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_FULL = REPO_ROOT / "examples" / "full.yaml"


@dataclass(frozen=True)
class Sizes:
    """Iteration counts and sizes of one run (full or smoke)."""

    listeners: tuple[int, ...] = (1, 10, 100)
    proposal_listeners: int = 100
    propagation_iterations: int = 30
    poll_iterations: int = 10
    e2e_listeners: int = 100
    e2e_iterations: int = 30
    noop_reconciles: int = 1000
    noop_keys: int = 200
    drift_pods: tuple[int, ...] = (100, 1000, 5000)
    drift_env_vars: int = 30
    drift_runs: int = 5
    footprint_pods: int = 1000
    footprint_hub_pods: int = 10
    footprint_other_pods: int = 5000
    convergence_replicas: tuple[int, ...] = (3, 20)
    convergence_iterations: int = 5
    startup_iterations: int = 3
    throughput_keys: tuple[int, ...] = (10, 100, 1000)
    throughput_iterations: int = 10
    scale_namespaces: int = 100
    scale_per_namespace: int = 10
    smoke: bool = False

    @staticmethod
    def smoke_sizes() -> Sizes:
        return Sizes(
            listeners=(2,),
            proposal_listeners=2,
            propagation_iterations=1,
            poll_iterations=1,
            e2e_listeners=2,
            e2e_iterations=1,
            noop_reconciles=3,
            noop_keys=3,
            drift_pods=(5,),
            drift_runs=1,
            footprint_pods=5,
            footprint_hub_pods=2,
            footprint_other_pods=20,
            convergence_replicas=(2,),
            convergence_iterations=1,
            startup_iterations=1,
            throughput_keys=(3,),
            throughput_iterations=1,
            scale_namespaces=2,
            scale_per_namespace=2,
            smoke=True,
        )


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method); q in [0, 100]."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Row:
    """One line of the table. `samples` are in `unit`; `computed` rows are formulas, not measurements."""

    bench: str  # the benchmark name: "propagation", ...
    case: str
    n: int | None
    unit: str
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    met: bool | None = None
    computed: bool = False
    note: str = ""
    error: str | None = None
    fixed: dict[str, float] | None = None  # computed rows: p50/p95/p99/max given directly

    def stats(self) -> dict[str, float]:
        if self.fixed is not None:
            return dict(self.fixed)
        return {
            "p50": percentile(self.samples, 50),
            "p95": percentile(self.samples, 95),
            "p99": percentile(self.samples, 99),
            "max": max(self.samples) if self.samples else math.nan,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "case": self.case,
            "n": self.n,
            "unit": self.unit,
            "iterations": len(self.samples),
            **{k: (None if math.isnan(v) else round(v, 4)) for k, v in self.stats().items()},
            "samples": [round(s, 4) for s in self.samples],
            "extra": self.extra,
            "target": self.target,
            "met": self.met,
            "computed": self.computed,
            "note": self.note,
            "error": self.error,
        }


@dataclass
class CpuProfile:
    """cProfile top entries of one benchmark case (printed when a target is missed, and for CPU rows)."""

    title: str
    lines: list[str]


def _short(line: str) -> str:
    """Paths shortened to what identifies them (package/module.py, operator/..., bench/...)."""
    line = re.sub(r"/\S*?/site-packages/", "", line)
    line = line.replace(str(REPO_ROOT) + "/", "")
    return re.sub(r"/\S*?/lib/python3\.\d+/", "", line)


def stats_top(stats: pstats.Stats, limit: int) -> list[str]:
    """Two views of a profile: the operator's own functions by cumulative time (what calls cost), and every
    function by own time (where the CPU actually goes)."""
    out: list[str] = []
    for title, key, restrict in (
        (
            "hubsettings_operator functions by cumulative time",
            pstats.SortKey.CUMULATIVE,
            "hubsettings_operator",
        ),
        ("all functions by own (tottime) time", pstats.SortKey.TIME, ""),
    ):
        buf = io.StringIO()
        stats.stream = buf  # type: ignore[attr-defined]
        stats.sort_stats(key)
        if restrict:
            stats.print_stats(restrict, limit)
        else:
            stats.print_stats(limit)
        lines = [ln.rstrip() for ln in buf.getvalue().splitlines()]
        start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        out.append(f"-- {title}")
        out.extend(_short(ln) for ln in lines[start:] if ln.strip())
    return out


def _top(prof: cProfile.Profile, limit: int) -> list[str]:
    return stats_top(pstats.Stats(prof), limit)


async def profile_async(
    title: str, fn: Callable[[], Awaitable[Any]], repeat: int, limit: int = 12
) -> CpuProfile:
    """Run `fn` `repeat` times under cProfile (the whole event loop thread is profiled, listeners included)."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        for _ in range(repeat):
            await fn()
    finally:
        prof.disable()
    return CpuProfile(title, _top(prof, limit))


def profile_sync(title: str, fn: Callable[[], Any], repeat: int, limit: int = 12) -> CpuProfile:
    prof = cProfile.Profile()
    prof.enable()
    try:
        for _ in range(repeat):
            fn()
    finally:
        prof.disable()
    return CpuProfile(title, _top(prof, limit))


# ---- PostgreSQL ------------------------------------------------------------------------------------------


def create_database(pg: PgServer, ddl: str | None, prefix: str = "bench") -> str:
    """A fresh database (optionally with the Hub's table) -> its DSN."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(pg.superuser_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg.dsn(name)
    if ddl:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(ddl)
    return dsn


# The tests' LISTEN collector, under the name the benchmarks call it by (one implementation of LISTEN + pump).
counting_notifies = listening


@dataclass(frozen=True)
class TableState:
    """Row-version fingerprint and cumulative tuple counters of one table."""

    versions: dict[str, tuple[str, str]]  # key -> (xmin, ctid): any rewrite of a row changes them
    ins: int
    upd: int
    dele: int

    def writes_since(self, before: TableState) -> dict[str, int]:
        rewritten = sum(
            1 for k, v in self.versions.items() if k in before.versions and before.versions[k] != v
        )
        inserted = len(set(self.versions) - set(before.versions))
        deleted = len(set(before.versions) - set(self.versions))
        return {
            "rows_rewritten_xmin": rewritten + inserted + deleted,
            "n_tup_ins": self.ins - before.ins,
            "n_tup_upd": self.upd - before.upd,
            "n_tup_del": self.dele - before.dele,
        }


async def table_state(
    dsn: str, key_column: str, table: str = "hub_settings", settle: float = 0.7
) -> TableState:
    """Read the table's row versions and `pg_stat_user_tables` counters.

    Backends flush their statistics when they exit (or at most once a second when idle), so callers close
    their connection pools first; `settle` then gives the exiting backends time to flush.
    """
    await asyncio.sleep(settle)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        cur = await conn.execute(
            "SELECT coalesce(n_tup_ins, 0), coalesce(n_tup_upd, 0), coalesce(n_tup_del, 0) "
            "FROM pg_stat_user_tables WHERE relname = %s",
            (table,),
        )
        counters = await cur.fetchone() or (0, 0, 0)
        cur = await conn.execute(
            psycopg.sql.SQL("SELECT {}, xmin::text, ctid::text FROM {}").format(
                psycopg.sql.Identifier(key_column), psycopg.sql.Identifier(table)
            )
        )
        versions = {str(r[0]): (str(r[1]), str(r[2])) for r in await cur.fetchall()}
    return TableState(versions, int(counters[0]), int(counters[1]), int(counters[2]))


def now() -> float:
    """The clock every latency uses (SettingsCache stamps `last_change_at` with the same one)."""
    return time.monotonic()

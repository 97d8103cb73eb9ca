"""Connections to the Hubs' databases, bounded: one global cap shared by every database the operator writes.

`PoolRegistry(max_connections=10)` never has more than `max_connections` connections open (idle, in use,
connecting or closing), whatever the number of databases: a database without an idle connection takes a free
slot, else the slot of the longest-idle connection of another database, else queues. The queue is FIFO across
databases (a newcomer never overtakes a waiter; the first waiter that can use a freed slot gets it) and each
wait is bounded by `pool_timeout`: a wait that ends there raises `PoolSaturated` ("the operator's own cap is
full"), which is not the database's fault and never reported as such. The pool policy per DSN: at most
`pool_max_size` of the slots (a busy database cannot starve the others) and no connection kept idle longer
than `idle_timeout` (a timer closes it even when nothing else happens).

Owners (a HubSettings, a CLI run) `retain(owner, dsn)` the DSN they use; retaining a new DSN releases the old
one (DSN rotation), and a DSN nobody retains any more has its connections closed at once. Column
introspection of a table is cached here too, per (DSN, table), for `table_cache_ttl` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from hubsettings_operator.redact import register_dsn
from hubsettings_operator.table.dberrors import PoolSaturated
from hubsettings_operator.table.layout import TableInfo
from hubsettings_operator.table.rowcache import RowCache

Connection = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class StoreOptions:
    """Connection behaviour: bounded waits everywhere, so a sick database yields an error, not a hang."""

    connect_timeout: int = 5
    statement_timeout_ms: int = 15_000
    lock_timeout_ms: int = 10_000
    pool_timeout: float = 10.0
    pool_max_size: int = 4  # connections one database may hold at once
    idle_timeout: float = 30.0
    # An idle connection older than this is checked (one empty query) before use: a restarted server
    # would otherwise fail the next apply.
    check_after: float = 2.0
    table_cache_ttl: float = 60.0
    application_name: str = "hubsettings-operator"

    def connect_kwargs(self) -> dict[str, Any]:
        return {
            "connect_timeout": self.connect_timeout,
            "application_name": self.application_name,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "options": (
                f"-c statement_timeout={self.statement_timeout_ms} -c lock_timeout={self.lock_timeout_ms} "
                "-c idle_in_transaction_session_timeout=60000"
            ),
        }


@functools.lru_cache(maxsize=4096)
def dsn_key(dsn: str) -> str:
    return hashlib.sha256(dsn.encode()).hexdigest()


@dataclass(eq=False)
class _Waiter:
    """One queued checkout: `granted` is resolved when it is this waiter's turn to try again."""

    key: str
    granted: asyncio.Future[None]


class PoolRegistry:
    """Bounded connections for every database the operator talks to (see the module docstring)."""

    def __init__(self, options: StoreOptions | None = None, *, max_connections: int = 10) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.options = options or StoreOptions()
        self.max_connections = max_connections
        self._per_dsn = min(self.options.pool_max_size, max_connections)
        self._dsns: dict[str, str] = {}
        self._idle: dict[str, list[tuple[Connection, float]]] = {}
        self._busy: dict[str, int] = {}
        self._open = 0  # slots taken: connections idle, in use, connecting or closing
        self._owners: dict[str, str] = {}  # owner -> dsn key
        self._users: dict[str, set[str]] = {}  # dsn key -> owners
        self._tables: dict[tuple[str, str], tuple[TableInfo, float]] = {}
        # Per (DSN, table): the rows last read -> their parse, and the plans over them (table/rowcache.py),
        # shared by every store of it.
        self._rows: dict[tuple[str, str], RowCache] = {}
        self._waiters: deque[_Waiter] = deque()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        # Seconds each queued checkout waited (the runtime feeds its metric from this).
        self.on_wait: Callable[[float], None] = lambda seconds: None
        self.saturated_total = 0  # waits that ended at `pool_timeout`

    # ---- owners -------------------------------------------------------------------------------------

    def retain(self, owner: str, dsn: str) -> None:
        """`owner` uses `dsn` from now on (and no longer the DSN it retained before, if any)."""
        register_dsn(dsn)
        key = dsn_key(dsn)
        self._dsns[key] = dsn
        old = self._owners.get(owner)
        if old == key:
            return
        self._owners[owner] = key
        self._users.setdefault(key, set()).add(owner)
        if old is not None:
            self._drop_owner(old, owner)

    async def release(self, owner: str) -> None:
        """`owner` is gone: close the connections of its DSN if nobody else uses it."""
        key = self._owners.pop(owner, None)
        if key is not None:
            self._drop_owner(key, owner)
        await self._settle()

    def _drop_owner(self, key: str, owner: str) -> None:
        users = self._users.get(key)
        if users is not None:
            users.discard(owner)
            if users:
                return
            del self._users[key]
        # Nobody uses this DSN any more: its idle connections go now, busy ones when they come back.
        for conn, _ in self._idle.pop(key, []):
            self._close_later(conn)
        self._tables = {k: v for k, v in self._tables.items() if k[0] != key}
        self._rows = {k: v for k, v in self._rows.items() if k[0] != key}
        if not self._busy.get(key):
            self._dsns.pop(key, None)

    def open_connections(self) -> int:
        """Connections open right now (idle, in use, connecting or closing): never above the cap."""
        return self._open

    def retained_dsns(self) -> int:
        """Distinct DSNs some owner retains."""
        return len(self._users)

    def waiting(self) -> int:
        """Checkouts queued for a slot right now."""
        return len(self._waiters)

    def connections_for(self, dsn: str) -> int:
        """Connections to `dsn` idle or in use right now."""
        key = dsn_key(dsn)
        return len(self._idle.get(key, [])) + self._busy.get(key, 0)

    # ---- connections --------------------------------------------------------------------------------

    @asynccontextmanager
    async def connection(self, dsn: str, *, queue: bool = True) -> AsyncIterator[Connection]:
        """An autocommit connection to `dsn` for the duration of the block. `queue=False` (a health probe):
        raise `PoolSaturated` at once instead of queueing behind the applies when no slot is free."""
        register_dsn(dsn)
        key = dsn_key(dsn)
        self._dsns.setdefault(key, dsn)
        conn = await self._checkout(key, dsn, queue=queue)
        try:
            yield conn
        finally:
            await self._checkin(key, conn)

    async def _checkout(self, key: str, dsn: str, *, queue: bool = True) -> Connection:
        if self._closed:
            raise PoolSaturated("the connection registry is closed")
        self._sweep()
        if not self._waiters:
            conn = await self._take(key, dsn)
            if conn is not None:
                return conn
        if not queue:
            raise PoolSaturated("no connection slot free now")
        waiter = _Waiter(key, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        started = time.monotonic()
        deadline = started + self.options.pool_timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.saturated_total += 1
                    raise PoolSaturated(self._saturated_message(key))
                try:
                    await asyncio.wait_for(asyncio.shield(waiter.granted), remaining)
                except TimeoutError:
                    continue
                if self._closed:
                    raise PoolSaturated("the connection registry is closed")
                waiter.granted = asyncio.get_running_loop().create_future()
                self._sweep()
                # Our turn: no await between the grant and the slot being counted, so nobody overtakes.
                conn = await self._take(key, dsn, first=waiter)
                if conn is not None:
                    self.on_wait(time.monotonic() - started)
                    return conn
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            self._wake()

    def _saturated_message(self, key: str) -> str:
        full = (
            f"all {self._per_dsn} connections this database may hold are busy"
            if self._busy.get(key, 0) >= self._per_dsn
            else f"all {self.max_connections} of the operator's connections are in use"
        )
        return (
            f"no connection free within {self.options.pool_timeout:g}s ({full}, {len(self._waiters)} waiting)"
        )

    def _can_take(self, key: str) -> bool:
        if self._idle.get(key):
            return True
        if self._busy.get(key, 0) >= self._per_dsn:
            return False
        return self._open < self.max_connections or any(self._idle.values())

    async def _take(self, key: str, dsn: str, *, first: _Waiter | None = None) -> Connection | None:
        """A connection for `key` now, or None when no slot is free. The counting happens before any await."""
        if not self._can_take(key):
            return None
        if first is not None:
            self._waiters.remove(first)
        idle = self._idle.get(key)
        if idle:
            conn, since = idle.pop()
            self._busy[key] = self._busy.get(key, 0) + 1
            if time.monotonic() - since < self.options.check_after and not conn.broken:
                return conn
            return await self._connect(key, dsn, check=conn)
        victim = self._longest_idle() if self._open >= self.max_connections else None
        if victim is None:
            self._open += 1
        self._busy[key] = self._busy.get(key, 0) + 1
        # A victim's slot passes to us; it is closed before we connect, so the server never sees more
        # connections than the cap.
        return await self._connect(key, dsn, replace=victim)

    def _wake(self) -> None:
        """Let the first queued checkout that can use what is free now try again (FIFO across databases)."""
        for waiter in self._waiters:
            if waiter.granted.done():
                return  # a turn is already given and not yet taken
            if self._closed or self._can_take(waiter.key):
                waiter.granted.set_result(None)
                return

    async def _connect(
        self, key: str, dsn: str, *, check: Connection | None = None, replace: Connection | None = None
    ) -> Connection:
        """A connection in a slot already counted in `_open` and `_busy`: `check` (an idle connection that
        may have died while idle, e.g. a server restart) if it still answers, else a new one."""
        try:
            if check is not None:
                try:
                    await check.execute("")
                    return check
                except (psycopg.Error, OSError):
                    replace = check
            if replace is not None:
                with contextlib.suppress(Exception):
                    await replace.close()
            return await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, **self.options.connect_kwargs()
            )
        except BaseException:
            if check is not None and not check.closed:
                with contextlib.suppress(Exception):
                    await check.close()
            self._open -= 1
            self._busy[key] -= 1
            self._wake()
            raise

    async def _checkin(self, key: str, conn: Connection) -> None:
        self._busy[key] -= 1
        reusable = (
            not self._closed
            and key in self._users
            and not conn.closed
            and not conn.broken
            and conn.info.transaction_status is TransactionStatus.IDLE
        )
        if reusable:
            self._idle.setdefault(key, []).append((conn, time.monotonic()))
            self._schedule_sweep()
            self._wake()
            return
        if not self._busy[key] and key not in self._users:
            self._dsns.pop(key, None)
        await self._close_quietly(conn)

    def _longest_idle(self) -> Connection | None:
        oldest: tuple[float, str] | None = None
        for key, conns in self._idle.items():
            if conns and (oldest is None or conns[0][1] < oldest[0]):
                oldest = (conns[0][1], key)
        if oldest is None:
            return None
        conn, _ = self._idle[oldest[1]].pop(0)
        return conn

    def _sweep(self) -> None:
        limit = time.monotonic() - self.options.idle_timeout
        for conns in self._idle.values():
            while conns and conns[0][1] < limit:
                conn, _ = conns.pop(0)
                self._close_later(conn)
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        """Close idle connections at `idle_timeout` even when no checkout comes (an operator at rest)."""
        if self._sweeper is not None or self._closed:
            return
        oldest = min((conns[0][1] for conns in self._idle.values() if conns), default=None)
        if oldest is None:
            return

        def run() -> None:
            self._sweeper = None
            self._sweep()

        delay = max(0.0, oldest + self.options.idle_timeout - time.monotonic()) + 0.05
        self._sweeper = asyncio.get_running_loop().call_later(delay, run)

    async def _close_quietly(self, conn: Connection) -> None:
        """Close the connection and free its slot (counted until the close is done)."""
        try:
            with contextlib.suppress(Exception):
                await conn.close()
        finally:
            self._open -= 1
            self._wake()

    def _close_later(self, conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._close_quietly(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _settle(self) -> None:
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    # ---- table introspection cache ------------------------------------------------------------------

    def cached_table(self, dsn: str, table: str) -> TableInfo | None:
        entry = self._tables.get((dsn_key(dsn), table))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def cache_table(self, dsn: str, table: str, info: TableInfo) -> None:
        self._tables[(dsn_key(dsn), table)] = (info, time.monotonic() + self.options.table_cache_ttl)

    def forget_table(self, dsn: str, table: str) -> None:
        self._tables.pop((dsn_key(dsn), table), None)

    def row_cache(self, dsn: str, table: str) -> RowCache:
        """The parse cache of a table's rows and the plans over them (`store.rows_from`, table/rowcache.py): it
        outlives the stores, one per reconcile."""
        key = (dsn_key(dsn), table)
        found = self._rows.get(key)
        if found is None:
            found = self._rows[key] = RowCache()
        return found

    async def close(self) -> None:
        """Close every connection; connections in use are closed when they come back."""
        self._closed = True
        for key in list(self._idle):
            for conn, _ in self._idle.pop(key):
                self._close_later(conn)
        self._owners.clear()
        self._users.clear()
        self._tables.clear()
        self._rows.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for waiter in self._waiters:
            if not waiter.granted.done():
                waiter.granted.set_result(None)
        await self._settle()

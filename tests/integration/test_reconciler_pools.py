"""The reconciler over many databases: 200 HubSettings, each with its own DSN, and DSN rotations, against a
real PostgreSQL. The operator's connections stay under its cap, every object becomes Ready, and deleting the
objects closes every connection (before: one pool per DSN, never closed)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from hubsettings_operator.runtime.config import OperatorConfig
from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.table.pool import PoolRegistry, StoreOptions
from tests.integration.helpers import put_hubs
from tests.support.fakekube import FakeKube
from tests.support.pgserver import PgServer

APP = "hubsettings-reconciler-pools"
CAP = 10


async def _ours(admin: psycopg.AsyncConnection[Any]) -> int:
    cur = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s", (f"{APP}%",)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _ready(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


async def test_200_hubsettings_on_200_dsns_stay_under_the_cap_and_close_everything_when_deleted(
    db: str, pg: PgServer
) -> None:
    kube = FakeKube()
    registry = PoolRegistry(StoreOptions(application_name=APP, pool_timeout=120.0), max_connections=CAP)
    reconciler = Reconciler(build_services(kube, OperatorConfig(max_db_connections=CAP), pools=registry))
    admin = await psycopg.AsyncConnection.connect(pg.superuser_dsn, autocommit=True)
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, await _ours(admin))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        names = put_hubs(kube, db, 200, app=APP, marker="pool.value")
        outcomes = await asyncio.gather(*(reconciler.reconcile(kube.objects[("scion", n)]) for n in names))
        assert [o.result for o in outcomes] == ["applied"] * 200, {o.result for o in outcomes}
        assert all(_ready(kube.objects[("scion", n)]) for n in names)

        # 15 rotations (a Secret updated with a new DSN): the old DSN's connections go.
        for i, name in enumerate(names[:15]):
            kube.secrets[("scion", f"db-{name}", "url")] = f"{db}&application_name={APP}-rotated-{i}"
            outcome = await reconciler.reconcile(kube.objects[("scion", name)])
            assert outcome.result in ("applied", "noop")
            assert registry.connections_for(f"{db}&application_name={APP}-{i}") == 0
        assert registry.open_connections() <= CAP

        for name in names:
            await reconciler.forget(kube.objects[("scion", name)])
        assert registry.open_connections() == 0
        for _ in range(500):  # backends exit asynchronously after the client closes
            if await _ours(admin) == 0:
                break
            await asyncio.sleep(0.01)
        assert await _ours(admin) == 0
    finally:
        sampling = False
        await sampler
        await reconciler.close()
        await admin.close()
    assert 1 <= peak <= CAP, peak

"""A saturated connection cap is a queue, not an outage (issue 24), against a real PostgreSQL.

More HubSettings than the operator's connection cap, each on its own DSN: every object eventually applies, no
status ever says DatabaseUnavailable (the databases are fine; the operator's own cap was full), a wait that
ends at the bound says WaitingForConnection, a health probe that finds the cap full blames nobody, and the
queue is FIFO across databases (a hot database re-queues behind the others, nobody is starved). Nothing here
measures time: rounds and orders are counted.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from psycopg import conninfo

from hubsettings_operator.runtime.config import OperatorConfig
from hubsettings_operator.runtime.reconciler import REQUEUE_AFTER, Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.table.dberrors import PoolSaturated
from hubsettings_operator.table.pool import PoolRegistry, StoreOptions
from tests.integration.helpers import put_hubs
from tests.support.fakekube import FakeKube

APP = "hubsettings-connection-queue"
CAP = 3


def _reasons(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}


async def test_a_full_cap_is_waiting_for_connection_then_every_object_applies_and_none_blames_the_database(
    db: str,
) -> None:
    kube = FakeKube()
    # A short bound makes waits end at it often: 40 objects on 3 slots.
    registry = PoolRegistry(StoreOptions(application_name=APP, pool_timeout=0.05), max_connections=CAP)
    reconciler = Reconciler(build_services(kube, OperatorConfig(max_db_connections=CAP), pools=registry))
    names = put_hubs(kube, db, 40, app=APP, marker="queue.value")
    try:
        # Phase 1: the whole cap is held (three other databases busy): every reconcile waits its bounded
        # turn and says so; its database is not blamed and the requeue is short (no backoff).
        async with AsyncExitStack() as stack:
            for i in range(CAP):
                await stack.enter_async_context(registry.connection(f"{db}&application_name={APP}-hold-{i}"))
            outcomes = await asyncio.gather(
                *(reconciler.reconcile(kube.objects[("scion", n)]) for n in names)
            )
            assert {o.result for o in outcomes} == {"WaitingForConnection"}
            assert all(o.retry_in is not None and o.retry_in <= REQUEUE_AFTER[1] for o in outcomes)
            for name in names:
                conditions = _reasons(kube.objects[("scion", name)]["status"])
                assert conditions["Reconciling"] == ("True", "WaitingForConnection")
                assert conditions["Ready"] == ("False", "WaitingForConnection")
            # The health probe does not queue behind the applies, and a full cap is no evidence of an outage.
            patches = kube.patches
            assert await reconciler.health(kube.objects[("scion", names[0])]) == "busy"
            assert kube.patches == patches
            assert registry.saturated_total >= len(names)

        # Phase 2: the holders are gone; requeue whoever waited until everybody applied (rounds, not time).
        pending = list(names)
        rounds = 0
        while pending and rounds < 500:
            rounds += 1
            outcomes = await asyncio.gather(
                *(reconciler.reconcile(kube.objects[("scion", n)]) for n in pending)
            )
            assert {o.result for o in outcomes} <= {"applied", "WaitingForConnection"}
            pending = [n for n, o in zip(pending, outcomes, strict=True) if o.result != "applied"]
            assert registry.open_connections() <= CAP
        assert pending == []
        for name in names:
            assert _reasons(kube.objects[("scion", name)]["status"])["Ready"][0] == "True"
        # Not once, in any status any object had: the database was never blamed for the operator's queue.
        assert kube.history
        assert not any(
            reason == "DatabaseUnavailable"
            for status in kube.history
            for _, reason in _reasons(status).values()
        )
    finally:
        await reconciler.close()


async def test_the_queue_is_fifo_across_databases_and_a_hot_database_starves_nobody(db: str) -> None:
    registry = PoolRegistry(StoreOptions(application_name=APP, pool_timeout=120.0), max_connections=1)
    served: list[str] = []
    try:
        hold = registry.connection(f"{db}&application_name={APP}-holder")
        await hold.__aenter__()

        async def use(label: str, dsn: str) -> None:
            async with registry.connection(dsn) as conn:
                served.append(label)
                await conn.execute("SELECT 1")

        async def hot(turns: int) -> None:
            for _ in range(turns):
                await use("hot", f"{db}&application_name={APP}-hot")

        hammer = asyncio.create_task(hot(5))  # first in the queue, and back for more each time it is served
        await asyncio.sleep(0)
        waiters = []
        for i in range(10):
            waiters.append(asyncio.create_task(use(f"w{i}", f"{db}&application_name={APP}-w{i}")))
            await asyncio.sleep(0)  # enqueued in this order
        assert registry.waiting() == 11
        # A newcomer that does not queue gets nothing while others wait (it never overtakes them).
        try:
            async with registry.connection(f"{db}&application_name={APP}-probe", queue=False):
                raise AssertionError("a non-queueing checkout overtook the queue")
        except PoolSaturated:
            pass
        await hold.__aexit__(None, None, None)
        await asyncio.gather(*waiters, hammer)
        # Served in arrival order; the hot database's next turns queue behind everybody already waiting (its
        # own idle connection does not let it jump the queue).
        assert served == ["hot"] + [f"w{i}" for i in range(10)] + ["hot"] * 4
        assert registry.open_connections() <= 1
    finally:
        await registry.close()


async def test_idle_connections_close_at_the_idle_timeout_without_any_further_checkout(db: str) -> None:
    registry = PoolRegistry(StoreOptions(application_name=APP, idle_timeout=0.2), max_connections=4)
    try:
        for i in range(3):
            dsn = f"{db}&application_name={APP}-idle-{i}"
            registry.retain(f"owner-{i}", dsn)
            async with registry.connection(dsn) as conn:
                await conn.execute("SELECT 1")
            assert registry.connections_for(dsn) == 1  # kept idle for the next checkout
        # Nothing else happens: the pool's own timer closes them (polled by count, not by a duration).
        for _ in range(200):
            if registry.open_connections() == 0:
                break
            await asyncio.sleep(0.05)
        assert registry.open_connections() == 0
    finally:
        await registry.close()


async def test_the_health_probe_leaves_an_object_not_reconciled_yet_to_its_handler(db: str) -> None:
    """At start a thousand objects wait for their create/resume handler; a health probe that reached one first
    would reconcile it too (twice the work while everything queues). Before this process reconciled it, the
    probe reads no Secret and touches neither the database nor status; afterwards it probes as always."""
    kube = FakeKube()
    registry = PoolRegistry(StoreOptions(application_name=APP), max_connections=CAP)
    reconciler = Reconciler(build_services(kube, OperatorConfig(max_db_connections=CAP), pools=registry))
    (name,) = put_hubs(kube, db, 1, app=APP, marker="gate.value")
    try:
        assert await reconciler.health(kube.objects[("scion", name)]) == "not-yet"
        assert kube.reads == []
        assert kube.patches == 0
        assert registry.open_connections() == 0
        assert (await reconciler.reconcile(kube.objects[("scion", name)])).result == "applied"
        assert await reconciler.health(kube.objects[("scion", name)]) == "ok"
        # Forgotten (deleted): a new object of the same uid is again left to its handler.
        await reconciler.forget(kube.objects[("scion", name)])
        assert await reconciler.health(kube.objects[("scion", name)]) == "not-yet"
    finally:
        await registry.close()


async def test_the_health_probe_reads_the_dsn_secret_once_per_secret_period_and_at_once_when_the_ping_fails(
    db: str,
) -> None:
    """1,000 objects re-reading their Secret every health period cost the API server 100 GETs/s. Between
    reads (`secret_seconds`) the probe pings with the DSN it read last; a ping that fails re-reads the
    Secret before blaming the database, so a fixed or rotated DSN is reconciled within one probe."""
    kube = FakeKube()
    registry = PoolRegistry(StoreOptions(application_name=APP), max_connections=CAP)
    config = OperatorConfig(max_db_connections=CAP, secret_seconds=3600.0)
    reconciler = Reconciler(build_services(kube, config, pools=registry))
    (name,) = put_hubs(kube, db, 1, app=APP, marker="secret.value")
    secret = ("scion", f"db-{name}", "url")
    good = kube.secrets[secret]
    kube.secrets[secret] = conninfo.make_conninfo(good, dbname="no_such_database_here")
    obj = kube.objects[("scion", name)]
    try:
        assert (await reconciler.reconcile(obj)).result == "DatabaseUnavailable"
        reads = len(kube.reads)
        # The Secret is fixed; the probe's DSN is the broken one it read with the reconcile: its ping fails,
        # it reads the Secret again, finds another DSN and reconciles (no DatabaseUnavailable from the probe).
        kube.secrets[secret] = good
        assert await reconciler.health(obj) == "dsn-changed"
        assert len(kube.reads) == reads + 2  # the probe's re-read, then the reconcile's
        assert _reasons(obj["status"])["Ready"][0] == "True"
        # Healthy: probes within the secret period read nothing from the API server.
        reads = len(kube.reads)
        for _ in range(3):
            assert await reconciler.health(obj) == "ok"
        assert len(kube.reads) == reads
    finally:
        await registry.close()


async def test_a_stale_body_without_status_neither_flips_ready_nor_starts_a_probe_reconcile(db: str) -> None:
    """Under load kopf's body of an object lags the API server by seconds: a timer may still see no status
    when the object is Ready. Its reconcile must not write the first-sight Reconciling over Ready (two patches
    that flip Ready off and on), and the health probe must not take it for not Ready and reconcile."""
    kube = FakeKube()
    registry = PoolRegistry(StoreOptions(application_name=APP), max_connections=CAP)
    reconciler = Reconciler(build_services(kube, OperatorConfig(max_db_connections=CAP), pools=registry))
    (name,) = put_hubs(kube, db, 1, app=APP, marker="stale.value")
    obj = kube.objects[("scion", name)]
    try:
        assert (await reconciler.reconcile(obj)).result == "applied"
        assert _reasons(obj["status"])["Ready"][0] == "True"
        history, patches = len(kube.history), kube.patches
        stale = {**obj, "status": {}}
        assert (await reconciler.reconcile(stale)).result == "noop"
        assert not any(
            _reasons(status).get("Reconciling", ("False", ""))[0] == "True"
            for status in kube.history[history:]
        )
        assert _reasons(obj["status"])["Ready"][0] == "True"
        patches = kube.patches
        assert await reconciler.health({**obj, "status": {}}) == "ok"
        assert kube.patches == patches
    finally:
        await registry.close()


async def test_the_health_probe_does_not_queue_a_reconcile_behind_one_under_way(db: str) -> None:
    """While a reconcile holds the object's lock (its status write waiting for a slow API server), a probe
    that took the object for not Ready would queue a second reconcile behind it: more of the same requests.
    It reports "in-progress" and reads nothing."""
    kube = FakeKube()
    registry = PoolRegistry(StoreOptions(application_name=APP), max_connections=CAP)
    reconciler = Reconciler(build_services(kube, OperatorConfig(max_db_connections=CAP), pools=registry))
    (name,) = put_hubs(kube, db, 1, app=APP, marker="busy.value")
    obj = kube.objects[("scion", name)]
    try:
        assert (await reconciler.reconcile(obj)).result == "applied"
        reads, patches = len(kube.reads), kube.patches
        async with reconciler.lock_for(obj):
            assert (
                await reconciler.health({**obj, "status": {}, "metadata": {**obj["metadata"]}})
                == "in-progress"
            )
        assert (len(kube.reads), kube.patches) == (reads, patches)
    finally:
        await registry.close()

"""The reconciler tells the convergence check of each commit as it happens (`Reconciler.committed`), against a
real PostgreSQL: once per apply that changed rows, before that reconcile's own status write (so the replicas are
asked while it is under way), and never for a reconcile that wrote nothing."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.status.convergence import pending_write
from hubsettings_operator.table.store import PoolRegistry
from tests.support.fakekube import FakeKube
from tests.support.hubdb import PROPOSAL_DDL, execute

KEY = ("scion", "hub")


async def test_committed_is_called_once_per_changing_apply_before_its_status_write(db: str) -> None:
    await execute(db, PROPOSAL_DDL)
    kube = FakeKube(default_dsn=db)
    registry = PoolRegistry()
    reconciler = Reconciler(build_services(kube, pools=registry))
    seen: list[tuple[int, bool]] = []  # (generation, Synced=True already written for it when told)

    def committed(body: Mapping[str, Any]) -> None:
        generation = body["metadata"]["generation"]
        synced = pending_write(kube.objects[KEY].get("status") or {}, generation) is None
        seen.append((generation, synced))

    reconciler.committed = committed
    try:
        value = "v-" + secrets.token_hex(3)
        spec = {"database": {"secretRef": {"name": "db"}}, "extraSettings": {"gen.value": value}}
        first = kube.put(*KEY, spec)
        assert (await reconciler.reconcile(first)).result == "applied"
        again = {**kube.objects[KEY]}
        assert (await reconciler.reconcile(again)).result == "noop"  # nothing written: not a commit
        changed = kube.put(*KEY, {**spec, "extraSettings": {"gen.value": value + "-2"}})
        assert (await reconciler.reconcile(changed)).result == "applied"
        assert seen == [(1, False), (2, False)]
        assert pending_write(kube.objects[KEY]["status"], 2) is None  # and the status write followed
    finally:
        await reconciler.close()

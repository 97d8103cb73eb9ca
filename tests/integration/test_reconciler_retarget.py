"""Re-pointing a HubSettings (spec.database.table changed) under `deletion: Delete`: the rows it owned in the old
table are deleted (one NOTIFY there), the new table gets them, and a `Retargeted` Event says so. Real
PostgreSQL, the reconcile service with the in-memory Kubernetes API."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.table.proposal import CHANNEL
from tests.support.fakekube import FakeKube
from tests.support.hubdb import listening, rows


def _spec(table: str) -> dict[str, Any]:
    return {
        "database": {"secretRef": {"name": "db"}, "table": table, "createTable": True, "profile": "proposal"},
        "policy": {"deletion": "Delete"},
        "extraSettings": {"move.a": 1, "move.b": "two"},
    }


async def test_retarget_under_delete_removes_the_old_rows_and_says_so(db: str) -> None:
    kube = FakeKube(default_dsn=db)
    events: list[Any] = []
    reconciler = Reconciler(build_services(kube, emit=lambda body, event: events.append(event)))
    try:
        first = await reconciler.reconcile(kube.put("scion", "hub", _spec("hs_old")))
        assert first.result == "applied"
        assert set(await rows(db, "proposal", "hs_old")) == {"move.a", "move.b"}

        async with listening(db, CHANNEL) as notes:
            moved = await reconciler.reconcile(kube.put("scion", "hub", _spec("hs_new")))
        assert moved.result == "applied"
        assert await rows(db, "proposal", "hs_old") == {}, "the old table keeps nothing of this object"
        assert set(await rows(db, "proposal", "hs_new")) == {"move.a", "move.b"}
        assert len(notes.payloads) == 2, (
            "one NOTIFY for the new table's rows, one for the old table's deletion"
        )
        retargeted = [e for e in events if e.reason == "Retargeted"]
        assert len(retargeted) == 1
        assert "hs_old" in retargeted[0].message and "deleted 2 row(s)" in retargeted[0].message
        assert db.split("@", maxsplit=1)[0] not in retargeted[0].message  # no credentials in the Event

        again = await reconciler.reconcile(kube.objects[("scion", "hub")])
        assert again.result == "noop"
        assert [e for e in events if e.reason == "Retargeted"] == retargeted, "said once, not on every resync"
    finally:
        await reconciler.close()

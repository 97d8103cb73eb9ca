"""The reconciler's kept no-op outcome (runtime/noop_memo.py) against a real PostgreSQL: an unchanged object's
resync does not recompute its status, and a change to any input (the status as read, the generation, the
spec, the table's rows, the object forgotten) is reconciled exactly as without the memo."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.status import rules
from tests.support.fakekube import FakeKube
from tests.support.hubdb import SCION_DDL, execute

NS, NAME = "scion", "hub"


def _body(admin_mode: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": NAME, "uid": "u-memo", "generation": 1},
        "spec": {
            "database": {"secretRef": {"name": "db"}, "profile": "scion"},
            "settings": {
                "access": {"admin_emails": ["ops@example.com"]},
                "maintenance": {"admin_mode": admin_mode, "maintenance_message": "upgrade at 18:00"},
            },
        },
    }


class Spy:
    """Counts the status computations (`rules.applied`) the reconciler makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = rules.applied

        def applied(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(rules, "applied", applied)


async def _settled(db: str) -> tuple[FakeKube, dict[str, Any], Reconciler]:
    await execute(db, SCION_DDL)
    kube = FakeKube(default_dsn=db)
    body = _body()
    kube.objects[(NS, NAME)] = body  # patched in place: `body` carries the latest status
    reconciler = Reconciler(build_services(kube))
    assert (await reconciler.reconcile(body)).result == "applied"
    await reconciler.reconcile(body)  # settles the status (as kopf's next event would)
    return kube, body, reconciler


async def test_an_unchanged_object_keeps_its_status_without_recomputing_it(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube, body, reconciler = await _settled(db)
    try:
        spy = Spy(monkeypatch)
        patches = kube.patches
        first = await reconciler.reconcile(body)  # kept by the settling reconcile (nothing to patch there)
        again = [await reconciler.reconcile(body) for _ in range(3)]
        assert spy.calls == 0
        assert [o.result for o in again] == ["noop"] * 3 and all(o.status == first.status for o in again)
        assert all(not o.events for o in again) and kube.patches == patches
        # The same status as a reconciler that never saw the object computes.
        fresh = Reconciler(build_services(kube))
        try:
            assert (await fresh.reconcile(body)).status == first.status
        finally:
            await fresh.close()
    finally:
        await reconciler.close()


async def test_every_input_changed_is_reconciled_as_without_the_memo(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube, body, reconciler = await _settled(db)
    try:
        await reconciler.reconcile(body)  # kept
        settled = copy.deepcopy(body["status"])
        spy = Spy(monkeypatch)

        # The status edited by hand (one condition's message, one field): recomputed and patched back.
        body["status"]["conditions"][0]["message"] = "edited"
        body["status"]["appliedKeys"] = 0
        patches = kube.patches
        outcome = await reconciler.reconcile(body)
        assert spy.calls == 1 and kube.patches == patches + 1 and body["status"] == settled
        assert outcome.result == "noop"

        # A status change that JSON tells apart though Python's == does not (1 vs true): recomputed too.
        body["status"]["appliedKeys"] = True if settled["appliedKeys"] == 1 else float(settled["appliedKeys"])
        await reconciler.reconcile(body)
        assert spy.calls == 2

        # A new generation with the same spec: observedGeneration follows.
        body["metadata"]["generation"] = 2
        await reconciler.reconcile(body)
        assert spy.calls == 3 and body["status"]["observedGeneration"] == 2

        # The table edited out of band, keeping revision and owner marker: seen, overwritten, reported.
        await execute(
            db,
            "UPDATE hub_settings SET value = jsonb_set(value, '{admin_mode}', 'false') WHERE section = 'maintenance'",
        )
        outcome = await reconciler.reconcile(body)
        assert outcome.result == "applied" and spy.calls == 4
        assert any(e.reason.value == "ModifiedOutOfBand" for e in outcome.events)

        # A new spec (same generation number is not trusted either: the spec itself is part of the key).
        body["spec"] = _body(admin_mode=False)["spec"]
        outcome = await reconciler.reconcile(body)
        assert outcome.result == "applied" and spy.calls == 5

        # Settled again, then forgotten (deleted and re-created): computed again.
        await reconciler.reconcile(body)
        calls = spy.calls
        await reconciler.reconcile(body)
        assert spy.calls == calls
        await reconciler.forget(body)
        await reconciler.reconcile(body)
        assert spy.calls == calls + 1
    finally:
        await reconciler.close()

"""Rules of the running Hub the table alone does not show (real PostgreSQL, the reconcile service with the
in-memory Kubernetes API): a gcp_iam change every replica would refuse to apply is never written nor reported
Ready, and fields the Hub never applies from a table row are refused saying where they go."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.table.pool import PoolRegistry
from hubsettings_operator.table.scion import CHANNEL
from tests.support.fakekube import FakeKube
from tests.support.hubdb import SCION_DDL, execute, listening, rows

STRICT = {"gcp_iam_check_mode": "enforce", "gcp_iam_deny_unknown_policy": "fail-closed"}


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def _spec(settings: dict[str, Any]) -> dict[str, Any]:
    return {"database": {"secretRef": {"name": "db"}, "profile": "scion"}, "settings": settings}


async def test_gcp_iam_tightening_is_written_and_loosening_is_refused_with_nothing_written(db: str) -> None:
    await execute(db, SCION_DDL)
    kube = FakeKube(default_dsn=db)
    events: list[Any] = []
    reconciler = Reconciler(
        build_services(kube, pools=PoolRegistry(), emit=lambda body, event: events.append(event))
    )
    try:
        strict = await reconciler.reconcile(kube.put("scion", "hub", _spec({"gcp_iam": STRICT})))
        assert strict.result == "applied"
        before = await rows(db, "scion")
        assert before["gcp_iam"]["value"] == STRICT and before["gcp_iam"]["revision"] == 1
        loose = {**STRICT, "gcp_iam_check_mode": "off"}
        async with listening(db, CHANNEL) as notes:
            outcome = await reconciler.reconcile(kube.put("scion", "hub", _spec({"gcp_iam": loose})))
        assert outcome.result != "applied"
        conditions = _conditions(kube.objects[("scion", "hub")])
        assert conditions["Ready"]["status"] == "False"
        stalled = conditions["Stalled"]
        assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec", stalled
        assert (
            "gcp-iam-loosening" in stalled["message"]
            and "PUT /api/v1/admin/server-config" in stalled["message"]
        )
        assert await rows(db, "scion") == before, "the stricter row stays, revision unchanged"
        assert notes.payloads == []
        assert any("gcp-iam-loosening" in e.message for e in events)
    finally:
        await reconciler.close()


async def test_gcp_iam_loosening_the_hub_admin_already_made_is_written(db: str) -> None:
    """After an admin turned the check off through the Hub's API (row holds `off`), the same value in the
    HubSettings is no loosening: the operator adopts it and may tighten it later."""
    await execute(db, SCION_DDL)
    admin_row = {"gcp_iam_check_mode": "off", "gcp_iam_deny_unknown_policy": "fail-open"}
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO hub_settings (id, section, value, revision, updated_by, origin, create_time, update_time) "
            "VALUES (gen_random_uuid(), 'gcp_iam', %s::jsonb, 4, 'admin@example.com', 'managed', now(), now())",
            (json.dumps(admin_row),),
        )
    kube = FakeKube(default_dsn=db)
    reconciler = Reconciler(build_services(kube, pools=PoolRegistry(), emit=lambda body, event: None))
    try:
        same = await reconciler.reconcile(kube.put("scion", "hub", _spec({"gcp_iam": admin_row})))
        assert same.result == "applied", same
        adopted = (await rows(db, "scion"))["gcp_iam"]
        assert adopted["value"] == admin_row and adopted["revision"] >= 4
        tighter = await reconciler.reconcile(kube.put("scion", "hub", _spec({"gcp_iam": STRICT})))
        assert tighter.result == "applied"
        after = (await rows(db, "scion"))["gcp_iam"]
        assert after["value"] == STRICT and after["revision"] == adopted["revision"] + 1
    finally:
        await reconciler.close()


async def test_fields_the_hub_never_applies_from_the_table_are_refused_before_writing(db: str) -> None:
    await execute(db, SCION_DDL)
    kube = FakeKube(default_dsn=db)
    reconciler = Reconciler(build_services(kube, pools=PoolRegistry(), emit=lambda body, event: None))
    try:
        bad = {"agent_defaults": {"default_model": "large", "default_max_agent_role": "full"}}
        outcome = await reconciler.reconcile(kube.put("scion", "hub", _spec(bad)))
        assert outcome.result == "invalid"
        stalled = _conditions(kube.objects[("scion", "hub")])["Stalled"]
        assert "spec.settings.agent_defaults.default_max_agent_role" in stalled["message"]
        assert "not-applied" in stalled["message"] and "each project's own" in stalled["message"]
        assert await rows(db, "scion") == {}
    finally:
        await reconciler.close()

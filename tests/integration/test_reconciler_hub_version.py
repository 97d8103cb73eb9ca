"""The reconcile validates with the Hub version the replicas reported (status.convergence, as the convergence
check writes it) and with that version's live schema, on real PostgreSQL (issue 21, item 4)."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.spec import live_schema
from hubsettings_operator.table.pool import PoolRegistry
from tests.support.fakekube import FakeKube
from tests.support.hubdb import SCION_DDL, execute, rows


def _spec(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "database": {"secretRef": {"name": "db"}, "profile": "scion"},
        "settings": settings,
        "convergence": {"adminTokenSecretRef": {"name": "tok"}},
    }


def _put(kube: FakeKube, settings: dict[str, Any], *replica_versions: str) -> dict[str, Any]:
    obj = kube.put("scion", "hub", _spec(settings))
    replicas = [{"name": f"hub-{i}", "version": v} for i, v in enumerate(replica_versions)]
    obj["status"]["convergence"] = {"replicas": replicas}
    return obj


def _stalled(kube: FakeKube) -> dict[str, Any]:
    status = kube.objects[("scion", "hub")]["status"]
    return next(c for c in status["conditions"] if c["type"] == "Stalled")


async def test_the_oldest_replica_governs_and_nothing_is_written(db: str) -> None:
    await execute(db, SCION_DDL)
    kube = FakeKube(default_dsn=db)
    reconciler = Reconciler(build_services(kube, pools=PoolRegistry()))
    gcp_iam = {"gcp_iam": {"gcp_iam_check_mode": "enforce"}}
    try:
        outcome = await reconciler.reconcile(_put(kube, gcp_iam, "0.2.23", "0.2.4"))
        assert outcome.result == "invalid"
        stalled = _stalled(kube)
        assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
        assert "spec.settings.gcp_iam: needs Hub >= 0.2.23" in stalled["message"]
        assert "the oldest running replica runs 0.2.4" in stalled["message"]
        assert await rows(db, "scion") == {}
        hub = kube.objects[("scion", "hub")]["status"]["hubVersion"]
        assert hub["effective"] == "0.2.4" and hub["source"] == "replicas" and hub["mixed"] is True
        assert any(e.reason == "HubVersionsMixed" for e in outcome.events)

        outcome = await reconciler.reconcile(_put(kube, gcp_iam, "0.2.23", "0.2.23"))
        assert outcome.result == "applied"
        assert (await rows(db, "scion"))["gcp_iam"]["value"] == gcp_iam["gcp_iam"]
        hub = kube.objects[("scion", "hub")]["status"]["hubVersion"]
        assert (hub["effective"], hub["source"], hub["mixed"], hub["versions"]) == (
            "0.2.23",
            "replicas",
            False,
            ["0.2.23"],
        )
    finally:
        await reconciler.close()


async def test_the_governing_version_live_schema_is_used(db: str) -> None:
    """A running Hub (version 7.0.1 here) whose maintenance schema has only `admin_mode`: what the facts
    accept is refused, with the live schema named; what it accepts is written."""
    await execute(db, SCION_DDL)
    live_schema.remember(
        live_schema.parse_schema_response(
            {
                "sections": {
                    "maintenance": {
                        "schema": {
                            "type": "object",
                            "properties": {"admin_mode": {"type": "boolean"}},
                            "additionalProperties": False,
                        },
                        "koanf_paths": ["server.maintenance"],
                    }
                }
            },
            "7.0.1",
        )
    )
    kube = FakeKube(default_dsn=db)
    reconciler = Reconciler(build_services(kube, pools=PoolRegistry()))
    try:
        both = {"maintenance": {"admin_mode": False, "maintenance_message": "down"}}
        assert (await reconciler.reconcile(_put(kube, both, "7.0.1"))).result == "invalid"
        assert "the running Hub's schema (version 7.0.1)" in _stalled(kube)["message"]
        assert await rows(db, "scion") == {}
        only = {"maintenance": {"admin_mode": True}}
        assert (await reconciler.reconcile(_put(kube, only, "7.0.1"))).result == "applied"
        assert (await rows(db, "scion"))["maintenance"]["value"]["admin_mode"] is True
        # Without a reported version the facts govern again (and say so).
        assert (await reconciler.reconcile(_put(kube, both))).result == "applied"
        hub = kube.objects[("scion", "hub")]["status"]["hubVersion"]
        assert hub["source"] == "facts" and "no replica reported" in hub["message"]
    finally:
        await reconciler.close()

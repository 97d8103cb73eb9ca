"""The operator refuses a section document the Hub would refuse, before anything is written (real PostgreSQL,
the reconcile service with the in-memory Kubernetes API): Stalled/InvalidSpec with the field path, the last
good settings left in place, no NOTIFY, a Warning Event saying the same."""

from __future__ import annotations

from typing import Any

import pytest

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.table.proposal import CHANNEL as PROPOSAL_CHANNEL
from hubsettings_operator.table.scion import CHANNEL as SCION_CHANNEL
from tests.support.fakekube import FakeKube
from tests.support.hubdb import listening, rows
from tests.support.waits import conditions as _conditions

GOOD = {"quotas": {"enforce_broker_quotas": True}, "messaging": {"cross_project_messaging_enabled": False}}


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"quotas": {"bogus_field": 1}}, "spec.settings.quotas.bogus_field"),
        (
            {"messaging": {"cross_project_messaging_enabled": "yes"}},
            "spec.settings.messaging.cross_project_messaging_enabled",
        ),
    ],
    ids=["unknown-field", "wrong-type"],
)
async def test_a_section_the_hub_would_refuse_is_stalled_with_its_path_and_nothing_is_written(
    table: tuple[str, str], bad: dict[str, Any], path: str
) -> None:
    profile, dsn = table
    kube = FakeKube(default_dsn=dsn)
    events: list[Any] = []
    reconciler = Reconciler(build_services(kube, emit=lambda body, event: events.append(event)))
    spec = {"database": {"secretRef": {"name": "db"}, "profile": profile}, "settings": GOOD}
    try:
        good = await reconciler.reconcile(kube.put("scion", "hub", spec))
        assert good.result == "applied"
        before = await rows(dsn, profile)
        channel = SCION_CHANNEL if profile == "scion" else PROPOSAL_CHANNEL
        async with listening(dsn, channel) as notes:
            outcome = await reconciler.reconcile(
                kube.put("scion", "hub", {**spec, "settings": {**GOOD, **bad}})
            )
        assert outcome.result == "invalid"
        stalled = _conditions(kube.objects[("scion", "hub")])["Stalled"]
        assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
        assert path in stalled["message"], stalled["message"]
        assert await rows(dsn, profile) == before, "the last good settings stay in place"
        assert notes.payloads == []
        warnings = [e for e in events if e.reason == "InvalidSpec"]
        assert warnings and path in warnings[-1].message, events
    finally:
        await reconciler.close()

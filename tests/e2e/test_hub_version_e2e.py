"""The live Hub version governs validation (issue 21, item 4), with real processes: the operator, a real
kube-apiserver, a real PostgreSQL and Hub stand-ins (`tests/support/hub_standin.py`) answering `scion_version`
and the schema endpoint as the Hub does: hub-old runs 0.2.4 (a registry without `gcp_iam`/`profiling`),
hub-new 0.2.23 (all 21 sections). No `spec.hubVersion`: the oldest replica governs.

Steps run in order in one module (one object through a rolling upgrade): the versions in status, a `gcp_iam`
spec refused while hub-old runs (nothing written), then accepted once hub-old is replaced by a 0.2.23 replica.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from hubsettings_operator.spec import facts, versions
from tests.e2e.test_convergence_e2e import make_hub_pod
from tests.support.kubeapi import (
    Database,
    condition,
    create,
    delete_pod,
    events,
    eventually,
    get,
    hubsettings,
    module_namespace,
    module_operator,
    patch,
    put_secret,
    wait_condition,
)
from tests.support.pgserver import PgServer, free_port
from tests.support.standin import StandInProcess, allow_loopback_clients

TOKEN = "scion_pat_" + base64.b32encode(os.urandom(10)).decode().lower()
OLD, NEW = "0.2.4", "0.2.23"
# The registry of a 0.2.4-era Hub generation: no gcp_iam, no profiling.
OLD_SECTIONS = sorted(facts.section_facts(versions.generation_for(OLD)))
GCP_IAM = {"gcp_iam": {"gcp_iam_check_mode": "enforce"}}

ns = module_namespace("hubver")


@pytest.fixture(scope="module")
def hubdb(pg: PgServer) -> Iterator[Database]:
    allow_loopback_clients(pg)
    db = Database(pg, "scion", listen=False)
    try:
        yield db
    finally:
        db.close()


class Fleet:
    """The stand-in replicas and their pods; `replace` swaps one for a replica of another version."""

    def __init__(self, api: k8s.ApiClient, namespace: str, db: Database, work: Any) -> None:
        self.api, self.namespace, self.db, self.work = api, namespace, db, work
        self.port = free_port()
        self.procs: dict[str, StandInProcess] = {}

    def start(self, name: str, ip: str, version: str, sections: list[str] | None = None) -> None:
        proc = StandInProcess(
            self.db.dsn, ip, self.port, TOKEN, self.work, name=name, sections=sections, version=version
        )
        proc.start()
        self.procs[name] = proc
        make_hub_pod(self.api, self.namespace, name, ip)

    def stop(self, name: str) -> None:
        delete_pod(self.api, self.namespace, name)
        self.procs.pop(name).stop()


@pytest.fixture(scope="module")
def fleet(
    kube_api: k8s.ApiClient, ns: str, hubdb: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    fleet = Fleet(kube_api, ns, hubdb, tmp_path_factory.mktemp("hubver-standins"))
    fleet.start("hub-old", "127.0.0.61", OLD, OLD_SECTIONS)
    fleet.start("hub-new", "127.0.0.62", NEW)
    try:
        yield fleet
    finally:
        for proc in fleet.procs.values():
            proc.stop()


# A short convergence period: a replaced replica is seen within seconds (nothing else starts a round then).
operator = module_operator("hubver-logs", ["--convergence-seconds", "2"])


@pytest.fixture(scope="module")
def hub(kube_api: k8s.ApiClient, ns: str, hubdb: Database, fleet: Fleet, operator: Any) -> str:
    del operator
    put_secret(kube_api, ns, "hub-db", {"url": hubdb.dsn})
    put_secret(kube_api, ns, "hub-admin", {"token": TOKEN})
    spec = {
        "database": {"secretRef": {"name": "hub-db"}, "profile": "scion"},
        "settings": {"maintenance": {"admin_mode": False, "maintenance_message": "v1"}},
        "convergence": {
            "adminTokenSecretRef": {"name": "hub-admin", "key": "token"},
            "port": fleet.port,
            "timeoutSeconds": 30,
        },
    }
    create(kube_api, ns, hubsettings("hub", spec))
    wait_condition(kube_api, ns, "hub", "Ready", "True", timeout=60)
    return "hub"


def hub_version(api: k8s.ApiClient, ns: str, name: str) -> dict[str, Any]:
    return dict(get(api, ns, name)["status"].get("hubVersion") or {})


def test_status_shows_each_replica_version_and_the_oldest_governs(
    kube_api: k8s.ApiClient, ns: str, hub: str, fleet: Fleet
) -> None:
    def governed() -> dict[str, Any] | None:
        got = hub_version(kube_api, ns, hub)
        return got if got.get("source") == "replicas" else None

    got = eventually(governed, 30, what="status.hubVersion from the replicas")
    assert got["effective"] == OLD and got["mixed"] is True and got["versions"] == [OLD, NEW]
    assert f"the oldest, {OLD}, governs validation" in got["message"]
    status = get(kube_api, ns, hub)["status"]
    replicas = {r["name"]: r["version"] for r in status["convergence"]["replicas"]}
    assert replicas == {"hub-old": OLD, "hub-new": NEW}
    assert status["convergence"]["oldestVersion"] == OLD
    # A rolling upgrade is not a failure: still Ready, and one Normal Event says so.
    assert condition(get(kube_api, ns, hub), "Ready")["status"] == "True"
    mixed = eventually(
        lambda: [e for e in events(kube_api, ns, hub) if e.reason == "HubVersionsMixed"] or None, 20
    )
    assert mixed[0].type == "Normal" and OLD in mixed[0].message


def test_each_version_schema_is_fetched_once(
    kube_api: k8s.ApiClient, ns: str, hub: str, fleet: Fleet
) -> None:
    # Several rounds (period 2 s) have run by now: still one schema request per version.
    eventually(lambda: fleet.procs["hub-new"].state()["requests"] >= 3 or None, 30)
    assert fleet.procs["hub-old"].state()["schema_requests"] == 1
    assert fleet.procs["hub-new"].state()["schema_requests"] == 1


def test_section_the_oldest_replica_lacks_is_refused_with_guidance(
    kube_api: k8s.ApiClient, ns: str, hub: str, hubdb: Database
) -> None:
    patch(kube_api, ns, hub, {"spec": {"settings": GCP_IAM}})
    obj = wait_condition(kube_api, ns, hub, "Stalled", "True", "InvalidSpec", timeout=30)
    message = condition(obj, "Stalled")["message"]
    assert "spec.settings.gcp_iam" in message and f"the oldest running replica runs {OLD}" in message
    assert condition(obj, "Ready")["reason"] == "InvalidSpec"
    assert "gcp_iam" not in hubdb.rows()  # nothing written
    assert obj["status"]["hubVersion"]["effective"] == OLD


def test_accepted_once_the_old_replica_is_replaced(
    kube_api: k8s.ApiClient, ns: str, hub: str, hubdb: Database, fleet: Fleet
) -> None:
    fleet.stop("hub-old")
    fleet.start("hub-new-2", "127.0.0.63", NEW)
    # No spec change: the convergence check sees the versions change and the object is reconciled.
    obj = wait_condition(kube_api, ns, hub, "Synced", "True", timeout=60)
    assert hubdb.rows()["gcp_iam"]["value"] == GCP_IAM["gcp_iam"]
    got = obj["status"]["hubVersion"]
    assert got["source"] == "replicas" and got["effective"] == NEW and got["mixed"] is False
    assert got["versions"] == [NEW]
    # 0.2.23's schema came from hub-new earlier: the new replica of that version is not asked again.
    assert fleet.procs["hub-new-2"].state()["schema_requests"] == 0

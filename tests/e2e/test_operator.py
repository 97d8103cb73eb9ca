"""The real operator (subprocess) against the real kube-apiserver and a real PostgreSQL (issue 6)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from tests.support.kubeapi import (
    Database,
    condition,
    create,
    delete,
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
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

SETTINGS = {
    "access": {"admin_emails": ["ops@example.com"]},
    "maintenance": {"admin_mode": False, "maintenance_message": "hello"},
}


ns = module_namespace("op")


operator = module_operator("operator-logs")


def spec(secret: str, settings: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "database": {"secretRef": {"name": secret, "key": "url"}},
        "settings": settings or SETTINGS,
        **extra,
    }


def test_apply_example_writes_rows_notifies_once_per_section_and_is_ready(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    operator: OperatorProcess,
    database: tuple[Database, str],
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("apply", spec(secret)))
    obj = wait_condition(kube_api, ns, "apply", "Ready", "True")
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["appliedKeys"] == 2 and status["profile"] == "scion"
    assert status["settingsHash"].startswith("sha256:")
    assert condition(obj, "Synced")["reason"] == "Applied"
    rows = db.rows()
    assert set(rows) == {"access", "maintenance"}
    assert rows["access"]["value"]["admin_emails"] == ["ops@example.com"]
    assert rows["access"]["updated_by"] == f"hubsettings-operator:{ns}/apply"
    notes = db.drain(1.0)
    assert sorted(json.loads(n)["data"]["section"] for n in notes) == ["access", "maintenance"]
    # kubectl shows the printer columns filled.
    out = subprocess.run(
        ["kubectl", f"--kubeconfig={kube_env.kubeconfig}", "get", "hs", "apply", "-n", ns],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, row = out.strip().splitlines()
    assert header.split()[:7] == ["NAME", "READY", "SYNCED", "DRIFTED", "KEYS", "CONVERGED", "AGE"]
    cells = {
        col: row[header.index(col) :].split()[0] if row[header.index(col) :].strip() else ""
        for col in ("READY", "SYNCED", "KEYS")
    }
    assert cells == {"READY": "True", "SYNCED": "True", "KEYS": "2"}
    assert any(e.reason == "Applied" for e in events(kube_api, ns, "apply"))


def _ready_and_quiet(
    kube_api: k8s.ApiClient, ns: str, db: Database, name: str, body_spec: dict[str, Any]
) -> dict[str, Any]:
    """Create a HubSettings, wait until Ready, drain the NOTIFYs it sent: the table's rows from then on."""
    create(kube_api, ns, hubsettings(name, body_spec))
    wait_condition(kube_api, ns, name, "Ready", "True")
    db.drain(1.0)
    rows: dict[str, Any] = db.rows()
    return rows


def test_edit_one_key_changes_one_row_and_labels_change_nothing(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    before = _ready_and_quiet(kube_api, ns, db, "edit", spec(secret))
    patch(kube_api, ns, "edit", {"spec": {"settings": {"maintenance": {"admin_mode": True}}}})
    eventually(lambda: db.rows()["maintenance"]["revision"] == 2, 20, what="maintenance row updated")
    obj = get(kube_api, ns, "edit")
    eventually(
        lambda: get(kube_api, ns, "edit")["status"]["observedGeneration"] == obj["metadata"]["generation"], 20
    )
    after = db.rows()
    assert after["access"] == before["access"]
    assert after["maintenance"]["value"] == {"admin_mode": True, "maintenance_message": "hello"}
    notes = db.drain(1.0)
    assert [json.loads(n)["data"] for n in notes] == [{"section": "maintenance", "revision": 2}]
    # A label is not a spec change: no write, no NOTIFY (wait past a resync period to be sure).
    status_before = get(kube_api, ns, "edit")["status"]
    patch(kube_api, ns, "edit", {"metadata": {"labels": {"team": "platform"}}})
    time.sleep(5)
    assert db.rows() == after
    assert db.drain(0.5) == []
    assert get(kube_api, ns, "edit")["status"] == status_before


def test_restart_is_a_noop(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    operator: OperatorProcess,
    database: tuple[Database, str],
    tmp_path: Path,
) -> None:
    db, secret = database
    before = _ready_and_quiet(kube_api, ns, db, "restart", spec(secret))
    status_before = get(kube_api, ns, "restart")["status"]
    operator.stop()
    operator.start()
    time.sleep(6)  # resume handlers, a resync period and health probes
    assert db.rows() == before
    assert db.drain(0.5) == []
    assert get(kube_api, ns, "restart")["status"] == status_before


def test_spec_only_the_operator_rejects_is_stalled_and_writes_nothing(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    before = _ready_and_quiet(kube_api, ns, db, "invalid", spec(secret))
    # The API server accepts `_meta` in extraSettings (CEL cannot check those keys); pydantic refuses it.
    patch(kube_api, ns, "invalid", {"spec": {"extraSettings": {"_meta": {"x": 1}}}})
    obj = wait_condition(kube_api, ns, "invalid", "Stalled", "True", "InvalidSpec")
    message = condition(obj, "Stalled")["message"]
    assert "spec.extraSettings._meta" in message
    assert condition(obj, "Ready")["status"] == "False"
    assert db.rows() == before and db.drain(0.5) == []
    assert any(
        e.reason == "InvalidSpec" and "spec.extraSettings._meta" in (e.message or "")
        for e in events(kube_api, ns, "invalid")
    )
    # No retry storm: one Warning event, however long we wait.
    time.sleep(5)
    warnings = [e for e in events(kube_api, ns, "invalid") if e.reason == "InvalidSpec"]
    assert sum(e.count or 1 for e in warnings) == 1
    # Fixing the spec recovers, the last good rows were never touched.
    patch(kube_api, ns, "invalid", {"spec": {"extraSettings": {"_meta": None}}})
    wait_condition(kube_api, ns, "invalid", "Ready", "True")


def test_two_crs_on_one_section_do_not_flip_flop(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("first", spec(secret)))
    wait_condition(kube_api, ns, "first", "Ready", "True")
    create(kube_api, ns, hubsettings("second", spec(secret, {"maintenance": {"admin_mode": True}})))
    obj = wait_condition(kube_api, ns, "second", "Synced", "False", "KeyOwnedByOther")
    assert "maintenance" in condition(obj, "Synced")["message"]
    assert obj["status"]["conflicts"][0]["action"] == "ownedByOther"
    db.drain(1.0)
    before = db.rows()
    time.sleep(13)  # three resync periods
    assert db.rows() == before and db.drain(0.5) == []
    assert condition(get(kube_api, ns, "first"), "Ready")["status"] == "True"


def test_delete_policies(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("keep", spec(secret, {"access": SETTINGS["access"]})))
    create(
        kube_api,
        ns,
        hubsettings(
            "drop", spec(secret, {"maintenance": SETTINGS["maintenance"]}, policy={"deletion": "Delete"})
        ),
    )
    wait_condition(kube_api, ns, "keep", "Ready", "True")
    wait_condition(kube_api, ns, "drop", "Ready", "True")
    eventually(
        lambda: (
            "hubsettings.scion.dev/finalizer"
            in (get(kube_api, ns, "drop")["metadata"].get("finalizers") or [])
        ),
        10,
    )
    db.drain(1.0)
    delete(kube_api, ns, "drop")
    eventually(lambda: "maintenance" not in db.rows(), 20, what="rows of the Delete CR removed")
    notes = db.drain(1.0)
    assert [json.loads(n)["data"]["section"] for n in notes] == ["maintenance"]
    delete(kube_api, ns, "keep")

    def gone() -> bool:
        try:
            get(kube_api, ns, "keep")
        except k8s.ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, 20, what="Retain object deleted (finalizer released without touching rows)")
    assert "access" in db.rows() and db.drain(0.5) == []


def test_database_outage_is_reported_and_recovers_without_touching_the_cr(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    own = PgServer()
    own.start()
    try:
        db = Database(own)
        put_secret(kube_api, ns, "outage-db", {"url": db.dsn})
        create(kube_api, ns, hubsettings("outage", spec("outage-db")))
        wait_condition(kube_api, ns, "outage", "Ready", "True")
        db.close()
        generation = get(kube_api, ns, "outage")["metadata"]["generation"]
        own.stop()
        started = time.monotonic()
        obj = wait_condition(kube_api, ns, "outage", "Ready", "False", "DatabaseUnavailable", timeout=30)
        assert time.monotonic() - started < 30
        assert condition(obj, "Reconciling")["status"] == "True"
        assert own.password not in json.dumps(obj["status"])
        own.start()
        obj = wait_condition(kube_api, ns, "outage", "Ready", "True", timeout=60)
        assert obj["metadata"]["generation"] == generation
    finally:
        own.stop()
        own.cleanup()


def test_two_operator_processes_apply_each_change_once(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    operator: OperatorProcess,
    database: tuple[Database, str],
    tmp_path: Path,
) -> None:
    db, secret = database
    second = OperatorProcess(kube_env.kubeconfig, [ns], tmp_path, name="second").start()
    try:
        create(kube_api, ns, hubsettings("twice", spec(secret, {"access": SETTINGS["access"]})))
        wait_condition(kube_api, ns, "twice", "Ready", "True")
        time.sleep(1)
        assert len(db.drain(1.0)) == 1
        for i in range(3):
            patch(
                kube_api,
                ns,
                "twice",
                {"spec": {"settings": {"access": {"admin_emails": [f"v{i}@example.com"]}}}},
            )
            eventually(lambda i=i: db.rows()["access"]["value"]["admin_emails"] == [f"v{i}@example.com"], 20)
            time.sleep(1.5)
            assert len(db.drain(1.0)) == 1, f"change {i} notified more than once"
        assert db.rows()["access"]["revision"] == 4
    finally:
        second.stop()


def test_secret_change_triggers_reconcile(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    wrong = Database(pg)
    right = Database(pg)
    try:
        put_secret(kube_api, ns, "moving-db", {"url": wrong.dsn})
        create(
            kube_api,
            ns,
            hubsettings(
                "moving",
                spec(
                    "moving-db",
                    {"access": SETTINGS["access"]},
                ),
            ),
        )
        wait_condition(kube_api, ns, "moving", "Ready", "True")
        assert "access" in wrong.rows()
        put_secret(kube_api, ns, "moving-db", {"url": right.dsn})
        eventually(
            lambda: "access" in right.rows(), 20, what="rows written to the database the Secret now names"
        )
    finally:
        wrong.close()
        right.close()


def test_missing_secret_is_reported(kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess) -> None:
    create(kube_api, ns, hubsettings("nosecret", spec("does-not-exist")))
    obj = wait_condition(kube_api, ns, "nosecret", "Ready", "False", "SecretNotFound")
    assert "does-not-exist" in condition(obj, "Ready")["message"]


def test_no_secret_in_logs_status_or_events(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    """Runs last in this module: the DSN password appears nowhere the operator writes."""
    objs = k8s.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "scion.dev", "v1alpha1", ns, "hubsettings"
    )
    text = json.dumps(objs)
    text += "".join(
        f"{e.reason} {e.message}" for e in k8s.CoreV1Api(kube_api).list_namespaced_event(ns).items
    )
    text += operator.logs() + operator.metrics()
    assert pg.password not in text
    assert "Traceback" not in operator.logs() or pg.password not in operator.logs()


def test_rows_of_a_deleted_hubsettings_are_adopted_not_blocked_forever(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    """Retain leaves rows marked with the old owner; once that owner is gone, the next HubSettings listing
    the section takes it over (GitOps renames) instead of reporting KeyOwnedByOther forever."""
    db, secret = database
    create(kube_api, ns, hubsettings("old-name", spec(secret, {"maintenance": {"admin_mode": True}})))
    wait_condition(kube_api, ns, "old-name", "Ready", "True")
    create(kube_api, ns, hubsettings("new-name", spec(secret, {"maintenance": {"admin_mode": False}})))
    wait_condition(kube_api, ns, "new-name", "Stalled", "True", "KeyOwnedByOther")
    delete(kube_api, ns, "old-name")
    obj = wait_condition(kube_api, ns, "new-name", "Ready", "True", timeout=30)
    assert condition(obj, "Stalled") == {}
    row = db.rows()["maintenance"]
    assert row["updated_by"] == f"hubsettings-operator:{ns}/new-name" and row["value"]["admin_mode"] is False
    assert any(e.reason == "AdoptedRows" for e in events(kube_api, ns, "new-name"))

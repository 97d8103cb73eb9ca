"""Status tells the truth to kstatus, Flux and Argo CD (issue 14.1, 14.12-15), on live objects.

The real operator (subprocess) against the real kube-apiserver and PostgreSQL; every object is judged by the
real kstatus library and Flux-style CEL expressions (hack/kstatus) and by docs/argocd-health.lua under Lua.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import psycopg
import urllib3
from kubernetes import client as k8s
from kubernetes import watch

from tests.support.gitops import argocd_health, kstatus
from tests.support.kubeapi import (
    GROUP,
    PLURAL,
    VERSION,
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
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer, free_port

HEALTH_SECONDS = 1.0  # OperatorProcess passes --health-seconds 1


ns = module_namespace("truth")


operator = module_operator("truth-logs")


def spec(secret: str, message: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "database": {"secretRef": {"name": secret, "key": "url"}},
        "settings": {"maintenance": {"admin_mode": False, "maintenance_message": message}},
        **extra,
    }


def lock_waiters(dsn: str) -> int:
    """Operator backends waiting on a lock (our LOCK TABLE) in this database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hubsettings-operator' "
            "AND wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


class StatusRecorder:
    """Every version of one object the API server hands out (a watch sees each status write)."""

    def __init__(self, api: k8s.ApiClient, namespace: str, name: str, since: str) -> None:
        self.versions: list[dict[str, Any]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(api, namespace, name, since), daemon=True)
        self._thread.start()

    def _run(self, api: k8s.ApiClient, namespace: str, name: str, since: str) -> None:
        custom = k8s.CustomObjectsApi(api)
        stream = self._watch.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=since,
            timeout_seconds=120,
        )
        with contextlib.suppress(urllib3.exceptions.HTTPError):  # stop() closes the stream under us
            for event in stream:
                self.versions.append(event["object"])

    def stop(self) -> list[dict[str, Any]]:
        time.sleep(1.0)  # let the watch deliver the last writes
        self._watch.stop()
        return self.versions


def test_timer_reconcile_blocked_across_a_spec_change_never_reports_the_new_generation_for_the_old_spec(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("gen", spec(secret, "old")))
    first = wait_condition(kube_api, ns, "gen", "Ready", "True")
    old_hash = first["status"]["settingsHash"]
    recorder = StatusRecorder(kube_api, ns, "gen", first["metadata"]["resourceVersion"])
    blocker = psycopg.connect(db.dsn)
    try:
        blocker.execute("LOCK TABLE hub_settings IN ACCESS EXCLUSIVE MODE")
        # The periodic resync (every 4 s) now waits on the table with the old spec in hand.
        eventually(lambda: lock_waiters(db.dsn) >= 1, 20, what="the resync waiting on the table lock")
        patch(kube_api, ns, "gen", {"spec": {"settings": {"maintenance": {"maintenance_message": "new"}}}})
        time.sleep(1.5)  # the watch event reaches the operator (its timers' live body is now generation 2)
    finally:
        blocker.rollback()
        blocker.close()

    def settled() -> dict[str, Any] | None:
        obj = get(kube_api, ns, "gen")
        st = obj.get("status") or {}
        if st.get("observedGeneration") == 2 and condition(obj, "Ready").get("status") == "True":
            return obj
        return None

    # Poll status and table together while the operator catches up.
    pairs: list[tuple[dict[str, Any], str]] = []
    deadline = time.monotonic() + 30
    final: dict[str, Any] | None = None
    while time.monotonic() < deadline and final is None:
        obj = get(kube_api, ns, "gen")
        pairs.append((obj, db.values()["maintenance"]["maintenance_message"]))
        final = settled()
        time.sleep(0.05)
    assert final is not None, "generation 2 never became Ready"
    assert db.values()["maintenance"]["maintenance_message"] == "new"
    new_hash = final["status"]["settingsHash"]
    assert new_hash != old_hash, "status claims generation 2 with the settings hash of generation 1"
    for obj, table_message in pairs:
        st = obj.get("status") or {}
        if st.get("observedGeneration") == 2 and condition(obj, "Ready").get("status") == "True":
            assert table_message == "new", (
                f"status claims generation 2 while the table holds {table_message!r}"
            )
    versions = recorder.stop()
    assert versions, "the watch saw no status write"
    for obj in versions:
        st = obj.get("status") or {}
        ready = condition(obj, "Ready")
        claims_new = st.get("observedGeneration") == 2 or ready.get("observedGeneration") == 2
        if claims_new and ready.get("status") == "True":
            assert st.get("settingsHash") == new_hash, (
                "a status write claimed generation 2 with the settings of generation 1: "
                f"{st.get('settingsHash')} (old {old_hash})"
            )


def test_new_object_is_in_progress_before_any_database_work(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    # An object nobody wrote status for yet: kstatus alone calls it Current; the documented CEL does not.
    bare = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HubSettings",
        "metadata": {"name": "x", "namespace": ns, "generation": 1},
        "spec": spec(secret),
    }
    verdict = kstatus(bare)
    assert verdict["status"] == "Current" and verdict["cel"] == "InProgress"
    assert argocd_health(bare)["status"] == "Progressing"

    blocker = psycopg.connect(db.dsn)
    try:
        blocker.execute("LOCK TABLE hub_settings IN ACCESS EXCLUSIVE MODE")
        create(kube_api, ns, hubsettings("first", spec(secret)))
        eventually(lambda: lock_waiters(db.dsn) >= 1, 20, what="the first apply waiting on the table lock")
        # The operator is inside its first database transaction: status must already say so.
        obj = get(kube_api, ns, "first")
        assert condition(obj, "Reconciling").get("status") == "True", obj.get("status")
        assert condition(obj, "Ready").get("status") == "False"
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        verdict = kstatus(obj)
        assert verdict["status"] == "InProgress" and verdict["cel"] == "InProgress", verdict
        assert argocd_health(obj)["status"] == "Progressing"
    finally:
        blocker.rollback()
        blocker.close()
    obj = wait_condition(kube_api, ns, "first", "Ready", "True")
    assert kstatus(obj)["status"] == "Current" and kstatus(obj)["cel"] == "Current"
    assert argocd_health(obj)["status"] == "Healthy"


def test_database_stop_shows_within_a_health_period_and_recovery_clears_it(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess
) -> None:
    server = PgServer(max_connections=20)
    server.start()
    try:
        db = Database(server, listen=False)
        put_secret(kube_api, ns, "stop-db", {"url": db.dsn})
        create(kube_api, ns, hubsettings("outage", spec("stop-db")))
        wait_condition(kube_api, ns, "outage", "Ready", "True")
        server.stop()
        stopped = time.monotonic()
        # Probe every 1 s, bounded at max(2 s, period/2): reported well before the store's 10 s pool timeout
        # (before the fix the first report came after a pool timeout plus a reconcile, >= 20 s).
        obj = wait_condition(kube_api, ns, "outage", "Ready", "False", "DatabaseUnavailable", timeout=9)
        noticed = time.monotonic() - stopped
        print(
            f"\nDatabaseUnavailable {noticed:.1f} s after PostgreSQL stopped (health period {HEALTH_SECONDS} s)"
        )
        assert condition(obj, "Reconciling").get("status") == "True"
        assert kstatus(obj)["status"] == "InProgress" and kstatus(obj)["cel"] == "InProgress"
        assert argocd_health(obj)["status"] == "Progressing"
        server.start()
        obj = wait_condition(kube_api, ns, "outage", "Ready", "True", timeout=30)
        assert condition(obj, "Reconciling") == {} and kstatus(obj)["status"] == "Current"
        assert argocd_health(obj)["status"] == "Healthy"
    finally:
        server.cleanup()


def test_missing_secret_stalls_past_the_progress_deadline_and_recovers_when_it_appears(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, _secret = database
    create(kube_api, ns, hubsettings("late", spec("late-secret", progressDeadlineSeconds=10)))
    obj = wait_condition(kube_api, ns, "late", "Reconciling", "True", "SecretNotFound")
    assert kstatus(obj)["status"] == "InProgress" and argocd_health(obj)["status"] == "Progressing"
    obj = wait_condition(kube_api, ns, "late", "Stalled", "True", "SecretNotFound", timeout=40)
    assert condition(obj, "Reconciling") == {}
    assert condition(obj, "Ready")["status"] == "False"
    assert "progress deadline" in condition(obj, "Stalled")["message"]
    verdict = kstatus(obj)
    assert verdict["status"] == "Failed" and verdict["cel"] == "Failed", verdict
    health = argocd_health(obj)
    assert health["status"] == "Degraded" and "late-secret" in health["message"]
    put_secret(kube_api, ns, "late-secret", {"url": db.dsn})
    obj = wait_condition(kube_api, ns, "late", "Ready", "True", timeout=30)
    assert condition(obj, "Stalled") == {} and kstatus(obj)["status"] == "Current"
    assert argocd_health(obj)["status"] == "Healthy"
    assert db.values()["maintenance"]["maintenance_message"] == "hello"


def test_deletion_blocked_by_the_database_says_why(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, _secret = database
    put_secret(kube_api, ns, "del-db", {"url": db.dsn})
    create(kube_api, ns, hubsettings("gone", spec("del-db", policy={"deletion": "Delete"})))
    wait_condition(kube_api, ns, "gone", "Ready", "True")
    assert "maintenance" in db.values()
    # The database becomes unreachable (the Secret now names a port nobody listens on), then the delete.
    put_secret(kube_api, ns, "del-db", {"url": f"postgresql://hub:x@127.0.0.1:{free_port()}/hub"})
    delete(kube_api, ns, "gone")

    def blocked() -> dict[str, Any] | None:
        obj = get(kube_api, ns, "gone")
        ready = condition(obj, "Ready")
        return obj if ready.get("reason") == "Deleting" else None

    obj = eventually(blocked, 30, what="Ready=False reason Deleting")
    ready, reconciling = condition(obj, "Ready"), condition(obj, "Reconciling")
    assert ready["status"] == "False" and "deletion blocked" in ready["message"]
    assert reconciling["status"] == "True" and reconciling["reason"] == "Deleting"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert ready["observedGeneration"] == obj["metadata"]["generation"]
    assert kstatus(obj)["status"] == "Terminating"
    health = argocd_health(obj)
    assert health["status"] == "Progressing" and "deletion blocked" in health["message"]
    assert "x@127.0.0.1" not in str(obj)
    put_secret(kube_api, ns, "del-db", {"url": db.dsn})

    def gone() -> bool:
        try:
            get(kube_api, ns, "gone")
        except k8s.ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, 30, what="the object deleted once the database is back")
    assert "maintenance" not in db.values()


def test_repointed_object_releases_its_rows_in_the_old_table_so_another_can_claim_them(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer, database: tuple[Database, str]
) -> None:
    old_db, old_secret = database
    new_db = Database(pg, listen=False)
    try:
        put_secret(kube_api, ns, "mover-new", {"url": new_db.dsn})
        create(kube_api, ns, hubsettings("mover", spec(old_secret, "from mover")))
        first = wait_condition(kube_api, ns, "mover", "Ready", "True")
        old_target = first["status"]["target"]
        assert old_target["table"] == "hub_settings" and old_target["dsnFingerprint"].startswith("sha256:")
        assert old_db.values()["maintenance"]["maintenance_message"] == "from mover"
        patch(kube_api, ns, "mover", {"spec": {"database": {"secretRef": {"name": "mover-new"}}}})

        def moved() -> dict[str, Any] | None:
            obj = get(kube_api, ns, "mover")
            st = obj.get("status") or {}
            target = st.get("target") or {}
            ready = condition(obj, "Ready").get("status") == "True"
            if ready and target.get("dsnFingerprint") not in (None, old_target["dsnFingerprint"]):
                return obj
            return None

        obj = eventually(moved, 30, what="mover re-pointed to the new database")
        assert obj["status"]["target"]["secretName"] == "mover-new"
        assert new_db.values()["maintenance"]["maintenance_message"] == "from mover"
        assert old_db.dsn not in str(obj) and new_db.dsn not in str(obj) and pg.password not in str(obj)
        retargeted = eventually(
            lambda: [e for e in events(kube_api, ns, "mover") if e.reason == "Retargeted"], 20, what="event"
        )
        assert "released" in retargeted[0].message and pg.password not in retargeted[0].message
        # The old table still holds mover's row, but it is released: a second object takes the section over.
        assert old_db.rows()["maintenance"]["updated_by"] == f"hubsettings-operator:{ns}/mover"
        create(kube_api, ns, hubsettings("claimer", spec(old_secret, "from claimer")))
        wait_condition(kube_api, ns, "claimer", "Ready", "True")
        row = old_db.rows()["maintenance"]
        assert row["value"]["maintenance_message"] == "from claimer"
        assert row["updated_by"] == f"hubsettings-operator:{ns}/claimer"
    finally:
        new_db.close()


def test_spec_over_256_kib_is_applied_and_updated_without_an_annotation_overflow(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    db = Database(pg, "proposal", listen=False)
    try:
        put_secret(kube_api, ns, "big-db", {"url": db.dsn})
        # 6 values of 50,000 characters: ~300 KB of spec, over the 256 KiB all annotations may hold together.
        extra = {f"big.k{i}": "x" * 50_000 for i in range(6)}
        create(kube_api, ns, hubsettings("big", {**spec("big-db"), "extraSettings": extra}))
        obj = wait_condition(kube_api, ns, "big", "Ready", "True", timeout=60)
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        assert set(extra) <= set(db.values())
        annotations = obj["metadata"].get("annotations") or {}
        assert sum(len(k) + len(v) for k, v in annotations.items()) < 256 * 1024
        assert not any(k.endswith("last-handled-configuration") for k in annotations)
        # kopf's diff base works: a change to one key is seen as an update and applied.
        patch(kube_api, ns, "big", {"spec": {"extraSettings": {"big.k0": "y" * 50_000}}})
        eventually(lambda: db.values().get("big.k0") == "y" * 50_000, 30, what="the update applied")
        obj = eventually(
            lambda: (
                (o := get(kube_api, ns, "big"))["status"]["observedGeneration"] == o["metadata"]["generation"]
                and o
            ),
            30,
            what="status caught up",
        )
        assert condition(obj, "Ready")["status"] == "True"
        # Before: kopf's diff-base annotation made every patch of the object fail (422, throttled handling).
        logs = operator.logs()
        assert "metadata.annotations: Too long" not in logs and "APIUnprocessableEntityError" not in logs
    finally:
        db.close()

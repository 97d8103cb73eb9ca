"""Reliability guarantees of the real operator process, real kube-apiserver and PostgreSQL (issue 10).

Faults injected here: SIGKILL of the operator in the middle of a multi-key apply, a kube-apiserver restart,
the death of the active replica of two peered operators. Hostile input: a secretRef that tries to name another
namespace. Secret hygiene: after all of the above, neither the DSN password nor a secret env value read for
drift appears in logs, Events, statuses or metrics. Listed, with what each shows, in docs/reliability.md.

Over 400 lines: the failure scenarios share one operator, API server and database, and docs/reliability.md
lists them from this one file.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client as k8s

from hubsettings_operator.runtime.runner import PEERING_LIFETIME_S
from tests.support.kubeapi import (
    Database,
    condition,
    create,
    eventually,
    get,
    hubsettings,
    make_namespace,
    module_namespace,
    patch,
    put_secret,
    wait_condition,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

ROOT = Path(__file__).resolve().parents[2]
HUB_LABELS = {"app.kubernetes.io/name": "scion-hub"}
# Every operator process this module starts: the secret-hygiene test reads all of their logs.
STARTED: list[OperatorProcess] = []


def start_operator(
    kube_env: KubeTestEnv, namespace: str, log_dir: Path, name: str, **kwargs: Any
) -> OperatorProcess:
    proc = OperatorProcess(kube_env.kubeconfig, [namespace], log_dir, name=name, **kwargs)
    STARTED.append(proc)
    return proc.start()


def db_spec(secret: str, extra: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"database": {"secretRef": {"name": secret, "key": "url"}}, **fields}
    if extra is not None:
        spec["extraSettings"] = extra
    return spec


def admins(email: str) -> dict[str, Any]:
    return {"access": {"admin_emails": [email]}}


def retry_api(fn: Any, timeout: float = 30) -> Any:
    """Call the API until it answers (the client's pooled connections die with a restarted apiserver)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


ns = module_namespace("rel")


@pytest.fixture(scope="module")
def operator(
    kube_env: KubeTestEnv, ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    proc = start_operator(kube_env, ns, tmp_path_factory.mktemp("rel-operator"), "operator")
    try:
        yield proc
    finally:
        proc.stop()


# ---- faults -------------------------------------------------------------------------------------------


def _operator_backend(db: Database) -> tuple[int, str | None, str | None] | None:
    """(pid, wait_event_type, backend_xid) of the operator's backend on this database, if any."""
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid, wait_event_type, backend_xid::text FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'hubsettings-operator' AND state = 'active'",
            (db.name,),
        ).fetchone()
    return (int(row[0]), row[1], row[2]) if row else None


def test_operator_sigkilled_mid_apply_leaves_table_old_and_restart_converges_with_one_notify(
    kube_env: KubeTestEnv, kube_api: k8s.ApiClient, crd_installed: str, pg: PgServer, tmp_path: Path
) -> None:
    """Proposal profile, one row per key. The new spec writes rel.a..rel.d in key order; an uncommitted INSERT
    of rel.d in another session makes the operator's transaction wait after it wrote rel.a..rel.c. SIGKILL
    then: the table holds exactly the old rows or exactly the new ones (the COMMIT may already be on its way),
    never a mix. A restarted operator converges with exactly one NOTIFY in all."""
    del crd_installed
    ns = make_namespace(kube_api, "rel-kill")
    db = Database(pg, profile="proposal")
    put_secret(kube_api, ns, "db", {"url": db.dsn})
    first = start_operator(kube_env, ns, tmp_path, "kill-first")
    blocker: psycopg.Connection[Any] | None = None
    second: OperatorProcess | None = None
    try:
        create(kube_api, ns, hubsettings("kill", db_spec("db", {"rel.a": "old"})))
        wait_condition(kube_api, ns, "kill", "Ready", "True")
        assert len(db.drain(1.0)) == 1
        old = {k: v["value"] for k, v in db.rows().items()}
        assert old == {"rel.a": "old"}

        blocker = psycopg.connect(db.dsn)
        blocker.execute(
            "INSERT INTO hub_settings (key, value, updated_by) VALUES ('rel.d', '\"x\"', 'blocker')"
        )
        new = {k: "new" for k in ("rel.a", "rel.b", "rel.c", "rel.d")}
        patch(kube_api, ns, "kill", {"spec": {"extraSettings": new}})

        def blocked() -> tuple[int, str | None, str | None] | None:
            found = _operator_backend(db)
            return found if found and found[1] == "Lock" else None

        pid, _wait, xid = eventually(blocked, 8, 0.1, what="the operator's apply waiting on rel.d")
        assert xid is not None, "the blocked transaction has already written rows (rel.a..rel.c)"
        first.kill()
        blocker.rollback()
        eventually(lambda: _operator_backend(db) is None, 15, what=f"backend {pid} gone")

        # The writes, the NOTIFY and the COMMIT travel in one pipeline: a SIGKILL after they were sent cannot
        # take them back, so the transaction either never commits (entirely old, no NOTIFY) or commits whole
        # (entirely new, one NOTIFY). Never a mix.
        after = {k: v["value"] for k, v in db.rows().items()}
        assert after in (old, new), f"half-written: {after}"
        notified = len(db.drain(0.5))
        assert notified == (1 if after == new else 0)

        second = start_operator(kube_env, ns, tmp_path, "kill-second")
        eventually(lambda: {k: v["value"] for k, v in db.rows().items()} == new, 20, what="converged")
        time.sleep(5)  # past a resync period (4 s): no second apply
        assert notified + len(db.drain(1.0)) == 1, "converged with exactly one apply"
        wait_condition(kube_api, ns, "kill", "Ready", "True")
    finally:
        if blocker is not None:
            blocker.close()
        first.kill()
        if second is not None:
            second.stop()
        db.close()


def test_apiserver_restart_watch_resumes_and_each_change_is_applied_once(
    kube_env: KubeTestEnv,
    kube_api: k8s.ApiClient,
    ns: str,
    operator: OperatorProcess,
    database: tuple[Database, str],
) -> None:
    """kube-apiserver stopped and started, then crashed (SIGKILL) and started, under a running operator.

    A change made after the outage is applied once. A change whose apply is in flight when the server dies
    (held on a database lock, then committed while the server is down, so its status patch fails) is applied
    once, and its status catches up within seconds of the server's return (kopf's default for an unexpected
    error would be 60 s). The operator process is never restarted."""
    db, secret = database
    create(kube_api, ns, hubsettings("apisrv", db_spec(secret, settings=admins("v0@example.com"))))
    wait_condition(kube_api, ns, "apisrv", "Ready", "True")
    db.drain(1.0)
    assert operator.proc is not None
    pid = operator.proc.pid

    def email() -> Any:
        return db.rows()["access"]["value"]["admin_emails"]

    def caught_up() -> bool:
        obj = get(kube_api, ns, "apisrv")
        return bool(obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"])

    def caught_up_or_unreachable() -> bool:
        try:
            return caught_up()
        except Exception:  # our own client's pooled connections died with the server
            return False

    blocker = psycopg.connect(db.dsn, autocommit=True)
    try:
        kube_env.stop_apiserver()  # SIGTERM; KubeTestEnv SIGKILLs it after 15 s
        time.sleep(2)  # the operator's watches and keep-alives fail meanwhile
        kube_env.start_apiserver()
        retry_api(lambda: patch(kube_api, ns, "apisrv", {"spec": {"settings": admins("v1@example.com")}}))
        eventually(lambda: email() == ["v1@example.com"], 30, what="change after the restart applied")
        eventually(caught_up, 15, what="status of the change after the restart")
        time.sleep(2)
        assert len(db.drain(1.0)) == 1, "one NOTIFY for the change"

        blocker.execute(
            "SELECT pg_advisory_lock(hashtextextended('hubsettings-operator:public.hub_settings', 0))"
        )
        patch(kube_api, ns, "apisrv", {"spec": {"settings": admins("v2@example.com")}})
        eventually(
            lambda: (_operator_backend(db) or (0, None, None))[1] == "Lock", 8, 0.1, what="apply in flight"
        )
        # SIGKILL (a crash; a graceful stop outlasts the store's 10 s lock timeout), then let it commit.
        assert kube_env.apiserver_pid is not None
        os.killpg(kube_env.apiserver_pid, signal.SIGKILL)
        blocker.execute("SELECT pg_advisory_unlock_all()")
        eventually(lambda: email() == ["v2@example.com"], 10, what="in-flight change committed")
        time.sleep(2)  # its status patch fails meanwhile
        kube_env.start_apiserver()
        started = time.monotonic()
        eventually(caught_up_or_unreachable, 20, what="status after the server came back")
        print(f"status caught up {time.monotonic() - started:.1f}s after the API server came back")
        time.sleep(5)  # past a resync period
        assert len(db.drain(1.0)) == 1, "one NOTIFY for the change, no duplicate from the retry"
    finally:
        blocker.close()
        kube_env.start_apiserver()  # no-op when running; the session's other tests need it
    assert operator.proc.poll() is None and operator.proc.pid == pid, "the operator was never restarted"
    wait_condition(kube_api, ns, "apisrv", "Ready", "True", timeout=30)


def _install_peering(kube_env: KubeTestEnv, kube_api: k8s.ApiClient, namespace: str, name: str) -> None:
    base = ["kubectl", f"--kubeconfig={kube_env.kubeconfig}"]
    crds = ROOT / "helm/hubsettings-operator/crds/kopf-peerings.yaml"
    subprocess.run([*base, "apply", "--server-side", "-f", str(crds)], check=True, capture_output=True)
    subprocess.run(
        [*base, "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=30s"],
        check=True,
        capture_output=True,
    )
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
    retry_api(
        lambda: k8s.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", body
        ),
        15,
    )


def test_peered_replicas_one_active_and_standby_takes_over_within_lifetime_after_sigkill(
    kube_env: KubeTestEnv, kube_api: k8s.ApiClient, crd_installed: str, pg: PgServer, tmp_path: Path
) -> None:
    """Two replicas peer through a KopfPeering: the higher priority one works, the other keeps its watches
    paused and touches nothing. SIGKILL the active one: the standby resumes and applies a change made while
    nobody was active within the peering lifetime (PEERING_LIFETIME_S) plus a margin; each change is applied
    once."""
    del crd_installed
    ns = make_namespace(kube_api, "rel-peer")
    _install_peering(kube_env, kube_api, ns, "hubsettings-operator")
    db = Database(pg)
    put_secret(kube_api, ns, "db", {"url": db.dsn})
    peering = ["--peering", "hubsettings-operator"]
    active = start_operator(
        kube_env, ns, tmp_path, "peer-active", standalone=False, extra_args=[*peering, "--priority", "200"]
    )
    standby = start_operator(
        kube_env, ns, tmp_path, "peer-standby", standalone=False, extra_args=[*peering, "--priority", "100"]
    )
    try:
        # kopf starts every replica paused; the highest priority one resumes, the others stay paused.
        eventually(lambda: "Resuming operations after the pause" in active.logs(), 20, what="active resumed")
        paused = "Pausing the watch-stream for hubsettings.v1alpha1.scion.dev"
        eventually(lambda: paused in standby.logs(), 20, what="standby paused")
        create(kube_api, ns, hubsettings("peer", db_spec("db", settings=admins("v0@example.com"))))
        wait_condition(kube_api, ns, "peer", "Ready", "True")
        time.sleep(2)
        assert len(db.drain(1.0)) == 1, "applied once"
        assert "hubsettings.reconcile" in active.logs()
        assert "hubsettings.reconcile" not in standby.logs(), "the paused replica handled the object"
        assert "Resuming operations" not in standby.logs()

        active.kill()
        killed_at = time.monotonic()
        patch(kube_api, ns, "peer", {"spec": {"settings": admins("v1@example.com")}})
        eventually(
            lambda: db.rows()["access"]["value"]["admin_emails"] == ["v1@example.com"],
            PEERING_LIFETIME_S + 15,
            what="the standby applies the change",
        )
        takeover = time.monotonic() - killed_at
        print(f"peering takeover after SIGKILL: {takeover:.1f}s (lifetime {PEERING_LIFETIME_S}s)")
        assert takeover <= PEERING_LIFETIME_S + 10
        assert "Resuming operations after the pause" in standby.logs()
        time.sleep(2)
        assert len(db.drain(1.0)) == 1, "the change was applied once"
        wait_condition(kube_api, ns, "peer", "Ready", "True")
    finally:
        active.kill()
        standby.stop()
        db.close()


# ---- hostile input ------------------------------------------------------------------------------------


def test_secret_in_another_namespace_is_refused_and_missing_secret_is_a_condition(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    """secretRef has no namespace field: the API server refuses one under strict field validation and prunes
    it otherwise, so the operator only ever looks in the object's own namespace. A Secret of that name
    existing elsewhere is not used: the object reports SecretNotFound and nothing is written."""
    other = make_namespace(kube_api, "rel-other")
    db = Database(pg)
    try:
        put_secret(kube_api, other, "shared-db", {"url": db.dsn})
        body = hubsettings("cross", db_spec("shared-db", settings=admins("x@example.com")))
        body["spec"]["database"]["secretRef"]["namespace"] = other
        objects = k8s.CustomObjectsApi(kube_api)
        with pytest.raises(k8s.ApiException) as refused:
            objects.create_namespaced_custom_object(
                "scion.dev", "v1alpha1", ns, "hubsettings", body, field_validation="Strict"
            )
        assert refused.value.status == 400
        message = json.loads(str(refused.value.body))["message"]
        assert 'unknown field "spec.database.secretRef.namespace"' in message
        stored = create(kube_api, ns, body)
        assert stored["spec"]["database"]["secretRef"] == {"name": "shared-db", "key": "url"}
        obj = wait_condition(kube_api, ns, "cross", "Ready", "False", "SecretNotFound")
        assert f"{ns}/shared-db" in condition(obj, "Ready")["message"]
        assert condition(obj, "Reconciling")["status"] == "True"
        assert db.rows() == {} and db.drain(0.5) == []
    finally:
        db.close()


# ---- secret hygiene (runs last: it reads everything the module's operators wrote) ------------------------


def test_no_dsn_password_or_secret_env_value_in_logs_events_status_or_metrics(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    """A Hub pod takes SCION_SERVER_DATABASE_URL from a Secret with a random value (read by the drift check);
    a HubSettings uses a DSN with a wrong random password (exception text in status); the session's DSN
    password is random too. None of the three appears in any operator log, Event, HubSettings status
    or metrics output; the drift report shows the secret env value only as a fingerprint."""
    env_secret = "env-" + secrets.token_hex(16)
    wrong_password = "wrong-" + secrets.token_hex(12)
    core = k8s.CoreV1Api(kube_api)
    put_secret(kube_api, ns, "hub-env", {"url": env_secret})
    put_secret(kube_api, ns, "bad-db", {"url": pg.dsn("postgres", password=wrong_password)})
    for name, log_level in (("hub-1", "info"), ("hub-2", "debug")):
        env = [
            {"name": "SCION_SERVER_LOGLEVEL", "value": log_level},
            {
                "name": "SCION_SERVER_DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": "hub-env", "key": "url"}},
            },
        ]
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": HUB_LABELS},
            "spec": {"containers": [{"name": "hub", "image": "scion-hub:test", "env": env}]},
        }
        core.create_namespaced_pod(ns, pod)  # type: ignore[arg-type]
        core.patch_namespaced_pod_status(name, ns, {"status": {"phase": "Running"}})
    db = Database(pg)
    try:
        put_secret(kube_api, ns, "hygiene-db", {"url": db.dsn})
        bootstrap = {
            "podSelector": {"matchLabels": HUB_LABELS},
            "expected": {"server.log_level": "info", "server.database.url": "sha256:000000000000"},
        }
        create(
            kube_api,
            ns,
            hubsettings(
                "hygiene", db_spec("hygiene-db", settings=admins("a@example.com"), bootstrap=bootstrap)
            ),
        )
        create(kube_api, ns, hubsettings("badpw", db_spec("bad-db", settings=admins("a@example.com"))))
        obj = wait_condition(kube_api, ns, "hygiene", "Drifted", "True", timeout=30)
        drift_text = json.dumps(obj["status"]["drift"])
        assert "server.database.url" in drift_text and "sha256:" in drift_text

        # Reconciling/Progressing comes first (before any database work), then the error's reason.
        def failed_on_the_database() -> dict[str, Any] | None:
            obj = get(kube_api, ns, "badpw")
            reason = condition(obj, "Ready").get("reason")
            return obj if reason in ("DatabaseUnavailable", "PermissionDenied") else None

        bad = eventually(failed_on_the_database, 30, what="badpw Ready=False with the database error")
        assert condition(bad, "Ready")["status"] == "False"
        time.sleep(3)  # a few more drift and health ticks, retries, events
    finally:
        db.close()

    everything = [
        json.dumps(
            k8s.CustomObjectsApi(kube_api).list_cluster_custom_object("scion.dev", "v1alpha1", "hubsettings")
        ),
        "\n".join(f"{e.reason} {e.message}" for e in core.list_event_for_all_namespaces().items),
        operator.metrics(),
    ]
    everything += [proc.logs() for proc in STARTED]
    assert STARTED and all(everything)
    assert any("password authentication failed" in text for text in everything), "the failure was reported"
    for value in (pg.password, env_secret, wrong_password):
        for text in everything:
            assert value not in text

"""Convergence true against the real Hub's behaviour (issue 25), with real processes: the operator, a real
kube-apiserver, a real PostgreSQL and two Hub stand-ins that answer as the Hub's own code does
(`tests/support/hub_standin.py`): hub-0 of the newest Hub with a web user watching a project (its listener's last
statement is a per-project LISTEN/UNLISTEN), hub-1 an older Hub (version 0.2.4, a registry without
`telemetry`) that answers 403 to a principal without hub.config.read.

The convergence period is an hour here: every round in these tests is started by an apply, by the health
period's token check (a changed token Secret) or by a replica still behind, never by the period.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from kubernetes import client as k8s

from tests.e2e.test_convergence_e2e import make_hub_pod
from tests.support.kubeapi import (
    Database,
    condition,
    create,
    eventually,
    get,
    hubsettings,
    module_hubdb,
    module_namespace,
    module_operator,
    patch,
    put_secret,
    wait_condition,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import free_port
from tests.support.standin import StandInProcess

TOKEN = "scion_pat_" + base64.b32encode(os.urandom(10)).decode().lower()
FORBIDDEN = "scion_pat_" + base64.b32encode(os.urandom(10)).decode().lower()
WRONG = "scion_pat_" + base64.b32encode(os.urandom(10)).decode().lower()
PROJECT = "5b0e4a7e-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
OLD_SECTIONS = ["access", "agent_defaults", "endpoints", "github_app", "lifecycle", "maintenance"]

ns = module_namespace("truth")


hubdb = module_hubdb()


@pytest.fixture(scope="module")
def replicas(
    kube_api: k8s.ApiClient, ns: str, hubdb: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, StandInProcess]]:
    work, port = tmp_path_factory.mktemp("truth-standins"), free_port()
    procs = {
        "hub-0": StandInProcess(
            hubdb.dsn, "127.0.0.51", port, TOKEN, work, name="hub-0", forbidden_token=FORBIDDEN
        ),
        "hub-1": StandInProcess(
            hubdb.dsn,
            "127.0.0.52",
            port,
            TOKEN,
            work,
            name="hub-1",
            sections=OLD_SECTIONS,
            version="0.2.4",
            forbidden_token=FORBIDDEN,
        ),
    }
    for name, proc in procs.items():
        proc.start()
        make_hub_pod(kube_api, ns, name, proc.ip)
    # A web user watches a project on hub-0: its listener LISTENs that project's channel last.
    procs["hub-0"].control("project", id=PROJECT, state="watch")
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


# Rounds only from an apply, the token check or a replica behind: the period never fires in these tests.
operator = module_operator("truth-logs", ["--convergence-seconds", "3600"])


@pytest.fixture(scope="module")
def hub(
    kube_api: k8s.ApiClient,
    ns: str,
    hubdb: Database,
    replicas: dict[str, StandInProcess],
    operator: OperatorProcess,
) -> str:
    del operator
    put_secret(kube_api, ns, "hub-db", {"url": hubdb.dsn})
    put_secret(kube_api, ns, "hub-admin", {"token": TOKEN})
    spec = {
        "database": {"secretRef": {"name": "hub-db"}, "profile": "scion"},
        "settings": {"maintenance": {"admin_mode": False, "maintenance_message": "v1"}},
        "convergence": {
            "adminTokenSecretRef": {"name": "hub-admin", "key": "token"},
            "port": replicas["hub-0"].port,
            "timeoutSeconds": 30,
            "requiredForReady": True,
        },
    }
    create(kube_api, ns, hubsettings("hub", spec))
    wait_condition(kube_api, ns, "hub", "Converged", "True", "AllReplicasLoaded", timeout=60)
    return "hub"


def listener_statements(dsn: str, ip: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE host(client_addr) = %s AND query ILIKE %s",
            (ip, "%listen%"),
        ).fetchall()
    return [str(r[0]) for r in rows]


def by_name(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in obj["status"]["convergence"]["replicas"]}


def test_listener_with_a_project_channel_last_is_listening(
    kube_api: k8s.ApiClient, ns: str, hub: str, hubdb: Database, replicas: dict[str, StandInProcess]
) -> None:
    # The premise: hub-0's listener connection shows a per-project statement, not LISTEN "scion_ev_global".
    assert listener_statements(hubdb.dsn, "127.0.0.51") == [f'LISTEN "scion_ev_g_{PROJECT}"']
    obj = get(kube_api, ns, hub)
    assert by_name(obj)["hub-0"]["listening"] is True
    assert "no LISTEN" not in condition(obj, "Converged")["message"]
    # The web user leaves the project: UNLISTEN is now the last statement, and it is still the listener.
    replicas["hub-0"].control("project", id=PROJECT, state="unwatch")
    eventually(
        lambda: listener_statements(hubdb.dsn, "127.0.0.51") == [f'UNLISTEN "scion_ev_g_{PROJECT}"'],
        10,
        what="UNLISTEN",
    )
    before = hubdb.rows()["maintenance"]["revision"]
    patch(kube_api, ns, hub, {"spec": {"settings": {"maintenance": {"maintenance_message": "v2"}}}})

    def converged_on_new_revision() -> dict[str, Any] | None:
        obj = get(kube_api, ns, hub)
        conv = (obj.get("status") or {}).get("convergence") or {}
        done = condition(obj, "Converged").get("reason") == "AllReplicasLoaded"
        return obj if done and conv.get("written", {}).get("maintenance", 0) > before else None

    obj = eventually(converged_on_new_revision, 30, what="v2 converged")
    assert by_name(obj)["hub-0"]["listening"] is True and by_name(obj)["hub-1"]["listening"] is True
    assert (
        by_name(obj)["hub-1"]["version"] == "0.2.4"
        and obj["status"]["convergence"]["oldestVersion"] == "0.2.4"
    )


def test_section_unknown_to_an_older_replica(kube_api: k8s.ApiClient, ns: str, hub: str) -> None:
    patch(kube_api, ns, hub, {"spec": {"settings": {"telemetry": {"enabled": False}}}})
    obj = wait_condition(kube_api, ns, hub, "Converged", "False", "SectionsUnknownToReplica", timeout=30)
    replica = by_name(obj)["hub-1"]
    assert replica["unknownSections"] == ["telemetry"] and replica["behind"] == []
    assert replica["version"] == "0.2.4" and by_name(obj)["hub-0"]["unknownSections"] == []
    message = condition(obj, "Converged")["message"]
    assert "hub-1 (scion 0.2.4) does not know telemetry" in message
    assert "Upgrade the replica" in message and "drop it from spec.settings" in message
    ready = condition(obj, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "SectionsUnknownToReplica"
    assert "Upgrade the replica" in ready["message"]
    patch(kube_api, ns, hub, {"spec": {"settings": {"telemetry": None}}})
    wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=30)
    wait_condition(kube_api, ns, hub, "Ready", "True", timeout=30)


def test_token_secret_change_starts_a_round_and_403_is_not_401(
    kube_api: k8s.ApiClient, ns: str, hub: str, replicas: dict[str, StandInProcess], operator: OperatorProcess
) -> None:
    """Each Secret change below is seen without any apply and with an hour-long convergence period."""
    put_secret(kube_api, ns, "hub-admin", {"token": FORBIDDEN})
    obj = wait_condition(kube_api, ns, hub, "Converged", "Unknown", "TokenForbidden", timeout=30)
    message = condition(obj, "Converged")["message"]
    assert "HTTP 403 'Insufficient permissions'" in message and "hub.config.read" in message
    put_secret(kube_api, ns, "hub-admin", {"token": WRONG})
    obj = wait_condition(kube_api, ns, hub, "Converged", "Unknown", "TokenRejected", timeout=30)
    message = condition(obj, "Converged")["message"]
    assert "HTTP 401 'invalid access token'" in message and "not a valid token" in message
    put_secret(kube_api, ns, "hub-admin", {"token": TOKEN})
    wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=30)
    assert "convergence round now" in operator.logs()
    for secret in (TOKEN, FORBIDDEN, WRONG):
        assert secret not in operator.logs() and secret not in str(get(kube_api, ns, hub))


def test_ready_follows_converged_without_any_timer(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    hub: str,
    replicas: dict[str, StandInProcess],
    operator: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """requiredForReady: with the resync, health and convergence periods all an hour long, Ready still turns
    True as soon as the replica behind catches up: the convergence round releases it. (Last: it replaces the
    module's operator.)"""
    operator.stop()
    slow = ["--resync-seconds", "3600", "--health-seconds", "3600"]
    with OperatorProcess(kube_env.kubeconfig, [ns], tmp_path_factory.mktemp("truth-slow"), extra_args=slow):
        replicas["hub-1"].control("refresh", state="fail")
        try:
            patch(kube_api, ns, hub, {"spec": {"settings": {"maintenance": {"maintenance_message": "slow"}}}})
            obj = wait_condition(kube_api, ns, hub, "Ready", "False", "ReplicasBehind", timeout=30)
            assert condition(obj, "Synced")["status"] == "True"
        finally:
            replicas["hub-1"].control("refresh", state="ok")
        replicas["hub-1"].control("poll")
        obj = wait_condition(kube_api, ns, hub, "Ready", "True", "Synced", timeout=30)
        assert condition(obj, "Converged")["status"] == "True"

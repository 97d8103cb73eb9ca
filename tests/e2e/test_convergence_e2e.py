"""Convergence confirmed per replica (issue 17), with real processes: the operator, a real kube-apiserver, a
real PostgreSQL, and three Hub stand-ins (`tests/support/hub_standin.py`) each on its own loopback address.

No kubelet runs: the Hub pods are API objects whose status (phase, podIP = the stand-in's 127.0.0.x address)
the test sets through the status subresource, so the operator calls the stand-ins as it would call pods.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.support.kubeapi import (
    Database,
    condition,
    create,
    delete_pod,
    events,
    eventually,
    get,
    hubsettings,
    module_hubdb,
    module_namespace,
    patch,
    put_secret,
    running_pod,
    wait_condition,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import free_port
from tests.support.standin import StandInProcess

LABELS = {"app.kubernetes.io/name": "scion-hub"}
TOKEN = "hub-admin-token-" + base64.b32encode(os.urandom(10)).decode().lower()
WRONG_TOKEN = "not-the-token-" + base64.b32encode(os.urandom(10)).decode().lower()
IPS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]


def make_hub_pod(api: k8s.ApiClient, namespace: str, name: str, ip: str) -> str:
    return running_pod(api, namespace, name, LABELS, ip=ip)


ns = module_namespace("converge")


hubdb = module_hubdb()


@pytest.fixture(scope="module")
def hub_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def replicas(
    kube_api: k8s.ApiClient, ns: str, hubdb: Database, hub_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, StandInProcess]]:
    work = tmp_path_factory.mktemp("standins")
    procs = {
        f"hub-{i}": StandInProcess(hubdb.dsn, ip, hub_port, TOKEN, work, name=f"hub-{i}").start()
        for i, ip in enumerate(IPS)
    }
    for name, proc in procs.items():
        make_hub_pod(kube_api, ns, name, proc.ip)
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="module")
def operator(
    kube_env: KubeTestEnv, ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    old = os.environ.get("HUBSETTINGS_CONVERGENCE_SECONDS")
    os.environ["HUBSETTINGS_CONVERGENCE_SECONDS"] = "2"
    try:
        with OperatorProcess(kube_env.kubeconfig, [ns], tmp_path_factory.mktemp("converge-logs")) as proc:
            yield proc
    finally:
        if old is None:
            os.environ.pop("HUBSETTINGS_CONVERGENCE_SECONDS", None)
        else:
            os.environ["HUBSETTINGS_CONVERGENCE_SECONDS"] = old


@pytest.fixture(scope="module")
def hub(
    kube_api: k8s.ApiClient,
    ns: str,
    hubdb: Database,
    hub_port: int,
    replicas: dict[str, StandInProcess],
    operator: OperatorProcess,
) -> str:
    """The HubSettings under test, converged once."""
    del replicas, operator
    put_secret(kube_api, ns, "hub-db", {"url": hubdb.dsn})
    put_secret(kube_api, ns, "hub-admin", {"token": TOKEN})
    spec = {
        "database": {"secretRef": {"name": "hub-db"}, "profile": "scion"},
        "settings": {"maintenance": {"admin_mode": False, "maintenance_message": "v1"}},
        "convergence": {
            "adminTokenSecretRef": {"name": "hub-admin", "key": "token"},
            "port": hub_port,
            "timeoutSeconds": 4,
        },
    }
    create(kube_api, ns, hubsettings("hub", spec))
    wait_condition(kube_api, ns, "hub", "Converged", "True", "AllReplicasLoaded", timeout=60)
    return "hub"


def set_message(api: k8s.ApiClient, ns: str, name: str, text: str) -> None:
    patch(
        api,
        ns,
        name,
        {"spec": {"settings": {"maintenance": {"admin_mode": False, "maintenance_message": text}}}},
    )


def written(api: k8s.ApiClient, ns: str, name: str, revision: int) -> dict[str, Any] | None:
    obj = get(api, ns, name)
    conv = (obj.get("status") or {}).get("convergence") or {}
    return obj if conv.get("written", {}).get("maintenance") == revision else None


def assert_no_token(api: k8s.ApiClient, ns: str, operator: OperatorProcess) -> None:
    text = (
        str(get(api, ns, "hub")) + " ".join(str(e.message) for e in events(api, ns, "hub")) + operator.logs()
    )
    assert TOKEN not in text and WRONG_TOKEN not in text


def test_all_replicas_converge_with_per_pod_revisions(
    kube_api: k8s.ApiClient, ns: str, hub: str, hubdb: Database, operator: OperatorProcess
) -> None:
    obj = get(kube_api, ns, hub)
    conv = obj["status"]["convergence"]
    revision = hubdb.rows()["maintenance"]["revision"]
    assert conv["written"] == {"maintenance": revision}
    assert conv["summary"] == "3/3"
    assert [r["name"] for r in conv["replicas"]] == ["hub-0", "hub-1", "hub-2"]
    for replica in conv["replicas"]:
        assert replica["listening"] is True and replica["loaded"] == {"maintenance": revision}
        assert replica["behind"] == [] and replica["checkedAt"]
    assert condition(obj, "Ready")["status"] == "True"
    # A change: every replica gets it through its listener (their poll backstop is 10 minutes here).
    set_message(kube_api, ns, hub, "v2")
    obj = eventually(lambda: written(kube_api, ns, hub, revision + 1), 30, what="revision written")
    obj = wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=30)
    assert all(r["loaded"] == {"maintenance": revision + 1} for r in obj["status"]["convergence"]["replicas"])
    assert "hubsettings_convergence_seconds_count" in operator.metrics()
    assert_no_token(kube_api, ns, operator)


def test_listener_stopped_is_listener_missing_until_its_poll(
    kube_api: k8s.ApiClient, ns: str, hub: str, replicas: dict[str, StandInProcess], hubdb: Database
) -> None:
    replicas["hub-1"].control("listener", state="off")
    try:
        set_message(kube_api, ns, hub, "v3")
        obj = wait_condition(kube_api, ns, hub, "Converged", "False", "ListenerMissing", timeout=30)
        assert "hub-1" in condition(obj, "Converged")["message"]
        revision = hubdb.rows()["maintenance"]["revision"]
        by_name = {r["name"]: r for r in obj["status"]["convergence"]["replicas"]}
        assert by_name["hub-1"]["listening"] is False and by_name["hub-1"]["behind"] == ["maintenance"]
        assert by_name["hub-0"]["loaded"] == {"maintenance": revision}
        # Its poll backstop fires: loaded, so converged, and the message still names the missing listener.
        replicas["hub-1"].control("poll")
        obj = wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=30)
        assert "no LISTEN scion_ev_global connection from hub-1" in condition(obj, "Converged")["message"]
    finally:
        replicas["hub-1"].control("listener", state="on")
    eventually(
        lambda: "no LISTEN" not in condition(get(kube_api, ns, hub), "Converged").get("message", "x"),
        30,
        what="listener back",
    )


def test_failed_refresh_is_replicas_behind_with_a_warning_event(
    kube_api: k8s.ApiClient, ns: str, hub: str, replicas: dict[str, StandInProcess]
) -> None:
    replicas["hub-2"].control("refresh", state="fail")
    try:
        set_message(kube_api, ns, hub, "v4")
        obj = wait_condition(kube_api, ns, hub, "Converged", "False", "ReplicasBehind", timeout=30)
        assert "hub-2 behind on maintenance" in condition(obj, "Converged")["message"]
        # Still behind after spec.convergence.timeoutSeconds (4 s here): one Warning Event names the pod.
        warning = eventually(
            lambda: [
                e for e in events(kube_api, ns, hub) if e.reason == "ReplicasBehind" and e.type == "Warning"
            ],
            30,
            what="ReplicasBehind event",
        )
        assert "hub-2" in str(warning[0].message)
        assert replicas["hub-2"].state()["failed_refreshes"] >= 1
    finally:
        replicas["hub-2"].control("refresh", state="ok")
    replicas["hub-2"].control("poll")
    wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=30)


def test_wrong_token_is_a_clear_reason_and_one_request_per_round(
    kube_api: k8s.ApiClient,
    ns: str,
    hub: str,
    replicas: dict[str, StandInProcess],
    operator: OperatorProcess,
) -> None:
    put_secret(kube_api, ns, "hub-admin", {"token": WRONG_TOKEN})
    try:
        before = {name: proc.state()["requests"] for name, proc in replicas.items()}
        obj = wait_condition(kube_api, ns, hub, "Converged", "Unknown", "TokenRejected", timeout=30)
        message = condition(obj, "Converged")["message"]
        assert "HTTP 401" in message and "adminTokenSecretRef" in message
        # Listener presence is still reported without a usable token.
        assert all(r["listening"] is True for r in obj["status"]["convergence"]["replicas"])
        eventually(
            lambda: any(e.reason == "TokenRejected" for e in events(kube_api, ns, hub)), 20, what="event"
        )
        after = {name: proc.state()["requests"] for name, proc in replicas.items()}
        # A rejected token ends the round at the first pod: the others are never asked with it.
        assert after["hub-0"] > before["hub-0"]
        assert after["hub-1"] == before["hub-1"] and after["hub-2"] == before["hub-2"]
        assert_no_token(kube_api, ns, operator)
    finally:
        put_secret(kube_api, ns, "hub-admin", {"token": TOKEN})
    wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=60)


def test_pod_restarted_mid_check(
    kube_api: k8s.ApiClient,
    ns: str,
    hub: str,
    replicas: dict[str, StandInProcess],
    hubdb: Database,
) -> None:
    """hub-1's process dies while a change is pending, then its pod is replaced (new uid, same name and IP)."""
    old = replicas["hub-1"]
    old.kill()
    set_message(kube_api, ns, hub, "v5")
    # Never claimed converged while a selected pod cannot answer: its listener is gone and it is unreachable.
    obj = wait_condition(kube_api, ns, hub, "Converged", "False", "ListenerMissing", timeout=30)
    message = condition(obj, "Converged")["message"]
    assert "hub-1: unreachable" in message and obj["status"]["convergence"]["summary"] == "2/3"
    old_uid = str(k8s.CoreV1Api(kube_api).read_namespaced_pod("hub-1", ns).metadata.uid)
    delete_pod(kube_api, ns, "hub-1")
    new = StandInProcess(hubdb.dsn, old.ip, old.port, TOKEN, old.log_path.parent, name="hub-1b").start()
    replicas["hub-1"] = new
    uid = make_hub_pod(kube_api, ns, "hub-1", new.ip)
    assert uid != old_uid

    def converged_three() -> dict[str, Any] | None:
        obj = get(kube_api, ns, hub)
        ok = condition(obj, "Converged").get("status") == "True"
        return obj if ok and obj["status"]["convergence"]["summary"] == "3/3" else None

    obj = eventually(converged_three, 60, what="3/3 converged")
    conv = obj["status"]["convergence"]
    assert [r["name"] for r in conv["replicas"]] == ["hub-0", "hub-1", "hub-2"]
    revision = hubdb.rows()["maintenance"]["revision"]
    assert all(r["loaded"] == {"maintenance": revision} for r in conv["replicas"])


def test_required_for_ready_holds_ready_until_loaded(
    kube_api: k8s.ApiClient, ns: str, hub: str, replicas: dict[str, StandInProcess]
) -> None:
    patch(kube_api, ns, hub, {"spec": {"convergence": {"requiredForReady": True}}})
    wait_condition(kube_api, ns, hub, "Ready", "True", timeout=30)
    replicas["hub-0"].control("refresh", state="fail")
    try:
        set_message(kube_api, ns, hub, "v6")
        obj = wait_condition(kube_api, ns, hub, "Ready", "False", "ReplicasBehind", timeout=30)
        assert "requiredForReady" in condition(obj, "Ready")["message"]
        assert condition(obj, "Synced")["status"] == "True"  # written; only the replicas lag
    finally:
        replicas["hub-0"].control("refresh", state="ok")
    replicas["hub-0"].control("poll")
    wait_condition(kube_api, ns, hub, "Converged", "True", "AllReplicasLoaded", timeout=30)
    wait_condition(kube_api, ns, hub, "Ready", "True", timeout=30)
    patch(kube_api, ns, hub, {"spec": {"convergence": {"requiredForReady": False}}})


def test_stand_in_logs_the_hub_reload_line(replicas: dict[str, StandInProcess]) -> None:
    assert "Received settings update event section=maintenance" in replicas["hub-0"].logs()


def test_cli_converge_exit_codes(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    hub: str,
    hub_port: int,
    hubdb: Database,
    replicas: dict[str, StandInProcess],
    tmp_path: Path,
) -> None:
    """`hubsettings converge --wait`: 0 when every replica loaded the written revisions, 1 naming the pods behind."""
    manifest = tmp_path / "hub.yaml"
    manifest.write_text(
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\n"
        f"metadata: {{name: {hub}, namespace: {ns}}}\n"
        "spec:\n"
        "  database: {secretRef: {name: hub-db}, profile: scion}\n"
        "  convergence:\n"
        "    adminTokenSecretRef: {name: hub-admin, key: token}\n"
        f"    port: {hub_port}\n"
    )

    def run(timeout: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "hubsettings_operator.cli",
                "converge",
                "-f",
                str(manifest),
                "--kubeconfig",
                str(kube_env.kubeconfig),
                "--wait",
                "--timeout",
                timeout,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ok = run("30s")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "hub-0" in ok.stdout and "AllReplicasLoaded" in ok.stdout
    replicas["hub-2"].control("refresh", state="fail")
    try:
        revision = hubdb.rows()["maintenance"]["revision"]
        set_message(kube_api, ns, hub, "cli")
        eventually(lambda: written(kube_api, ns, hub, revision + 1), 30, what="revision written")
        behind = run("3s")
        assert behind.returncode == 1, behind.stdout + behind.stderr
        assert "not converged: hub-2" in behind.stderr and "behind: maintenance" in behind.stdout
        assert TOKEN not in behind.stdout + behind.stderr and hubdb.dsn not in behind.stdout + behind.stderr
    finally:
        replicas["hub-2"].control("refresh", state="ok")
    replicas["hub-2"].control("poll")
    assert run("30s").returncode == 0

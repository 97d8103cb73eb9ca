"""Layer 0 drift reported by the real operator from real Pod objects (issue 7).

No kubelet runs here: the test creates Pod objects and sets their phase through the status subresource.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from tests.support.kubeapi import (
    bootstrap_spec,
    condition,
    create,
    delete_pod,
    events,
    eventually,
    get,
    hubsettings,
    make_namespace,
    module_namespace,
    module_operator,
    put_secret,
    running_pod,
    wait_condition,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

LABELS = {"app.kubernetes.io/name": "scion-hub"}


def make_pod(
    api: k8s.ApiClient,
    namespace: str,
    name: str,
    env: dict[str, str],
    secret_env: dict[str, tuple[str, str]] | None = None,
) -> None:
    env_list: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in env.items()]
    for var, (secret, key) in (secret_env or {}).items():
        env_list.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    running_pod(api, namespace, name, LABELS, env=env_list)


def recreate_pod(api: k8s.ApiClient, namespace: str, name: str, env: dict[str, str], **kw: Any) -> None:
    delete_pod(api, namespace, name)
    make_pod(api, namespace, name, env, **kw)


ns = module_namespace("drift")


operator = module_operator("drift-logs")


GOOD = {"SCION_SERVER_LOGLEVEL": "info", "SCION_SERVER_AUTH_MODE": "oauth", "SCION_SERVER_HUB_PORT": "9810"}


def test_drift_appears_names_pod_key_and_env_then_clears(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    put_secret(kube_api, ns, "hub-db", {"url": pg.superuser_dsn})
    put_secret(kube_api, ns, "hub-env", {"dsn": pg.superuser_dsn})
    for i in range(3):
        make_pod(kube_api, ns, f"hub-{i}", GOOD, secret_env={"SCION_SERVER_DATABASE_URL": ("hub-env", "dsn")})
    spec = bootstrap_spec(
        "drift_settings",
        {
            "container": "hub",
            "expected": {"server.log_level": "info", "server.auth.mode": "oauth"},
        },
    )
    create(kube_api, ns, hubsettings("hub", spec))
    obj = wait_condition(kube_api, ns, "hub", "Drifted", "False", "BootstrapConsistent")
    drift = obj["status"]["drift"]
    assert drift["checkedPods"] == 3 and drift["driftedPods"] == 0 and drift["items"] == []
    assert condition(obj, "Ready")["status"] == "True"  # drift never affects Ready

    # One pod is rolled with another log level: drift within one timer period (2 s here).
    started = time.monotonic()
    recreate_pod(
        kube_api,
        ns,
        "hub-1",
        {**GOOD, "SCION_SERVER_LOGLEVEL": "debug"},
        secret_env={"SCION_SERVER_DATABASE_URL": ("hub-env", "dsn")},
    )
    obj = wait_condition(kube_api, ns, "hub", "Drifted", "True", "BootstrapMismatch", timeout=20)
    elapsed = time.monotonic() - started
    [item] = obj["status"]["drift"]["items"]
    assert item["pod"] == "hub-1" and item["key"] == "server.log_level"
    assert item["env"] == "SCION_SERVER_LOGLEVEL" and item["expected"] == "info" and item["actual"] == "debug"
    assert (
        "hub-1" not in condition(obj, "Drifted")["message"]
        or "server.log_level" in condition(obj, "Drifted")["message"]
    )
    assert elapsed < 20
    assert any(e.reason == "DriftDetected" for e in events(kube_api, ns, "hub"))
    # The DSN from the Secret-backed env var is never shown, not even as part of a drift report.
    assert pg.password not in str(obj)

    # Fixed: drift clears, with an event.
    recreate_pod(kube_api, ns, "hub-1", GOOD, secret_env={"SCION_SERVER_DATABASE_URL": ("hub-env", "dsn")})
    obj = wait_condition(kube_api, ns, "hub", "Drifted", "False", "BootstrapConsistent", timeout=20)
    assert obj["status"]["drift"]["items"] == []
    eventually(lambda: any(e.reason == "DriftCleared" for e in events(kube_api, ns, "hub")), 10)


def test_secret_valued_drift_shows_fingerprints_only(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    """Two pods reach different databases: reported by fingerprint, never by value."""
    other = "postgresql://someone:zz-other-pass-91@db2:5432/hub"
    put_secret(kube_api, ns, "hub-db", {"url": pg.superuser_dsn})
    put_secret(kube_api, ns, "fp-a", {"dsn": pg.superuser_dsn})
    put_secret(kube_api, ns, "fp-b", {"dsn": other})
    labels_env = {**GOOD}
    make_pod(kube_api, ns, "fp-0", labels_env, secret_env={"SCION_SERVER_DATABASE_URL": ("fp-a", "dsn")})
    make_pod(kube_api, ns, "fp-1", labels_env, secret_env={"SCION_SERVER_DATABASE_URL": ("fp-a", "dsn")})
    make_pod(kube_api, ns, "fp-2", labels_env, secret_env={"SCION_SERVER_DATABASE_URL": ("fp-b", "dsn")})
    spec = bootstrap_spec(
        "fp_settings",
        {
            "podSelector": {
                "matchLabels": LABELS,
                "matchExpressions": [{"key": "nope", "operator": "DoesNotExist"}],
            },
            "expected": {"server.log_level": "info"},
        },
    )
    create(kube_api, ns, hubsettings("fp", spec))

    def drifted_on_dsn() -> dict[str, Any] | None:
        obj = get(kube_api, ns, "fp")
        items = (obj.get("status") or {}).get("drift", {}).get("items", [])
        hits = [i for i in items if i["key"] == "server.database.url" and i["pod"] == "fp-2"]
        return hits[0] if hits else None

    item = eventually(drifted_on_dsn, 30, what="DSN drift on fp-2")
    assert item["reason"] == "differsFromPeers"
    assert str(item["actual"]).startswith("sha256:") and str(item["expected"]).startswith("sha256:")
    status_text = str(get(kube_api, ns, "fp")["status"])
    assert "zz-other-pass-91" not in status_text and pg.password not in status_text
    assert "zz-other-pass-91" not in operator.logs()


def test_drift_cli_from_a_workstation(
    kube_api: k8s.ApiClient, kube_env: KubeTestEnv, ns: str, tmp_path: Path, pg: PgServer
) -> None:
    """`hubsettings drift` with the user's kubeconfig: exit 3 on drift naming pod/key/env, 0 when clean."""
    cli_ns = make_namespace(kube_api, "driftcli")
    put_secret(kube_api, cli_ns, "env", {"dsn": pg.superuser_dsn})
    make_pod(kube_api, cli_ns, "a", GOOD, secret_env={"SCION_SERVER_DATABASE_URL": ("env", "dsn")})
    make_pod(
        kube_api,
        cli_ns,
        "b",
        {**GOOD, "SCION_SERVER_AUTH_MODE": "dev"},
        secret_env={"SCION_SERVER_DATABASE_URL": ("env", "dsn")},
    )
    manifest = tmp_path / "hs.yaml"
    manifest.write_text(
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\n"
        f"metadata: {{name: hub, namespace: {cli_ns}}}\n"
        "spec:\n  database: {secretRef: {name: db}}\n"
        "  bootstrap: {expected: {server.auth.mode: oauth}}\n"
    )

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "hubsettings_operator.cli",
                "drift",
                "-f",
                str(manifest),
                "--kubeconfig",
                str(kube_env.kubeconfig),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    drifted = run()
    assert drifted.returncode == 3, drifted.stderr
    assert (
        "b" in drifted.stdout
        and "server.auth.mode" in drifted.stdout
        and "SCION_SERVER_AUTH_MODE" in drifted.stdout
    )
    assert pg.password not in drifted.stdout + drifted.stderr
    recreate_pod(kube_api, cli_ns, "b", GOOD, secret_env={"SCION_SERVER_DATABASE_URL": ("env", "dsn")})
    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr

"""`helm upgrade` with a changed value rolls the operator and it keeps working; `helm uninstall` leaves the
CRD, the HubSettings and the rows (docs/runbook.md, "Uninstalling")."""

from __future__ import annotations

import json
import time

from tests.cluster.helpers import (
    HUB_NS,
    OPERATOR_NS,
    RELEASE,
    QuickStart,
    kget,
    operator_pods,
    sh,
    wait_for,
    wait_operator_ready,
    wait_until,
)
from tests.support.chart import CHART_DIR
from tests.support.nodeenv import NodeCluster


def _patch_message(cluster: NodeCluster, quickstart: QuickStart, message: str) -> None:
    patch = {"spec": {"settings": {"maintenance": {"admin_mode": False, "maintenance_message": message}}}}
    cluster.kubectl("-n", HUB_NS, "patch", "hs", "hub", "--type=merge", "-p", json.dumps(patch))
    wait_for(
        cluster,
        f"maintenance_message {message!r} committed",
        lambda: quickstart.db.values().get("maintenance", {}).get("maintenance_message") == message,
        timeout=240,
    )


def test_upgrade_changes_log_level_and_keeps_working(
    node_cluster: NodeCluster, quickstart: QuickStart
) -> None:
    before = {p["metadata"]["name"] for p in wait_operator_ready(node_cluster)}
    sh(
        node_cluster,
        [
            "helm",
            "upgrade",
            RELEASE,
            str(CHART_DIR),
            "-n",
            OPERATOR_NS,
            "--reuse-values",
            "--set",
            "extraArgs={--log-level,DEBUG}",
            "--wait",
            "--timeout",
            "5m",
        ],
    )
    pods = wait_until(
        node_cluster,
        "2 new operator pods Ready",
        lambda: wait_operator_ready(node_cluster),
        lambda ps: not before & {p["metadata"]["name"] for p in ps},
        timeout=300,
    )
    for pod in pods:
        assert pod["spec"]["containers"][0]["args"][-2:] == ["--log-level", "DEBUG"]
    _patch_message(node_cluster, quickstart, f"after upgrade {time.time():.0f}")


def test_uninstall_keeps_crd_hubsettings_and_rows(node_cluster: NodeCluster, quickstart: QuickStart) -> None:
    wait_operator_ready(node_cluster)
    _patch_message(node_cluster, quickstart, "before uninstall")
    sh(node_cluster, ["helm", "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "5m"])
    wait_for(node_cluster, "operator pods gone", lambda: not operator_pods(node_cluster), timeout=180)
    assert kget(node_cluster, "crd", "hubsettings.scion.dev")["metadata"]["name"] == "hubsettings.scion.dev"
    hs = kget(node_cluster, "hubsettings", "-n", HUB_NS, "hub")
    assert "hubsettings.scion.dev/finalizer" in hs["metadata"].get("finalizers", [])
    assert quickstart.db.values()["maintenance"]["maintenance_message"] == "before uninstall"

"""Layer 0 drift of real Hub pods from a Deployment (3 replicas of the Hub stand-in image): values from env,
valueFrom Secret and ConfigMap, envFrom and a mounted settings.yaml. A rollout stuck halfway leaves one pod
that differs: reported for that pod only, secret-valued keys as fingerprints; rolling out a fixed template
clears it."""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import urlsplit

from tests.cluster.helpers import HUB_NS, QuickStart, hubsettings, kget, sh, wait_for, wait_hs_ready
from tests.support.nodeenv import Images, NodeCluster

HUB = "scion-hub"
EXPECTED = {"server.log_level": "info", "server.auth.mode": "oauth", "server.hub.port": 9810}


def _apply(cluster: NodeCluster, *objs: dict[str, Any]) -> None:
    subprocess.run(
        ["kubectl", "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}),
        env=cluster.env(),
        capture_output=True,
        text=True,
        check=True,
    )


def _deployment(
    image: str, *, log_level: str, db_secret: str, revision: str, never_ready: bool
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "hub",
        "image": image,
        "imagePullPolicy": "Never",
        # The stand-in image's entrypoint is the project's reference Hub module; here it only needs to be
        # running with the Hub's environment, so it idles (drift reads the pod spec, not the process).
        "command": ["python", "-c", "import time\nwhile True: time.sleep(3600)"],
        "env": [
            {"name": "SCION_SERVER_LOGLEVEL", "value": log_level},
            {
                "name": "SCION_SERVER_DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": db_secret, "key": "url"}},
            },
            {
                "name": "SCION_SERVER_AUTH_MODE",
                "valueFrom": {"configMapKeyRef": {"name": "hub-config", "key": "mode"}},
            },
        ],
        "envFrom": [{"configMapRef": {"name": "hub-env"}}],
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/scion", "readOnly": True}],
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if never_ready:
        container["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": HUB, "namespace": HUB_NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": HUB}},
            # A new pod must become Ready before an old one goes: a bad template stalls with one new pod.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": HUB},
                    "annotations": {"revision": revision},
                },
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [container],
                    "volumes": [{"name": "settings", "configMap": {"name": "hub-settings"}}],
                },
            },
        },
    }


def _drift(cluster: NodeCluster) -> dict[str, Any]:
    return dict((hubsettings(cluster).get("status") or {}).get("drift") or {})


def _hub_pods(cluster: NodeCluster) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kget(cluster, "pods", "-n", HUB_NS, "-l", f"app.kubernetes.io/name={HUB}")[
        "items"
    ]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_hub_pods_drift_reported_then_cleared_by_rollout(
    node_cluster: NodeCluster, quickstart: QuickStart, node_images: Images
) -> None:
    other_dsn = quickstart.pod_dsn.replace(quickstart.db.name, quickstart.db.name + "_other")
    _apply(
        node_cluster,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hub-config", "namespace": HUB_NS},
            "data": {"mode": "oauth"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hub-env", "namespace": HUB_NS},
            "data": {"SCION_SERVER_LOGFORMAT": "json"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "hub-settings", "namespace": HUB_NS},
            "data": {"settings.yaml": "server:\n  hub:\n    port: 9810\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hub-db-other", "namespace": HUB_NS},
            "stringData": {"url": other_dsn},
        },
    )
    sh(node_cluster, ["kubectl", "apply", "-f", "examples/full.yaml"])
    assert wait_hs_ready(node_cluster)["spec"]["bootstrap"]["expected"] == EXPECTED
    image = node_images.hub
    _apply(
        node_cluster,
        _deployment(image, log_level="info", db_secret="hub-db", revision="1", never_ready=False),
    )
    sh(node_cluster, ["kubectl", "-n", HUB_NS, "rollout", "status", f"deployment/{HUB}", "--timeout=240s"])
    wait_for(
        node_cluster,
        "3 consistent Hub pods checked",
        lambda: (d := _drift(node_cluster)).get("checkedPods") == 3 and d.get("items") == [],
        timeout=240,
    )

    # A bad template stalls after one new pod (never Ready): debug log level, another database.
    _apply(
        node_cluster,
        _deployment(image, log_level="debug", db_secret="hub-db-other", revision="2", never_ready=True),
    )
    rs2 = wait_for(
        node_cluster,
        "the stalled rollout's new pod",
        lambda: [
            p
            for p in _hub_pods(node_cluster)
            if p["metadata"]["annotations"].get("revision") == "2" and p["status"].get("phase") == "Running"
        ],
    )
    (bad,) = rs2
    bad_name = bad["metadata"]["name"]
    drift = wait_for(
        node_cluster,
        f"drift reported for {bad_name}",
        lambda: d if (d := _drift(node_cluster)).get("checkedPods") == 4 and d.get("items") else None,
        timeout=240,
    )
    assert {i["pod"] for i in drift["items"]} == {bad_name}, drift
    by_key = {i["key"]: i for i in drift["items"]}
    assert (
        by_key["server.log_level"]["expected"] == "info" and by_key["server.log_level"]["actual"] == "debug"
    )
    db_item = by_key["server.database.url"]
    assert str(db_item["actual"]).startswith("sha256:"), db_item
    status_text = json.dumps(hubsettings(node_cluster)["status"])
    assert quickstart.pod_dsn not in status_text and other_dsn not in status_text
    password = urlsplit(quickstart.pod_dsn).password
    assert password and password not in status_text

    # Rolling out a fixed template replaces every pod: the drift clears.
    _apply(
        node_cluster,
        _deployment(image, log_level="info", db_secret="hub-db", revision="3", never_ready=False),
    )
    sh(node_cluster, ["kubectl", "-n", HUB_NS, "rollout", "status", f"deployment/{HUB}", "--timeout=240s"])
    wait_for(
        node_cluster,
        "drift cleared after the fixed rollout",
        lambda: (d := _drift(node_cluster)).get("checkedPods") == 3 and d.get("items") == [],
        timeout=240,
    )
    assert {p["metadata"]["annotations"]["revision"] for p in _hub_pods(node_cluster)} == {"3"}

"""The operator's pod watch is filtered by the API server (issue 18.1): pods outside --pod-selector never reach
the operator, set-based selectors work, and a HubSettings whose podSelector reaches outside the watch says so.
"""

from __future__ import annotations

import re

from kubernetes import client as k8s

from tests.support.kubeapi import (
    bootstrap_spec,
    condition,
    create,
    eventually,
    get,
    hubsettings,
    module_namespace,
    module_operator,
    put_secret,
    running_pod,
)
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

SELECTOR = "app in (hub), tier!=agent, !canary"
GOOD = {"SCION_SERVER_LOGLEVEL": "info", "SCION_SERVER_AUTH_MODE": "oauth"}


def make_pod(api: k8s.ApiClient, namespace: str, name: str, labels: dict[str, str]) -> None:
    running_pod(api, namespace, name, labels, env=[{"name": k, "value": v} for k, v in GOOD.items()])


ns = module_namespace("podsel")


operator = module_operator("podsel-logs", extra_args=["--pod-selector", SELECTOR])


def indexed(operator: OperatorProcess) -> float | None:
    m = re.search(r"^hubsettings_indexed_pods (\S+)$", operator.metrics(), re.M)
    return float(m.group(1)) if m else None


def test_only_selected_pods_reach_the_operator(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, pg: PgServer
) -> None:
    put_secret(kube_api, ns, "hub-db", {"url": pg.superuser_dsn})
    make_pod(kube_api, ns, "hub-a", {"app": "hub"})
    make_pod(kube_api, ns, "hub-b", {"app": "hub", "tier": "web"})
    for i in range(5):
        make_pod(kube_api, ns, f"agent-{i}", {"app": "hub", "tier": "agent"})
    make_pod(kube_api, ns, "canary", {"app": "hub", "canary": "yes"})
    make_pod(kube_api, ns, "web", {"app": "web"})
    spec = bootstrap_spec(
        "ps",
        {
            "podSelector": {
                "matchLabels": {"app": "hub"},
                "matchExpressions": [
                    {"key": "tier", "operator": "NotIn", "values": ["agent"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "expected": {"server.log_level": "info"},
        },
    )
    create(kube_api, ns, hubsettings("inside", spec))

    def checked_two() -> bool:
        drift = (get(kube_api, ns, "inside").get("status") or {}).get("drift") or {}
        return drift.get("checkedPods") == 2

    eventually(checked_two, 40, what="2 Hub pods checked")
    # The index holds exactly the two selected pods: the seven others never reached the operator.
    assert eventually(lambda: indexed(operator) == 2.0, 20, what="indexed_pods == 2")
    logs = operator.logs()
    assert f"indexed pod {ns}/hub-a" in logs and f"indexed pod {ns}/hub-b" in logs
    for outside in ("agent-0", "agent-4", "canary", "web"):
        assert f"{ns}/{outside}" not in logs
    assert (
        "not within the operator's --pod-selector"
        not in condition(get(kube_api, ns, "inside"), "Drifted")["message"]
    )


def test_a_podselector_outside_the_watch_is_named_not_silent(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess
) -> None:
    spec = bootstrap_spec(
        "ps2",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "expected": {"server.log_level": "info"},
        },
    )
    create(kube_api, ns, hubsettings("outside", spec))

    def warned() -> str | None:
        message = condition(get(kube_api, ns, "outside"), "Drifted").get("message", "")
        return message if "not within the operator's --pod-selector" in message else None

    message = eventually(warned, 40, what="outside-watch message")
    assert "app=web" in message and "app in (hub),tier!=agent,!canary" in message
    assert condition(get(kube_api, ns, "outside"), "Drifted")["reason"] == "NoPods"

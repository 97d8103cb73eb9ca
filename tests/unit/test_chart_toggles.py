"""The chart's optional parts (issue 23): monitoring, NetworkPolicy, aggregated roles, the namespaced-only
mode, the helm test hook, and the metadata a review asks for. Rendered by the real `helm`; what the API
server says about the same objects is tests/e2e/test_chart_toggles_e2e.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import yaml

from hubsettings_operator.spec.validation import validate_spec
from tests.support.chart import (
    CHART_DIR,
    COMBINATIONS,
    DEFAULT_NAMESPACE,
    MONITORING,
    NAMESPACED_ONLY,
    REPO_ROOT,
    HelmError,
    find,
    render_chart,
    run_helm,
)

CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterKopfPeering"}


@pytest.mark.parametrize("values", list(COMBINATIONS.values()), ids=list(COMBINATIONS))
def test_helm_lint_strict_passes_for_every_combination(values: dict[str, Any], tmp_path: Any) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = run_helm(["lint", "--strict", str(CHART_DIR), "--namespace", DEFAULT_NAMESPACE, "-f", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_namespaced_only_mode_renders_no_cluster_scoped_object() -> None:
    objects = render_chart(
        {**NAMESPACED_ONLY, **MONITORING, "networkPolicy": {"enabled": True}}, include_tests=True
    )
    assert {o["kind"] for o in objects} & CLUSTER_KINDS == set()
    assert {"Role", "RoleBinding", "KopfPeering", "Deployment"} <= {o["kind"] for o in objects}
    [deployment] = find(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-cluster-scanning" in args and args[args.index("--namespace") + 1] == "hub"
    # The default mode keeps kopf's scanning (and grants it).
    default_args = find(render_chart(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-cluster-scanning" not in default_args


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac": {"clusterScoped": False}}, "crds.install=false"),
        (
            {"rbac": {"clusterScoped": False}, "crds": {"install": False}, "watch": {"clusterWide": True}},
            "watch.namespaces",
        ),
        ({"metrics": {"podMonitor": {"enabled": True}, "serviceMonitor": {"enabled": True}}}, "choose one"),
    ],
    ids=["crd-in-namespaced-mode", "cluster-wide-in-namespaced-mode", "two-monitors"],
)
def test_impossible_combinations_fail_with_the_reason(values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmError) as info:
        render_chart(values)
    assert message in info.value.stderr


def test_aggregated_roles_fold_into_view_edit_admin() -> None:
    roles = {o["metadata"]["name"]: o for o in find(render_chart(), "ClusterRole")}
    view, edit = roles["hubsettings-operator-view"], roles["hubsettings-operator-edit"]
    key = "rbac.authorization.k8s.io/aggregate-to-{}"
    assert all(view["metadata"]["labels"][key.format(r)] == "true" for r in ("view", "edit", "admin"))
    assert key.format("view") not in edit["metadata"]["labels"]
    assert all(edit["metadata"]["labels"][key.format(r)] == "true" for r in ("edit", "admin"))
    assert view["rules"] == [
        {
            "apiGroups": ["scion.dev"],
            "resources": ["hubsettings", "hubsettings/status"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    # Editors write the spec, never the operator's status.
    assert edit["rules"][0]["resources"] == ["hubsettings"]
    assert "hubsettings-operator-view" not in {
        o["metadata"]["name"]
        for o in find(render_chart({"rbac": {"aggregateToDefaultRoles": False}}), "ClusterRole")
    }


def alert_rules() -> dict[str, dict[str, Any]]:
    [rule] = find(render_chart(MONITORING), "PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rule_holds_exactly_the_alerts_documented_in_metrics_md() -> None:
    rules = alert_rules()
    doc = (REPO_ROOT / "docs" / "metrics.md").read_text()
    documented = dict(re.findall(r"^- `(\w+)`: `(.+?)`", doc, re.M))
    assert documented == {name: r["expr"] for name, r in rules.items()}
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert "{{ $labels.namespace }}" in rule["annotations"]["summary"] or "namespace" not in rule["expr"]


def test_grafana_dashboard_configmap_carries_the_sidecar_label_and_valid_json() -> None:
    [cm] = find(render_chart(MONITORING), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["hubsettings-operator.json"])
    assert dashboard["uid"] == "hubsettings-operator" and len(dashboard["panels"]) >= 8
    assert all(t["expr"] for p in dashboard["panels"] for t in p["targets"])


def test_pod_monitor_scrapes_the_metrics_port_of_the_operator_pods() -> None:
    objects = render_chart(MONITORING)
    [monitor] = find(objects, "PodMonitor")
    [deployment] = find(objects, "Deployment")
    assert monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_network_policy_allows_postgres_apiserver_hub_dns_out_and_metrics_health_in() -> None:
    values = {
        "networkPolicy": {
            "enabled": True,
            "postgres": {"ports": [5432, 6432], "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]},
            "apiServer": {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]},
        }
    }
    objects = render_chart(values)
    [policy] = find(objects, "NetworkPolicy")
    [deployment] = find(objects, "Deployment")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for p in spec["ingress"][0]["ports"]] == ["metrics", "health"]
    postgres, apiserver, hub, dns = spec["egress"]
    assert [p["port"] for p in postgres["ports"]] == [5432, 6432] and postgres["to"][0]["ipBlock"][
        "cidr"
    ] == "10.1.0.0/16"
    assert [p["port"] for p in apiserver["ports"]] == [443, 6443] and apiserver["to"][0]["ipBlock"][
        "cidr"
    ] == "10.0.0.1/32"
    assert hub["ports"] == [{"port": 9810, "protocol": "TCP"}]
    assert hub["to"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "scion-hub"}}
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    no_dns = find(
        render_chart({"networkPolicy": {"enabled": True, "dns": {"enabled": False}}}), "NetworkPolicy"
    )
    assert len(no_dns[0]["spec"]["egress"]) == 3


@pytest.mark.parametrize(
    "values",
    [
        {"networkPolicy": {"enabled": True, "postgres": {"ports": []}}},
        {"networkPolicy": {"bogus": True}},
        {"metrics": {"prometheusRule": {"notAppliedSeconds": 5}}},
        {"metrics": {"podMonitor": {"interval": "soon"}}},
        {"rbac": {"clusterScoped": "no"}},
        {"tests": {"enabled": "yes"}},
    ],
)
def test_values_schema_rejects_bad_toggle_values(values: dict[str, Any]) -> None:
    with pytest.raises(HelmError) as info:
        render_chart(values)
    assert "values don't meet the specifications of the schema" in info.value.stderr


def test_helm_test_hook_asks_every_operator_pod_through_the_pod_proxy() -> None:
    objects = render_chart(include_tests=True)
    hooks = [o for o in objects if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    assert {o["kind"] for o in hooks} == {"ServiceAccount", "Role", "RoleBinding", "Pod"}
    [role] = [o for o in hooks if o["kind"] == "Role"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]},
    ]
    [pod] = [o for o in hooks if o["kind"] == "Pod"]
    [deployment] = find(objects, "Deployment")
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    container = pod["spec"]["containers"][0]
    assert container["args"][1:] == [DEFAULT_NAMESPACE, selector, "8080", "9090"]
    compile(container["args"][0], "helm-test", "exec")  # the script is valid Python
    assert not all(
        pod["metadata"]["labels"].get(k) == v
        for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    assert not [
        o for o in render_chart({"tests": {"enabled": False}}, include_tests=True) if o["kind"] == "Pod"
    ]


# --- the files a review asks for ---------------------------------------------------------------------------


def chart() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART_DIR / "Chart.yaml").read_text()))


def test_license_is_the_apache_2_text_and_matches_the_metadata() -> None:
    text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == chart()["annotations"]["artifacthub.io/license"] == "Apache-2.0"


def test_artifacthub_changes_repeat_the_changelog_of_the_chart_version() -> None:
    meta = chart()
    changes = yaml.safe_load(meta["annotations"]["artifacthub.io/changes"])
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    section = changelog.split(f"## {meta['version']}", 1)[1].split("\n## ", 1)[0]
    headings = {
        "added": "### Added",
        "changed": "### Changed",
        "fixed": "### Fixed",
        "security": "### Security",
    }
    for change in changes:
        assert change["kind"] in headings
        block = section.split(headings[change["kind"]], 1)[1].split("\n### ", 1)[0]
        assert f"- {change['description']}" in block, change


def test_artifacthub_metadata_is_complete_and_consistent() -> None:
    meta = chart()
    notes = meta["annotations"]
    for key in ("home", "sources", "maintainers", "kubeVersion"):
        assert meta.get(key), key
    links = yaml.safe_load(notes["artifacthub.io/links"])
    assert {"Source", "Upgrade guide", "Security policy"} <= {link["name"] for link in links}
    for link in links:
        if "/blob/main/" in link["url"]:
            assert (REPO_ROOT / link["url"].split("/blob/main/", 1)[1]).is_file(), link
    [image] = yaml.safe_load(notes["artifacthub.io/images"])
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert image["image"] == f"{values['image']['repository']}:{meta['appVersion']}"
    [crd] = yaml.safe_load(notes["artifacthub.io/crds"])
    for example in yaml.safe_load(notes["artifacthub.io/crdsExamples"]):
        assert (example["kind"], example["apiVersion"]) == (crd["kind"], f"scion.dev/{crd['version']}")
        parsed, errors = validate_spec(example["spec"])
        assert parsed is not None and errors == []


def test_security_md_says_how_to_report_privately() -> None:
    text = (REPO_ROOT / "SECURITY.md").read_text()
    assert "Reporting a vulnerability" in text and "privately" in text and "not in a public issue" in text

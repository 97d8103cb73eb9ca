"""The chart's optional parts on the real API server (issue 23): every toggle combination the unit tier lints
passes server-side validation, the monitoring objects against the Prometheus Operator's published CRDs; every
metric a rule or a dashboard panel queries is served by a running operator; the aggregated roles are picked up
by the server's own view / edit / admin roles and grant what they say.

The monitoring CRDs come from the prometheus-operator Go module (`make deps` -> hack/install-monitoring-crds.sh);
without them the monitoring dry-runs are skipped with that reason (a failure under CI=true).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_manifests_dry_run import dry_run
from tests.e2e.test_rbac import peering_crds
from tests.support.chart import COMBINATIONS, MONITORING, REPO_ROOT, find, render_chart
from tests.support.kubeapi import (
    Database,
    create,
    hubsettings,
    make_namespace,
    module_namespace,
    module_operator,
    unique,
    wait_condition,
)
from tests.support.kubectl import apply_objects, wait_established
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess

MONITORING_KINDS = {"servicemonitors", "podmonitors", "prometheusrules"}
ns = module_namespace("toggles")
operator = module_operator("toggles-logs")


@pytest.fixture(scope="module")
def kopf_crds(kube_env: KubeTestEnv) -> list[str]:
    """kopf's peering CRDs from the chart's crds/ (a KopfPeering is dry-run like any other object)."""
    return peering_crds(kube_env)


@pytest.fixture(scope="module")
def monitoring_crds(kube_env: KubeTestEnv) -> bool:
    """The Prometheus Operator's CRDs, applied and Established; False when they could not be obtained."""
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "install-monitoring-crds.sh"), "--path-only"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    directory = Path(proc.stdout.strip().splitlines()[-1])
    files = [directory / f"monitoring.coreos.com_{kind}.yaml" for kind in sorted(MONITORING_KINDS)]
    if not all(f.is_file() for f in files):
        if os.environ.get("CI") == "true":
            pytest.fail(f"monitoring CRDs missing in {directory}: run make deps")
        return False
    crds = [yaml.safe_load(f.read_text()) for f in files]
    applied = apply_objects(kube_env.kubeconfig, crds, field_manager="helm", force_conflicts=True)
    assert applied.returncode == 0, applied.stderr
    wait_established(kube_env.kubeconfig, [c["metadata"]["name"] for c in crds])
    return True


@pytest.mark.parametrize("combination", list(COMBINATIONS), ids=list(COMBINATIONS))
def test_every_toggle_combination_passes_server_dry_run(
    kube_env: KubeTestEnv,
    kube_api: k8s.ApiClient,
    crd_installed: str,
    kopf_crds: list[str],
    monitoring_crds: bool,
    combination: str,
) -> None:
    del crd_installed, kopf_crds
    namespace = make_namespace(kube_api, "tog")
    values = json.loads(json.dumps(COMBINATIONS[combination]))
    if "namespaces" in values.get("watch", {}):
        values["watch"]["namespaces"] = [namespace]
    objects = render_chart(values, namespace=namespace, release=unique("tog"), include_tests=True)
    checked, skipped = [], []
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            continue  # installed for real by the session (the same HubSettings CRD)
        if obj["apiVersion"].startswith("monitoring.coreos.com/") and not monitoring_crds:
            skipped.append(obj["kind"])
            continue
        returned = dry_run(kube_env, obj)
        assert returned["kind"] == obj["kind"] and returned["metadata"]["name"] == obj["metadata"]["name"]
        checked.append(obj["kind"])
    if combination in ("monitoring", "everything-namespaced", "cluster-wide-all"):
        assert skipped or {"PrometheusRule", "PodMonitor", "ConfigMap"} <= set(checked)
    if skipped:
        pytest.skip(f"{sorted(set(skipped))}: the Prometheus Operator's CRDs are not cached (make deps)")


def queried_metrics() -> set[str]:
    """Every hubsettings_* series name a PrometheusRule expression or a dashboard panel queries."""
    objects = render_chart(MONITORING)
    [rule] = find(objects, "PrometheusRule")
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    [dashboard] = find(objects, "ConfigMap")
    panels = json.loads(dashboard["data"]["hubsettings-operator.json"])
    exprs += [t["expr"] for p in panels["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in panels["templating"]["list"] if v["type"] == "query"]
    return set(re.findall(r"\bhubsettings_[a-z_]+\b", " ".join(exprs)))


def served_names(text: str) -> set[str]:
    """Series names the exposition declares: family names, and each type's sample names."""
    names: set[str] = set()
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["_sum", "_count"],
    }
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, []))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_a_rule_or_panel_queries_is_served_by_the_operator(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    _, secret = database
    spec = {"database": {"secretRef": {"name": secret}}, "settings": {"maintenance": {"admin_mode": False}}}
    create(kube_api, ns, hubsettings("scraped", spec))
    wait_condition(kube_api, ns, "scraped", "Ready", "True")
    queried = queried_metrics()
    assert len(queried) >= 10, queried
    served = served_names(operator.metrics())
    assert queried - served == set()
    # The series behind the main alerts carry this object's samples, not only declarations.
    text = operator.metrics()
    for name in ("hubsettings_last_successful_apply_timestamp_seconds", "hubsettings_reconciles_total"):
        assert re.search(rf'^{name}\{{[^}}]*name="scraped"', text, re.M), name


@pytest.fixture(scope="module")
def aggregated(kube_env: KubeTestEnv, kube_api: k8s.ApiClient, crd_installed: str) -> Iterator[str]:
    """The chart's aggregated ClusterRoles applied under a unique release name; yields the name prefix."""
    del crd_installed
    release = unique("agg")
    roles = [
        o
        for o in find(render_chart(release=release), "ClusterRole")
        if o["metadata"]["name"].endswith(("-view", "-edit"))
    ]
    assert len(roles) == 2
    proc = apply_objects(kube_env.kubeconfig, roles, field_manager="helm")
    assert proc.returncode == 0, proc.stderr
    yield release
    rbac = k8s.RbacAuthorizationV1Api(kube_api)
    for role in roles:
        rbac.delete_cluster_role(role["metadata"]["name"])


def test_aggregated_roles_are_selected_by_the_servers_view_edit_admin(
    kube_api: k8s.ApiClient, aggregated: str
) -> None:
    rbac = k8s.RbacAuthorizationV1Api(kube_api)
    mine = {
        r.metadata.name: r.metadata.labels
        for r in rbac.list_cluster_role().items
        if r.metadata.name.startswith(aggregated)
    }
    for builtin in ("view", "edit", "admin"):
        rule = rbac.read_cluster_role(builtin).aggregation_rule
        assert rule is not None, builtin
        selected = {
            name
            for name, labels in mine.items()
            for selector in rule.cluster_role_selectors
            if all((labels or {}).get(k) == v for k, v in (selector.match_labels or {}).items())
        }
        expected = {f"{aggregated}-hubsettings-operator-view"} | (
            {f"{aggregated}-hubsettings-operator-edit"} if builtin != "view" else set()
        )
        assert selected == expected, builtin


def test_aggregated_roles_grant_read_to_viewers_and_write_to_editors(
    kube_api: k8s.ApiClient, aggregated: str
) -> None:
    """Bound through RoleBindings in one namespace (the controller-manager that folds them into view/edit
    does not run in this tier): what the server then allows, by SubjectAccessReview."""
    namespace = make_namespace(kube_api, "agg")
    rbac = k8s.RbacAuthorizationV1Api(kube_api)
    # The built-in edit role aggregates both (view's labels include aggregate-to-edit): so does the editor here.
    for who, role in (("viewer", "view"), ("editor", "view"), ("editor", "edit")):
        binding = k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name=f"{who}-{role}"),
            role_ref=k8s.V1RoleRef(
                api_group="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name=f"{aggregated}-hubsettings-operator-{role}",
            ),
            subjects=[k8s.RbacV1Subject(kind="User", name=who, api_group="rbac.authorization.k8s.io")],
        )
        rbac.create_namespaced_role_binding(namespace, binding)
    authz = k8s.AuthorizationV1Api(kube_api)

    def allowed(user: str, verb: str, sub: str = "") -> bool:
        review = k8s.V1SubjectAccessReview(
            spec=k8s.V1SubjectAccessReviewSpec(
                user=user,
                resource_attributes=k8s.V1ResourceAttributes(
                    namespace=namespace, verb=verb, group="scion.dev", resource="hubsettings", subresource=sub
                ),
            )
        )
        return bool(authz.create_subject_access_review(review).status.allowed)

    for verb in ("get", "list", "watch"):
        assert allowed("viewer", verb) and allowed("editor", verb)
    for verb in ("create", "patch", "update", "delete"):
        assert not allowed("viewer", verb) and allowed("editor", verb), verb
    assert allowed("viewer", "get", "status") and not allowed("editor", "patch", "status")

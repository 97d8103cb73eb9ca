"""Every rendered chart object and every applicable example passes the real API server's validation (issue 8).

`kubectl apply --server-side --dry-run=server` runs admission, defaulting, schema and CEL validation without
storing anything. The CRDs (HubSettings from the chart's template, kopf's peering CRDs from its crds/
directory) are installed for real first: a dry-run of a custom object needs its CRD served. Example kinds of
tools that are not installed here (Argo CD, Flux) are skipped by kind, explicitly, and the test checks that
their APIs are indeed absent (so a skip never hides a real failure).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from tests.support.chart import REPO_ROOT, find, render_chart
from tests.support.kubeapi import make_namespace
from tests.support.kubectl import apply_objects, kubectl, wait_established
from tests.support.kubeenv import KubeTestEnv

EXAMPLES_DIR = REPO_ROOT / "examples"
FIELD_MANAGER = "hubsettings-e2e-dry-run"
# Kinds of the GitOps examples (apiVersion group, kind): documentation for tools this API server lacks.
GITOPS_KINDS = {
    ("argoproj.io", "Application"),
    ("source.toolkit.fluxcd.io", "GitRepository"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
}
HUBSETTINGS = ("scion.dev", "HubSettings")


def group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    api_version = str(obj["apiVersion"])
    return (api_version.rpartition("/")[0], str(obj["kind"]))


def dry_run(kube_env: KubeTestEnv, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side dry-run apply of one object; returns what the server would store (fails on rejection)."""
    proc = apply_objects(
        kube_env.kubeconfig, [obj], field_manager=FIELD_MANAGER, dry_run=True, extra_args=["-o", "json"]
    )
    what = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    assert proc.returncode == 0, f"{what} rejected:\n{proc.stderr}"
    returned: dict[str, Any] = json.loads(proc.stdout)
    return returned


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                docs.append((f"{path.name}#{index}", doc))
    return docs


def ensure_namespace(api: k8s.ApiClient, name: str) -> None:
    try:
        k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise


def absent(kube_env: KubeTestEnv, obj: dict[str, Any]) -> bool:
    """True when `obj` does not exist on the server (the dry run stored nothing)."""
    proc = kubectl(
        kube_env.kubeconfig, "get", "--ignore-not-found", "-o", "name", "-f", "-", stdin=json.dumps(obj)
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip() == ""


@pytest.fixture(scope="module")
def crds(kube_env: KubeTestEnv, crd_installed: str) -> list[str]:
    """The chart's CRDs (rendered with --include-crds, default values), applied for real and Established."""
    del crd_installed  # the session's copy of the same HubSettings CRD; the chart's adds labels only
    objects = render_chart(include_crds=True)
    definitions = find(objects, "CustomResourceDefinition")
    names = sorted(o["metadata"]["name"] for o in definitions)
    assert names == ["clusterkopfpeerings.kopf.dev", "hubsettings.scion.dev", "kopfpeerings.kopf.dev"]
    proc = apply_objects(kube_env.kubeconfig, definitions, field_manager="helm", force_conflicts=True)
    assert proc.returncode == 0, proc.stderr
    wait_established(kube_env.kubeconfig, names)
    return names


def test_every_rendered_chart_object_passes_server_dry_run(
    kube_env: KubeTestEnv, kube_api: k8s.ApiClient, crds: list[str]
) -> None:
    namespace = make_namespace(kube_api, "dry-chart")  # the release namespace (a namespace must exist)
    objects = [o for o in render_chart(namespace=namespace) if o["kind"] != "CustomResourceDefinition"]
    kinds = {o["kind"] for o in objects}
    # Default values: what a plain `helm install` creates (the CRDs were applied for real above).
    assert {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "KopfPeering",
    } <= kinds, kinds
    for obj in objects:
        returned = dry_run(kube_env, obj)
        assert group_kind(returned) == group_kind(obj)
        assert returned["metadata"]["name"] == obj["metadata"]["name"]
        if "namespace" in obj["metadata"]:
            assert returned["metadata"]["namespace"] == namespace
    # The server defaulted and validated, but stored nothing.
    [deployment] = find(objects, "Deployment")
    returned = dry_run(kube_env, deployment)
    assert returned["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted by the server
    assert [o["metadata"]["name"] for o in objects if not absent(kube_env, o)] == []


def test_applicable_examples_pass_server_dry_run_and_gitops_kinds_are_skipped_by_kind(
    kube_env: KubeTestEnv, kube_api: k8s.ApiClient, crds: list[str]
) -> None:
    del crds
    docs = example_documents()
    unknown = [
        (where, group_kind(d)) for where, d in docs if group_kind(d) not in GITOPS_KINDS | {HUBSETTINGS}
    ]
    assert unknown == [], "an example of a new kind: dry-run it here, or skip it explicitly in GITOPS_KINDS"
    checked = []
    for where, doc in docs:
        if group_kind(doc) in GITOPS_KINDS:
            continue
        ensure_namespace(kube_api, doc["metadata"]["namespace"])
        returned = dry_run(kube_env, doc)
        # Nothing of the example's spec was pruned or rewritten by the schema.
        assert returned["spec"] == doc["spec"], where
        assert absent(kube_env, doc), where
        checked.append(where)
    assert {"minimal.yaml#0", "full.yaml#0"} <= set(checked), checked
    # The skipped kinds are skipped because their APIs do not exist here, not because they would fail.
    skipped_groups = sorted({g for g, _ in GITOPS_KINDS})
    proc = kubectl(kube_env.kubeconfig, "api-versions")
    assert proc.returncode == 0, proc.stderr
    served = {line.partition("/")[0] for line in proc.stdout.split()}
    assert "scion.dev" in served
    assert [g for g in skipped_groups if g in served] == []


def test_server_dry_run_rejects_an_invalid_example(
    kube_env: KubeTestEnv, kube_api: k8s.ApiClient, crds: list[str]
) -> None:
    """Control: the dry run validates for real (CEL), so the passes above mean something."""
    del crds
    minimal = next(d for where, d in example_documents() if where == "minimal.yaml#0")
    ensure_namespace(kube_api, minimal["metadata"]["namespace"])
    invalid = json.loads(json.dumps(minimal))
    invalid["spec"]["settings"]["log_level"] = "debug"
    proc = apply_objects(kube_env.kubeconfig, [invalid], field_manager=FIELD_MANAGER, dry_run=True)
    assert proc.returncode != 0
    assert "log_level is a bootstrap (Layer 0) setting" in proc.stderr, proc.stderr
    assert absent(kube_env, invalid)

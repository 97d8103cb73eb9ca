"""The Helm chart, rendered by the real `helm` binary (hack/install-helm.sh builds it if missing; no skip).

`helm lint --strict`, `helm template` with the default values, without the CRD, with a namespace list and
cluster-wide, values rejected by values.schema.json, the Deployment's hardening, the exact RBAC verbs, and the
chart's copy of the CRD kept identical to crds/hubsettings.yaml.

Over 400 lines: every chart rule is checked against one `helm template` rendering per values set.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.chart import (
    CHART_DIR,
    DEFAULT_NAMESPACE,
    INSTALL_HELM_SH,
    REPO_ROOT,
    HelmError,
    find,
    helm_binary,
    render_chart,
    run_helm,
    template_chart,
)

Rules = list[dict[str, Any]]

# Exactly what the operator (kopf 1.45, namespaced peering) does inside each watched namespace.
NAMESPACED_RULES: Rules = [
    {"apiGroups": ["scion.dev"], "resources": ["hubsettings"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["scion.dev"], "resources": ["hubsettings/status"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": ["get", "list", "watch", "patch"]},
]
DISCOVERY_RULES: Rules = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]
CLUSTER_PEERING_RULE: dict[str, Any] = {
    "apiGroups": ["kopf.dev"],
    "resources": ["clusterkopfpeerings"],
    "verbs": ["get", "list", "watch", "patch"],
}

EXPECTED_CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _canonical(rules: Rules) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    return sorted(
        (tuple(r.get("apiGroups", [])), tuple(r.get("resources", [])), tuple(sorted(r.get("verbs", []))))
        for r in rules
    )


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = find(objects, "Deployment")
    return deployment


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _deployment(objects)["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def _args(objects: list[dict[str, Any]]) -> list[str]:
    return [str(a) for a in _container(objects)["args"]]


def _flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


@pytest.fixture(scope="module")
def default_objects() -> list[dict[str, Any]]:
    return render_chart()


# --- the binary, lint ---------------------------------------------------------------------------------------


def test_install_helm_prints_a_working_helm_3_path() -> None:
    proc = subprocess.run(
        ["bash", str(INSTALL_HELM_SH), "--print-path"],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    path = proc.stdout.strip().splitlines()[-1]
    assert path == helm_binary()
    version = run_helm(["version", "--template", "{{.Version}}"])
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("v3."), version.stdout


@pytest.mark.parametrize(
    "set_args",
    [[], ["watch.namespaces={scion,scion-staging}"], ["watch.clusterWide=true"], ["crds.install=false"]],
    ids=["default", "namespaces", "cluster-wide", "no-crd"],
)
def test_helm_lint_strict_passes(set_args: list[str]) -> None:
    args = ["lint", "--strict", str(CHART_DIR), "--namespace", DEFAULT_NAMESPACE]
    for expression in set_args:
        args += ["--set", expression]
    proc = run_helm(args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_chart_metadata_matches_the_package() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "hubsettings-operator"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == project["version"]


# --- the CRD ------------------------------------------------------------------------------------------------


def test_chart_crd_copy_is_identical_to_the_generated_crd() -> None:
    source = (REPO_ROOT / "crds" / "hubsettings.yaml").read_bytes()
    copy = (CHART_DIR / "files" / "crds" / "hubsettings.yaml").read_bytes()
    assert copy == source, "run `make generated` to re-copy crds/hubsettings.yaml into the chart"


def test_chart_crds_dir_holds_only_kopf_peering_crds() -> None:
    # The HubSettings CRD is a template (crds.install toggle); a copy in crds/ too would be installed twice.
    names = set()
    for path in sorted((CHART_DIR / "crds").iterdir()):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert doc["kind"] == "CustomResourceDefinition", path
                names.add(doc["metadata"]["name"])
    assert names == {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}


def test_default_render_ships_the_crd_with_keep_policy(default_objects: list[dict[str, Any]]) -> None:
    (crd,) = find(default_objects, "CustomResourceDefinition", "hubsettings.scion.dev")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    source = yaml.safe_load((REPO_ROOT / "crds" / "hubsettings.yaml").read_text())
    # Rendering through fromYaml/toYaml must not change anything but the chart's labels and annotation.
    assert crd["spec"] == source["spec"]
    assert crd["apiVersion"] == source["apiVersion"]
    assert source["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()


def test_crds_keep_false_drops_the_annotation() -> None:
    (crd,) = find(render_chart(None, ["crds.keep=false"]), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def test_crds_install_false_renders_no_hubsettings_crd() -> None:
    objects = render_chart({"crds": {"install": False}})
    assert find(objects, "CustomResourceDefinition") == []
    assert _deployment(objects)


def test_include_crds_adds_the_kopf_peering_crds_once() -> None:
    objects = render_chart(None, include_crds=True)
    names = [o["metadata"]["name"] for o in find(objects, "CustomResourceDefinition")]
    assert sorted(names) == ["clusterkopfpeerings.kopf.dev", "hubsettings.scion.dev", "kopfpeerings.kopf.dev"]
    for crd in find(objects, "CustomResourceDefinition"):
        if crd["spec"]["group"] == "kopf.dev":
            schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for part in ("spec", "status"):
                assert schema["properties"][part]["x-kubernetes-preserve-unknown-fields"] is True


# --- Deployment ---------------------------------------------------------------------------------------------


def test_default_deployment(default_objects: list[dict[str, Any]]) -> None:
    deployment = _deployment(default_objects)
    assert deployment["metadata"]["namespace"] == DEFAULT_NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["serviceAccountName"] == "hubsettings-operator"
    container = _container(default_objects)
    assert container["image"] == "ghcr.io/scion/hubsettings-operator:0.1.0"
    args = _args(default_objects)
    assert args[:8] == [
        "--health-port",
        "8080",
        "--metrics-port",
        "9090",
        "--log-format",
        "json",
        "--peering",
        "hubsettings-operator",
    ]
    # Default scope: the release namespace only.
    assert _flag_values(args, "--namespace") == [DEFAULT_NAMESPACE]
    assert "--all-namespaces" not in args
    assert _flag_values(args, "--pod-selector") == ["app.kubernetes.io/name=scion-hub"]
    assert _flag_values(args, "--resync-seconds") == ["300"]
    assert _flag_values(args, "--drift-seconds") == ["60"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "96Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_deployment_security_context(default_objects: list[dict[str, Any]]) -> None:
    pod = _deployment(default_objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(default_objects)
    assert container["securityContext"] == EXPECTED_CONTAINER_SECURITY_CONTEXT
    # A writable /tmp (HOME=/tmp in the image) on an emptyDir, since the root filesystem is read-only.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert "emptyDir" in tmp


def test_values_reach_the_deployment() -> None:
    objects = render_chart(
        {
            "image": {"repository": "registry.example/hs", "tag": "dev", "pullPolicy": "Never"},
            "imagePullSecrets": [{"name": "regcred"}],
            "logFormat": "text",
            "resyncSeconds": 120,
            "drift": {"podSelector": "app=hub,tier=web", "intervalSeconds": 15},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "podAnnotations": {"example.com/a": "b"},
            "extraArgs": ["--verbose"],
        },
        ["replicaCount=3"],
    )
    deployment = _deployment(objects)
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] == 3
    assert pod["metadata"]["annotations"] == {"example.com/a": "b"}
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    container = _container(objects)
    assert container["image"] == "registry.example/hs:dev"
    assert container["imagePullPolicy"] == "Never"
    args = _args(objects)
    assert _flag_values(args, "--log-format") == ["text"]
    assert _flag_values(args, "--resync-seconds") == ["120"]
    assert _flag_values(args, "--drift-seconds") == ["15"]
    assert _flag_values(args, "--pod-selector") == ["app=hub,tier=web"]
    assert args[-1] == "--verbose"


# --- watch scope and RBAC -----------------------------------------------------------------------------------


def test_default_rbac_is_namespaced_to_the_release_namespace(default_objects: list[dict[str, Any]]) -> None:
    (role,) = find(default_objects, "Role")
    assert role["metadata"]["namespace"] == DEFAULT_NAMESPACE
    assert _canonical(role["rules"]) == _canonical(NAMESPACED_RULES)
    # The operator's one ClusterRole (the -view/-edit ones are for users: tests/unit/test_chart_toggles.py).
    (cluster_role,) = find(default_objects, "ClusterRole", "hubsettings-operator-cluster")
    assert _canonical(cluster_role["rules"]) == _canonical(DISCOVERY_RULES)
    (peering,) = find(default_objects, "KopfPeering")
    assert peering["metadata"] == peering["metadata"] | {
        "name": "hubsettings-operator",
        "namespace": DEFAULT_NAMESPACE,
    }
    assert find(default_objects, "ClusterKopfPeering") == []


def test_namespace_list() -> None:
    objects = render_chart(None, ["watch.namespaces={a,b}"])
    args = _args(objects)
    joined = " ".join(args)
    assert "--namespace a --namespace b" in joined
    assert _flag_values(args, "--namespace") == ["a", "b"]
    assert "--all-namespaces" not in args

    roles = find(objects, "Role")
    bindings = find(objects, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"]
    for role in roles:
        assert _canonical(role["rules"]) == _canonical(NAMESPACED_RULES)
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "hubsettings-operator",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "hubsettings-operator", "namespace": DEFAULT_NAMESPACE}
        ]
    # Nothing namespaced is granted cluster-wide; no cluster peering.
    (cluster_role,) = find(objects, "ClusterRole", "hubsettings-operator-cluster")
    assert _canonical(cluster_role["rules"]) == _canonical(DISCOVERY_RULES)
    assert sorted(p["metadata"]["namespace"] for p in find(objects, "KopfPeering")) == ["a", "b"]


def test_cluster_wide() -> None:
    objects = render_chart({"watch": {"clusterWide": True, "namespaces": []}})
    args = _args(objects)
    assert "--all-namespaces" in args
    assert "--namespace" not in args
    assert find(objects, "Role") == []
    assert find(objects, "RoleBinding") == []
    cluster_roles = {r["metadata"]["name"]: r for r in find(objects, "ClusterRole")}
    assert _canonical(cluster_roles["hubsettings-operator"]["rules"]) == _canonical(NAMESPACED_RULES)
    assert _canonical(cluster_roles["hubsettings-operator-cluster"]["rules"]) == _canonical(
        [*DISCOVERY_RULES, CLUSTER_PEERING_RULE]
    )
    bindings = {b["metadata"]["name"]: b for b in find(objects, "ClusterRoleBinding")}
    # Every ClusterRole is bound, but the aggregated user roles (bound by their aggregation, not by the chart).
    assert set(bindings) == set(cluster_roles) - {"hubsettings-operator-view", "hubsettings-operator-edit"}
    for name, binding in bindings.items():
        assert binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"][0]["namespace"] == DEFAULT_NAMESPACE
    (peering,) = find(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "hubsettings-operator"
    assert find(objects, "KopfPeering") == []


def test_cluster_wide_and_namespaces_are_exclusive() -> None:
    proc = template_chart({"watch": {"clusterWide": True, "namespaces": ["a"]}})
    assert proc.returncode != 0
    assert "mutually exclusive" in proc.stderr


def test_no_rbac_rule_uses_wildcards() -> None:
    for set_args in ([], ["watch.clusterWide=true"]):
        for obj in render_chart(None, set_args):
            for rule in obj.get("rules", []):
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule.get(field, []), (obj["metadata"]["name"], rule)


def test_rbac_and_peering_can_be_turned_off() -> None:
    objects = render_chart({"rbac": {"create": False}, "peering": {"create": False}})
    kinds = {o["kind"] for o in objects}
    assert kinds.isdisjoint({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "KopfPeering"})


# --- metrics, PDB, ServiceAccount ---------------------------------------------------------------------------


def test_metrics_service_pdb_and_service_account(default_objects: list[dict[str, Any]]) -> None:
    (service,) = find(default_objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == _deployment(default_objects)["spec"]["selector"]["matchLabels"]
    (pdb,) = find(default_objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    (sa,) = find(default_objects, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is True
    assert find(default_objects, "ServiceMonitor") == []


def test_service_monitor_is_optional() -> None:
    (monitor,) = find(render_chart(None, ["metrics.serviceMonitor.enabled=true"]), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize("set_args", [["replicaCount=1"], ["pdb.enabled=false"]])
def test_no_pdb_for_a_single_replica_or_when_disabled(set_args: list[str]) -> None:
    assert find(render_chart(None, set_args), "PodDisruptionBudget") == []


def test_every_object_is_labelled_and_namespaced_objects_have_a_namespace(
    default_objects: list[dict[str, Any]],
) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterKopfPeering"}
    for obj in default_objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "hubsettings-operator", obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"], obj["kind"]


def test_notes_render(tmp_path: Path) -> None:
    # `helm install --dry-run` needs a cluster, and `helm template` skips NOTES.txt: render it from a copy of
    # the chart where it is a named template placed into a ConfigMap.
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "test.notes" }}' + notes + "{{- end }}")
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ include "test.notes" . | toJson }}}\n'
    )
    for set_args, expected in [
        (["watch.namespaces={scion}"], "It watches HubSettings in: scion"),
        (["watch.clusterWide=true", "crds.install=false"], "ALL namespaces"),
    ]:
        args = ["template", "hs", str(chart), "--namespace", "ops", "--show-only", "templates/notes.yaml"]
        for expression in set_args:
            args += ["--set", expression]
        proc = run_helm(args)
        assert proc.returncode == 0, proc.stderr
        text = yaml.safe_load(proc.stdout)["data"]["notes"]
        assert expected in text
        assert "kubectl -n ops rollout status deployment/hs-hubsettings-operator" in text


# --- values.schema.json -------------------------------------------------------------------------------------


def test_values_schema_is_valid_and_accepts_the_defaults() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)
    # Every default key is declared (so additionalProperties: false never rejects the chart's own values).
    assert set(defaults) <= set(schema["properties"])


@pytest.mark.parametrize(
    ("values", "set_args", "message"),
    [
        ({"replicaCount": "two"}, [], "/replicaCount"),
        (None, ["replicaCount=-1"], "/replicaCount"),
        ({"logFormat": "xml"}, [], "/logFormat"),
        ({"bogus": 1}, [], "bogus"),
        ({"image": {"repository": "x", "pullPolicy": "IfNotPresent", "tagg": "1"}}, [], "tagg"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, [], "/image/pullPolicy"),
        ({"watch": {"namespaces": ["Not_A_Namespace"]}}, [], "/watch/namespaces/0"),
        ({"watch": {"clusterWide": "yes"}}, [], "/watch/clusterWide"),
        ({"crds": {"install": "false"}}, [], "/crds/install"),
        ({"drift": {"intervalSeconds": 0}}, [], "/drift/intervalSeconds"),
        ({"resources": {"limits": {"cpu": "lots"}}}, [], "/resources/limits/cpu"),
        ({"metrics": {"port": 70000}}, [], "/metrics/port"),
    ],
    ids=lambda v: json.dumps(v) if not isinstance(v, str) else v,
)
def test_bad_values_are_rejected_by_the_schema(
    values: dict[str, Any] | None, set_args: list[str], message: str
) -> None:
    proc = template_chart(values, set_args)
    assert proc.returncode != 0, f"accepted: {values} {set_args}"
    assert "schema" in proc.stderr
    assert message in proc.stderr
    with pytest.raises(HelmError):
        render_chart(values, set_args)


def test_render_chart_accepts_values_files_and_set_args_together(tmp_path: Path) -> None:
    objects = render_chart({"replicaCount": 1}, ["replicaCount=4"], namespace="ops", release="hs")
    deployment = _deployment(objects)
    assert deployment["spec"]["replicas"] == 4  # --set wins over the values file, as in helm
    assert deployment["metadata"]["name"] == "hs-hubsettings-operator"
    assert deployment["metadata"]["namespace"] == "ops"

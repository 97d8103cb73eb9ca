"""The chart's RBAC is enough for the operator, and no more (issue 8), proven on the real kube-apiserver.

The chart is rendered with `helm template` for a namespace-scoped install (release namespace R, watching W);
its ServiceAccount, Role/RoleBinding, ClusterRole/ClusterRoleBinding, kopf's peering CRDs and the KopfPeering
are applied as admin. The operator then runs as that ServiceAccount: a real token from the TokenRequest API
in a kubeconfig, with peering and the very arguments of the chart's Deployment, so a missing verb fails the
scenario (or shows as a 403 in its log). The API server runs with RBAC on and the ServiceAccount admission
plugin off (no controller-manager creates tokens; TokenRequest needs none).

Over 400 lines: every RBAC scenario shares one API server and the ServiceAccount set-up above.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.support.chart import find, render_chart
from tests.support.kubeapi import (
    Database,
    condition,
    create,
    delete,
    events,
    eventually,
    get,
    hubsettings,
    make_namespace,
    patch,
    put_secret,
    unique,
    wait_condition,
)
from tests.support.kubectl import apply_objects, wait_established
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}
HUB_LABELS = {"app.kubernetes.io/name": "scion-hub"}
# Chart values that keep the scenario fast, at the schema's minimums (the args stay the chart's own).
FAST = {"resyncSeconds": 10, "drift": {"intervalSeconds": 5}}
# Deployment args the test replaces: the ports must be free ones on this machine.
PORT_ARGS = {"--health-port", "--metrics-port"}


@dataclass
class Install:
    """A rendered and applied namespace-scoped install of the chart."""

    release: str
    release_ns: str
    watched_ns: str
    other_ns: str
    objects: list[dict[str, Any]]
    service_account: str
    peering: str
    deployment_args: list[str]
    kubeconfig: Path


def applied_part(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in RBAC_KINDS | PEERING_KINDS]


def peering_crds(kube_env: KubeTestEnv) -> list[str]:
    """Applies the chart's crds/ (kopf's peering CRDs) for real; returns their names once Established."""
    crds = [
        o
        for o in render_chart(include_crds=True)
        if o["kind"] == "CustomResourceDefinition" and o["spec"]["group"] == "kopf.dev"
    ]
    names = sorted(o["metadata"]["name"] for o in crds)
    assert names == ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]
    proc = apply_objects(kube_env.kubeconfig, crds, field_manager="helm", force_conflicts=True)
    assert proc.returncode == 0, proc.stderr
    wait_established(kube_env.kubeconfig, names)
    return names


def service_account_kubeconfig(
    kube_env: KubeTestEnv, api: k8s.ApiClient, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig authenticating as ServiceAccount namespace/name with a TokenRequest token.

    hack/testenv.sh sets --service-account-issuer to the server URL and no --api-audiences, so the API
    server's audience is its issuer: request exactly that one.
    """
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[kube_env.server], expiration_seconds=3600)
    )
    out = k8s.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
    assert out.status is not None and out.status.token
    token = out.status.token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {"server": kube_env.server, "certificate-authority": str(kube_env.ca_file)},
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "test", "user": name, "namespace": namespace}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def deployment_args(objects: list[dict[str, Any]]) -> list[str]:
    """The operator container's args from the rendered Deployment, without the port options."""
    [deployment] = find(objects, "Deployment")
    [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"]
    args: list[str] = [str(a) for a in container["args"]]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in PORT_ARGS:
            skip = True
        else:
            kept.append(arg)
    return kept


@pytest.fixture(scope="module")
def install(
    kube_env: KubeTestEnv,
    kube_api: k8s.ApiClient,
    crd_installed: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Install:
    del crd_installed  # the HubSettings CRD (the chart renders the same one)
    peering_crds(kube_env)
    release_ns = make_namespace(kube_api, "rbac-r")
    watched_ns = make_namespace(kube_api, "rbac-w")
    other_ns = make_namespace(kube_api, "rbac-o")
    release = unique("rbac")
    objects = render_chart(
        {"watch": {"namespaces": [watched_ns]}, **FAST}, release=release, namespace=release_ns
    )
    part = applied_part(objects)
    kinds = sorted(o["kind"] for o in part)
    # Three ClusterRoles: kopf's scanning, and the aggregated HubSettings view and edit roles (no binding).
    assert kinds == sorted(
        ["ClusterRole"] * 3 + ["ClusterRoleBinding", "KopfPeering", "Role", "RoleBinding", "ServiceAccount"]
    ), kinds
    [role] = find(part, "Role")
    [peering] = find(part, "KopfPeering")
    assert role["metadata"]["namespace"] == watched_ns and peering["metadata"]["namespace"] == watched_ns
    proc = apply_objects(kube_env.kubeconfig, part, field_manager="helm")
    assert proc.returncode == 0, proc.stderr
    [sa] = find(part, "ServiceAccount")
    assert sa["metadata"]["namespace"] == release_ns
    args = deployment_args(objects)
    assert args[args.index("--peering") + 1] == peering["metadata"]["name"]
    assert args[args.index("--namespace") + 1] == watched_ns
    kubeconfig = service_account_kubeconfig(
        kube_env,
        kube_api,
        release_ns,
        sa["metadata"]["name"],
        tmp_path_factory.mktemp("rbac") / "sa.kubeconfig",
    )
    return Install(
        release=release,
        release_ns=release_ns,
        watched_ns=watched_ns,
        other_ns=other_ns,
        objects=objects,
        service_account=sa["metadata"]["name"],
        peering=peering["metadata"]["name"],
        deployment_args=args,
        kubeconfig=kubeconfig,
    )


@pytest.fixture(scope="module")
def operator(install: Install, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator as the chart's ServiceAccount, with peering and the Deployment's own arguments."""
    proc = OperatorProcess(
        install.kubeconfig,
        [],  # --namespace comes from the Deployment's args
        tmp_path_factory.mktemp("rbac-logs"),
        extra_args=install.deployment_args,
        standalone=False,
        name="rbac-operator",
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def sa_api(install: Install) -> Iterator[k8s.ApiClient]:
    """An ApiClient with the ServiceAccount's token (the operator's identity)."""
    api = k8s_config.new_client_from_config(config_file=str(install.kubeconfig))  # type: ignore[no-untyped-call]
    with api:
        yield api


def make_hub_pod(api: k8s.ApiClient, namespace: str, name: str, env: k8s.V1EnvVar) -> None:
    """A Hub Pod object set Running through the status subresource (no kubelet runs here)."""
    core = k8s.CoreV1Api(api)
    body = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels=HUB_LABELS),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="hub", image="scion-hub:test", env=[env])]),
    )
    core.create_namespaced_pod(namespace, body)
    core.patch_namespaced_pod_status(name, namespace, {"status": {"phase": "Running"}})


def test_operator_runs_the_full_scenario_as_the_chart_service_account(
    kube_api: k8s.ApiClient, install: Install, operator: OperatorProcess, pg: PgServer
) -> None:
    ns = install.watched_ns
    db = Database(pg, listen=False)
    put_secret(kube_api, ns, "hub-db", {"url": db.dsn})
    settings = {"access": {"admin_emails": ["ops@example.com"]}, "maintenance": {"admin_mode": False}}
    spec = {
        "database": {"secretRef": {"name": "hub-db", "key": "url"}},
        "settings": settings,
        "bootstrap": {"container": "hub", "expected": {"server.log_level": "info"}},
        "policy": {"deletion": "Delete"},
    }

    # Create: Secret read, rows written, status patched, finalizer added (patch on the object).
    create(kube_api, ns, hubsettings("hub", spec))
    obj = wait_condition(kube_api, ns, "hub", "Ready", "True")
    assert condition(obj, "Synced")["reason"] == "Applied"
    rows = db.values()
    assert set(rows) == {"access", "maintenance"}
    assert (
        rows["access"]["admin_emails"] == ["ops@example.com"] and rows["maintenance"]["admin_mode"] is False
    )
    assert "hubsettings.scion.dev/finalizer" in obj["metadata"].get("finalizers", [])

    # Edit: the update handler applies it.
    patch(kube_api, ns, "hub", {"spec": {"settings": {"maintenance": {"admin_mode": True}}}})
    eventually(lambda: db.values()["maintenance"]["admin_mode"] is True, 20, what="spec edit applied")
    generation = get(kube_api, ns, "hub")["metadata"]["generation"]
    eventually(
        lambda: get(kube_api, ns, "hub")["status"].get("observedGeneration") == generation,
        20,
        what="observedGeneration of the edit",
    )

    # Secret rotation: the health probe re-reads the one Secret (get) and reconciles onto the new database.
    moved = Database(pg, listen=False)
    put_secret(kube_api, ns, "hub-db", {"url": moved.dsn})
    eventually(lambda: moved.values().get("maintenance", {}).get("admin_mode") is True, 20, what="rotation")
    # ... through the DSN check of the health probe, not the next resync.
    assert f"DSN in Secret {ns}/hub-db changed: reconciling HubSettings hub" in operator.logs()

    # Drift: the pod index (list/watch pods) sees the Hub pods; one runs another log level.
    # hub-0 takes its value from a ConfigMap: the operator must read it (else the item is "unresolved").
    k8s.CoreV1Api(kube_api).create_namespaced_config_map(
        ns, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="hub-env"), data={"log_level": "info"})
    )
    from_configmap = k8s.V1EnvVarSource(
        config_map_key_ref=k8s.V1ConfigMapKeySelector(name="hub-env", key="log_level")
    )
    make_hub_pod(kube_api, ns, "hub-0", k8s.V1EnvVar(name="SCION_SERVER_LOGLEVEL", value_from=from_configmap))
    make_hub_pod(kube_api, ns, "hub-1", k8s.V1EnvVar(name="SCION_SERVER_LOGLEVEL", value="debug"))
    obj = wait_condition(kube_api, ns, "hub", "Drifted", "True", "BootstrapMismatch", timeout=30)
    drift = obj["status"]["drift"]
    assert (drift["checkedPods"], drift["driftedPods"]) == (2, 1)
    items = [(i["pod"], i["key"], i["env"], i["reason"], i["expected"], i["actual"]) for i in drift["items"]]
    assert items == [("hub-1", "server.log_level", "SCION_SERVER_LOGLEVEL", "mismatch", "info", "debug")]

    # Events: posted by the operator with its own identity (create/patch on events).
    eventually(
        lambda: {"Applied", "DriftDetected"} <= {e.reason for e in events(kube_api, ns, "hub")},
        15,
        what="Applied and DriftDetected events",
    )

    # Delete with policy Delete: the finalizer removes the rows, then releases the object.
    delete(kube_api, ns, "hub")
    eventually(lambda: moved.values() == {}, 20, what="rows of the Delete policy removed")

    def gone() -> bool:
        try:
            get(kube_api, ns, "hub")
        except k8s.ApiException as exc:
            return bool(exc.status == 404)
        return False

    eventually(gone, 20, what="HubSettings deleted (finalizer released)")


def test_token_cannot_read_secrets_outside_the_watched_namespace(
    kube_api: k8s.ApiClient, install: Install, sa_api: k8s.ApiClient
) -> None:
    put_secret(kube_api, install.watched_ns, "readable", {"url": "postgresql://in-scope"})
    put_secret(kube_api, install.other_ns, "elsewhere", {"url": "postgresql://out-of-scope"})
    core = k8s.CoreV1Api(sa_api)
    # Control: the token works, and its Role grants the watched namespace's Secrets.
    readable = core.read_namespaced_secret("readable", install.watched_ns)
    assert readable.data and readable.data["url"]
    denied: list[Callable[[], object]] = [
        lambda: core.read_namespaced_secret("elsewhere", install.other_ns),
        lambda: core.list_namespaced_secret(install.other_ns),
        lambda: core.list_namespaced_secret(install.release_ns),  # its own namespace is not watched
        core.list_secret_for_all_namespaces,
    ]
    for call in denied:
        with pytest.raises(k8s.ApiException) as info:
            call()
        assert info.value.status == 403, info.value


def test_secret_ref_naming_a_secret_of_another_namespace_is_not_found(
    kube_api: k8s.ApiClient, install: Install, operator: OperatorProcess, pg: PgServer
) -> None:
    """secretRef has no namespace: the operator reads only the HubSettings' own namespace."""
    db = Database(pg, listen=False)
    put_secret(kube_api, install.other_ns, "only-elsewhere", {"url": db.dsn})
    spec = {
        "database": {"secretRef": {"name": "only-elsewhere"}},
        "settings": {"maintenance": {"admin_mode": True}},
    }
    create(kube_api, install.watched_ns, hubsettings("elsewhere", spec))
    obj = wait_condition(kube_api, install.watched_ns, "elsewhere", "Ready", "False", "SecretNotFound")
    message = condition(obj, "Ready")["message"]
    assert f"{install.watched_ns}/only-elsewhere" in message and "does not exist" in message
    assert install.other_ns not in message
    assert db.values() == {}


# kopf reports what RBAC refuses in its log (e.g. "Not enough permissions to watch for resources", an
# APIForbiddenError with the 403 body); the operator's own reads say "may not be read by the operator (RBAC)".
# A bare 403 only as a status code: not inside a number such as kopf's "sleeping for 1.403 seconds".
FORBIDDEN = re.compile(
    r"(?<![\d.])403(?![\d.])|forbidden|not enough permissions|may not be read by the operator", re.I
)


def test_operator_log_has_no_permission_errors(operator: OperatorProcess) -> None:
    """Runs after the scenarios of this module: nothing the operator did (or kopf tried) was refused."""
    logs = operator.logs()
    assert "hubsettings" in logs  # the log is the operator's, and not empty
    refused = [line for line in logs.splitlines() if FORBIDDEN.search(line)]
    assert refused == [], "\n".join(refused[:20])
    # The operator stayed active in the peering (mandatory peering: it would pause without its KopfPeering).
    assert operator.proc is not None and operator.proc.poll() is None


def test_cluster_wide_render_applies_and_grants_the_namespaced_rules_everywhere(
    kube_env: KubeTestEnv, kube_api: k8s.ApiClient, install: Install
) -> None:
    release_ns = make_namespace(kube_api, "rbac-cw")
    release = unique("rbaccw")
    objects = render_chart({"watch": {"clusterWide": True}}, release=release, namespace=release_ns)
    part = applied_part(objects)
    assert not find(part, "Role") and not find(part, "RoleBinding") and not find(part, "KopfPeering")
    assert len(find(part, "ClusterKopfPeering")) == 1
    proc = apply_objects(kube_env.kubeconfig, part, field_manager="helm")
    assert proc.returncode == 0, proc.stderr

    roles = {o["metadata"]["name"]: o for o in find(part, "ClusterRole")}
    [namespaced_role] = find(install.objects, "Role")
    fullname = namespaced_role["metadata"]["name"].replace(install.release, release, 1)
    assert set(roles) == {fullname, f"{fullname}-cluster", f"{fullname}-view", f"{fullname}-edit"}
    # The cluster-wide ClusterRole grants exactly the rules of the namespaced Role (one shared template).
    assert roles[fullname]["rules"] == namespaced_role["rules"]
    assert {"clusterkopfpeerings"} <= {
        r for rule in roles[f"{fullname}-cluster"]["rules"] for r in rule["resources"]
    }

    # What the server now decides for that ServiceAccount, in a namespace no Role mentions.
    [sa] = find(part, "ServiceAccount")
    user = f"system:serviceaccount:{release_ns}:{sa['metadata']['name']}"
    anywhere = make_namespace(kube_api, "rbac-any")
    authz = k8s.AuthorizationV1Api(kube_api)

    def allowed(
        verb: str, resource: str, group: str = "", namespace: str | None = anywhere, sub: str = ""
    ) -> bool:
        review = k8s.V1SubjectAccessReview(
            spec=k8s.V1SubjectAccessReviewSpec(
                user=user,
                groups=[
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{release_ns}",
                    "system:authenticated",
                ],
                resource_attributes=k8s.V1ResourceAttributes(
                    verb=verb, resource=resource, group=group, namespace=namespace, subresource=sub or None
                ),
            )
        )
        status = authz.create_subject_access_review(review).status
        assert status is not None
        return bool(status.allowed)

    needed = [
        ("watch", "hubsettings", "scion.dev", anywhere, ""),
        ("patch", "hubsettings", "scion.dev", anywhere, ""),
        ("patch", "hubsettings", "scion.dev", anywhere, "status"),
        ("get", "secrets", "", anywhere, ""),
        ("watch", "pods", "", anywhere, ""),
        ("create", "events", "", anywhere, ""),
        ("patch", "clusterkopfpeerings", "kopf.dev", None, ""),
        ("list", "customresourcedefinitions", "apiextensions.k8s.io", None, ""),
    ]
    assert [n for n in needed if not allowed(*n)] == []
    # Still least privilege: no writes to Secrets or Pods, no deleting HubSettings.
    refused = [
        ("update", "secrets", "", anywhere, ""),
        ("delete", "pods", "", anywhere, ""),
        ("delete", "hubsettings", "scion.dev", anywhere, ""),
        ("create", "clusterrolebindings", "rbac.authorization.k8s.io", None, ""),
    ]
    assert [r for r in refused if allowed(*r)] == []
    # The namespaced install's ServiceAccount gained nothing from this release.
    with kube_env.service_account_client(install.release_ns, install.service_account) as api:
        with pytest.raises(k8s.ApiException) as info:
            k8s.CoreV1Api(api).list_namespaced_secret(anywhere)
        assert info.value.status == 403
    assert json.dumps(part).count(install.release_ns) == 0

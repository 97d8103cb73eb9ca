"""The chart's namespaced-only mode (`rbac.clusterScoped: false`) on the real kube-apiserver (issue 23).

Rendered with the CRD left out (installed separately, as a tenant's cluster admin would) and a watched
namespace W: the render holds no cluster-scoped object at all. Its ServiceAccount, Role, RoleBinding and
KopfPeering are applied; the operator then runs with a TokenRequest token of that ServiceAccount and the very
arguments of the chart's Deployment (`--no-cluster-scanning`, peering, `--namespace W`). The full scenario
(Secret read, rows written, status, finalizer, edit, reconcile request, Hub pod index, Events, deletion) must
work, the token must be refused every cluster-scoped read, and the operator's log must show no refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.e2e.test_rbac import (
    FAST,
    FORBIDDEN,
    HUB_LABELS,
    applied_part,
    deployment_args,
    peering_crds,
    service_account_kubeconfig,
)
from tests.support.chart import find, render_chart
from tests.support.kubeapi import (
    Database,
    create,
    delete,
    eventually,
    get,
    hubsettings,
    make_namespace,
    patch,
    put_secret,
    unique,
    wait_condition,
)
from tests.support.kubectl import apply_objects
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterKopfPeering"}


@dataclass
class Install:
    release_ns: str
    watched_ns: str
    args: list[str]
    kubeconfig: Path


@pytest.fixture(scope="module")
def install(
    kube_env: KubeTestEnv,
    kube_api: k8s.ApiClient,
    crd_installed: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Install:
    del crd_installed  # installed separately, as the mode requires
    peering_crds(kube_env)  # kopf's peering CRDs: the cluster admin's part too (helm --skip-crds)
    release_ns = make_namespace(kube_api, "nso-r")
    watched_ns = make_namespace(kube_api, "nso-w")
    values: dict[str, Any] = {
        "rbac": {"clusterScoped": False},
        "crds": {"install": False},
        "watch": {"namespaces": [watched_ns]},
        **FAST,
    }
    objects = render_chart(values, release=unique("nso"), namespace=release_ns, include_tests=True)
    assert [o["kind"] for o in objects if o["kind"] in CLUSTER_KINDS] == []
    part = [
        o for o in applied_part(objects) if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
    ]
    assert sorted(o["kind"] for o in part) == ["KopfPeering", "Role", "RoleBinding", "ServiceAccount"]
    proc = apply_objects(kube_env.kubeconfig, part, field_manager="helm")
    assert proc.returncode == 0, proc.stderr
    args = deployment_args(objects)
    assert "--no-cluster-scanning" in args and args[args.index("--namespace") + 1] == watched_ns
    [sa] = find(part, "ServiceAccount")
    kubeconfig = service_account_kubeconfig(
        kube_env,
        kube_api,
        release_ns,
        sa["metadata"]["name"],
        tmp_path_factory.mktemp("nso") / "sa.kubeconfig",
    )
    return Install(release_ns, watched_ns, args, kubeconfig)


@pytest.fixture(scope="module")
def operator(install: Install, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        install.kubeconfig,
        [],
        tmp_path_factory.mktemp("nso-logs"),
        extra_args=install.args,
        standalone=False,
        name="nso-operator",
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_operator_runs_the_full_scenario_with_namespaced_permissions_only(
    kube_api: k8s.ApiClient, install: Install, operator: OperatorProcess, pg: PgServer
) -> None:
    ns = install.watched_ns
    db = Database(pg, listen=False)
    put_secret(kube_api, ns, "hub-db", {"url": db.dsn})
    spec = {
        "database": {"secretRef": {"name": "hub-db"}},
        "settings": {"maintenance": {"admin_mode": False}},
        "bootstrap": {"container": "hub", "expected": {"server.log_level": "info"}},
        "policy": {"deletion": "Delete"},
    }
    create(kube_api, ns, hubsettings("hub", spec))
    obj = wait_condition(kube_api, ns, "hub", "Ready", "True")
    assert db.values()["maintenance"]["admin_mode"] is False
    assert "hubsettings.scion.dev/finalizer" in obj["metadata"].get("finalizers", [])

    patch(kube_api, ns, "hub", {"spec": {"settings": {"maintenance": {"admin_mode": True}}}})
    eventually(lambda: db.values()["maintenance"]["admin_mode"] is True, 20, what="edit applied")

    # A reconcile request is handled and echoed in status with these permissions.
    patch(kube_api, ns, "hub", {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}})
    eventually(
        lambda: get(kube_api, ns, "hub").get("status", {}).get("lastHandledReconcileAt") == "now",
        20,
        what="request echoed",
    )

    # The pod index (list/watch pods in W) feeds drift.
    core = k8s.CoreV1Api(kube_api)
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="hub-0", labels=HUB_LABELS),
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(
                    name="hub",
                    image="scion-hub:test",
                    env=[k8s.V1EnvVar(name="SCION_SERVER_LOGLEVEL", value="debug")],
                )
            ]
        ),
    )
    core.create_namespaced_pod(ns, pod)
    core.patch_namespaced_pod_status("hub-0", ns, {"status": {"phase": "Running"}})
    obj = wait_condition(kube_api, ns, "hub", "Drifted", "True", "BootstrapMismatch", timeout=30)
    assert obj["status"]["drift"]["driftedPods"] == 1

    delete(kube_api, ns, "hub")
    eventually(lambda: db.values() == {}, 20, what="rows of the Delete policy removed")


def test_token_is_refused_every_cluster_scoped_read(install: Install) -> None:
    api = k8s_config.new_client_from_config(config_file=str(install.kubeconfig))  # type: ignore[no-untyped-call]
    with api:
        core = k8s.CoreV1Api(api)
        ext = k8s.ApiextensionsV1Api(api)
        # Control: the token works in the watched namespace.
        core.list_namespaced_pod(install.watched_ns)
        denied: list[Callable[[], object]] = [
            core.list_namespace,
            ext.list_custom_resource_definition,
            core.list_pod_for_all_namespaces,
            lambda: k8s.CustomObjectsApi(api).list_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings"
            ),
        ]
        for call in denied:
            with pytest.raises(k8s.ApiException) as info:
                call()
            assert info.value.status == 403


def test_operator_log_has_no_permission_errors(operator: OperatorProcess) -> None:
    """Runs after the scenario: neither the operator nor kopf was refused anything, nor warned about scanning."""
    logs = operator.logs()
    assert "hubsettings" in logs
    refused = [line for line in logs.splitlines() if FORBIDDEN.search(line)]
    assert refused == [], "\n".join(refused[:20])
    assert operator.proc is not None and operator.proc.poll() is None

"""The real kube-apiserver tier itself: reachable, RBAC-enforcing, CRD-serving with strict field validation.

These guard the test environment rather than the operator: if one fails, every other e2e result is suspect.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from tests.support.kubeenv import KubeTestEnv
from tests.support.waits import retry

T = TypeVar("T")

CRD_GROUP = "tier.test.dev"
CRD_PLURAL = "widgets"
CRD_NAME = f"{CRD_PLURAL}.{CRD_GROUP}"


def _eventually(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Retry `fn` until it stops raising: RBAC and CRD changes reach the server's caches asynchronously."""
    return retry(fn, timeout=timeout, interval=interval, retry_on=(ApiException, AssertionError))


def _new_namespace(api: k8s_client.ApiClient, prefix: str) -> str:
    # Unique per test and never deleted: without kube-controller-manager a deleted namespace stays
    # Terminating, and the whole etcd is thrown away at the end of the session anyway.
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    k8s_client.CoreV1Api(api).create_namespace(
        k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name))
    )
    return name


def test_server_answers_version_and_readyz(kube_env: KubeTestEnv, kube_api: k8s_client.ApiClient) -> None:
    info = k8s_client.VersionApi(kube_api).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")

    status, body = kube_env.get_raw("/readyz?verbose")
    assert status == 200
    assert "[+]etcd ok" in body
    assert "readyz check passed" in body

    # /version is public (system:public-info-viewer), listing namespaces is not: authentication is real.
    with kube_env.anonymous_client() as anon:
        assert k8s_client.VersionApi(anon).get_code().git_version == info.git_version
        with pytest.raises(ApiException) as denied:
            k8s_client.CoreV1Api(anon).list_namespace()
        assert denied.value.status == 403


def test_rbac_is_enforced_for_a_service_account(
    kube_env: KubeTestEnv, kube_api: k8s_client.ApiClient
) -> None:
    ns = _new_namespace(kube_api, "rbac")
    core = k8s_client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(
        ns, k8s_client.V1ServiceAccount(metadata=k8s_client.V1ObjectMeta(name="reader"))
    )
    core.create_namespaced_config_map(
        ns, k8s_client.V1ConfigMap(metadata=k8s_client.V1ObjectMeta(name="settings"), data={"k": "v"})
    )

    with kube_env.service_account_client(ns, "reader") as sa_api:
        sa_core = k8s_client.CoreV1Api(sa_api)
        with pytest.raises(ApiException) as no_secrets:
            sa_core.list_namespaced_secret(ns)
        assert no_secrets.value.status == 403
        assert f"system:serviceaccount:{ns}:reader" in str(no_secrets.value.body)
        with pytest.raises(ApiException) as no_get_yet:
            sa_core.read_namespaced_config_map("settings", ns)
        assert no_get_yet.value.status == 403

        rbac = k8s_client.RbacAuthorizationV1Api(kube_api)
        rbac.create_namespaced_role(
            ns,
            k8s_client.V1Role(
                metadata=k8s_client.V1ObjectMeta(name="configmap-getter"),
                rules=[k8s_client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            ns,
            k8s_client.V1RoleBinding(
                metadata=k8s_client.V1ObjectMeta(name="reader-gets-configmaps"),
                role_ref=k8s_client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-getter"
                ),
                subjects=[k8s_client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=ns)],
            ),
        )

        cm = _eventually(lambda: sa_core.read_namespaced_config_map("settings", ns))
        assert cm.data == {"k": "v"}
        # Exactly `get` on configmaps was granted: listing them and reading secrets stay forbidden.
        with pytest.raises(ApiException) as no_list:
            sa_core.list_namespaced_config_map(ns)
        assert no_list.value.status == 403
        with pytest.raises(ApiException) as still_no_secrets:
            sa_core.list_namespaced_secret(ns)
        assert still_no_secrets.value.status == 403


def _widget_crd() -> k8s_client.V1CustomResourceDefinition:
    crd = k8s_client.V1CustomResourceDefinition.from_dict(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": CRD_NAME},
            "spec": {
                "group": CRD_GROUP,
                "scope": "Namespaced",
                "names": {
                    "plural": CRD_PLURAL,
                    "singular": "widget",
                    "kind": "Widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["size"],
                                        "properties": {"size": {"type": "integer", "minimum": 1}},
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    assert crd is not None
    return crd


def _widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{CRD_GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_crd_becomes_established_and_strict_validation_rejects_unknown_fields(
    kube_api: k8s_client.ApiClient,
) -> None:
    ext = k8s_client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition(_widget_crd())
    try:

        def established() -> None:
            got = ext.read_custom_resource_definition(CRD_NAME)
            assert got.status is not None
            conditions = {c.type: c.status for c in (got.status.conditions or [])}
            assert conditions.get("Established") == "True", conditions

        _eventually(established)
        ns = _new_namespace(kube_api, "crd")
        objects = k8s_client.CustomObjectsApi(kube_api)

        def create(body: dict[str, Any], validation: str) -> Any:
            return objects.create_namespaced_custom_object(
                CRD_GROUP, "v1", ns, CRD_PLURAL, body, field_validation=validation
            )

        # Discovery of a just-established CRD can lag a moment behind the condition.
        ok = _eventually(lambda: create(_widget("ok", {"size": 3}), "Strict"))
        assert ok["spec"] == {"size": 3}

        with pytest.raises(ApiException) as strict:
            create(_widget("bad", {"size": 3, "colour": "red"}), "Strict")
        assert strict.value.status in (400, 422)
        assert 'unknown field "spec.colour"' in json.loads(strict.value.body or "{}")["message"]

        # The schema itself is enforced too (not only pruning).
        with pytest.raises(ApiException) as invalid:
            create(_widget("small", {"size": 0}), "Strict")
        assert invalid.value.status == 422

        # Without Strict the same unknown field is pruned rather than stored.
        pruned = create(_widget("pruned", {"size": 3, "colour": "red"}), "Ignore")
        assert pruned["spec"] == {"size": 3}
    finally:
        ext.delete_custom_resource_definition(CRD_NAME)

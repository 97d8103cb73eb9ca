"""The operator's own Kubernetes calls (kopf does the watching): read Secrets and ConfigMaps, patch status.

Uses the official `kubernetes` client in worker threads. Secret values are registered with the redactor
the moment they are read, so nothing downstream can print them.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from hubsettings_operator.errors import SecretNotFound
from hubsettings_operator.redact import register_secret
from hubsettings_operator.secretdata import dsn_from_data
from hubsettings_operator.spec.models import GROUP, PLURAL, VERSION


def load_config() -> client.ApiClient:
    """In-cluster credentials in a pod, else the kubeconfig ($KUBECONFIG or ~/.kube/config)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Kube:
    """Thin async facade over the calls the operator makes itself."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_config()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    async def dsn_from_secret(self, namespace: str, name: str, key: str) -> str:
        """The DSN in Secret `namespace/name`, key `key`. Only the HubSettings' own namespace is ever read."""
        try:
            secret = await asyncio.to_thread(self.core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status in (403, 404):
                what = "does not exist" if exc.status == 404 else "may not be read by the operator (RBAC)"
                raise SecretNotFound(
                    f"Secret {namespace}/{name} {what}; create it with the Hub's DSN under key {key!r}"
                ) from None
            raise SecretNotFound(f"cannot read Secret {namespace}/{name}: HTTP {exc.status}") from None
        return dsn_from_data(cast(Mapping[str, str], secret.data or {}), namespace, name, key)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """Base64 data of a Secret, or None when it is absent or unreadable (reported as unresolved)."""
        try:
            secret = await asyncio.to_thread(self.core.read_namespaced_secret, name, namespace)
        except ApiException:
            return None
        data = cast(dict[str, str], dict(secret.data or {}))
        for raw in data.values():
            register_secret(base64.b64decode(raw).decode("utf-8", errors="replace"))
        return data

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            cm = await asyncio.to_thread(self.core.read_namespaced_config_map, name, namespace)
        except ApiException:
            return None
        return cast(dict[str, str], dict(cm.data or {}))

    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource with only the fields given."""
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": dict(status)},
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise

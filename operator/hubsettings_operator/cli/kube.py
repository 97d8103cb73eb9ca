"""The CLI's one Kubernetes reader (`drift`, `converge`): the user's kubeconfig, the official client, async.

Each call runs the sync `kubernetes` client in a worker thread, so one reader serves both the async drift source
reader (`drift.sources.SourceReader`) and the convergence probe (`convergence.probe.SecretReader`). Objects come
back as the API returns them (camelCase JSON). A ConfigMap or Secret that cannot be read (403, 404, any API
error) is None, never a crash; Secret values are registered with the redactor as they are read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from hubsettings_operator.drift.env import secret_text
from hubsettings_operator.redact import register_secret
from hubsettings_operator.secretdata import dsn_from_data
from hubsettings_operator.spec.models import SecretKeyRef


class Cluster(Protocol):
    """What the CLI reads from the API server (a test passes its own)."""

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None: ...
    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None: ...


class ClusterReader:
    """`Cluster` over the official `kubernetes` client and the user's kubeconfig."""

    def __init__(self, kubeconfig: str | None) -> None:
        from kubernetes import client, config

        # Typed as Any: the client's annotations vary between releases (and `_preload_content=False` returns
        # the raw response, not the model its annotations promise).
        cfg: Any = config
        cfg.load_kube_config(config_file=kubeconfig)
        self._core: Any = client.CoreV1Api()

    def _list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": 500, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            resp = self._core.list_namespaced_pod(namespace, **kwargs)
            data = json.loads(resp.data)
            pods += data.get("items") or []
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return pods

    def _read(self, method: str, namespace: str, name: str) -> dict[str, str] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = getattr(self._core, method)(name, namespace, _preload_content=False)
        except ApiException:  # 403 (RBAC), 404, anything else: unresolved, never a crash
            return None
        data = json.loads(resp.data).get("data") or {}
        return {str(k): str(v) for k, v in data.items()}

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._list_pods, namespace, selector)

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        return await asyncio.to_thread(self._read, "read_namespaced_config_map", namespace, name)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        data = await asyncio.to_thread(self._read, "read_namespaced_secret", namespace, name)
        for value in (data or {}).values():  # never printed, but scrubbed from any log line all the same
            register_secret(value)
            register_secret(secret_text(value))
        return data


async def dsn_from_secret(cluster: Cluster, namespace: str, ref: SecretKeyRef) -> str:
    """The DSN of `spec.database.secretRef` (secretdata.dsn_from_data: the operator's rule)."""
    return dsn_from_data(await cluster.secret_data(namespace, ref.name), namespace, ref.name, ref.key)

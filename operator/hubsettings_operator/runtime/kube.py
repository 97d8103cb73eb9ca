"""The operator's own Kubernetes calls (kopf does the watching) over aiohttp, logged in by kopf's own helpers.

Five calls (read a Secret, a ConfigMap, a HubSettings; patch status). Secret values are registered with the
redactor the moment they are read, so nothing downstream can print them. No official `kubernetes` client: the operator process then never loads it, which is 19 MiB of RSS and about
0.5 s of start-up CPU (docs/performance.md). kopf probes for that client at import and uses it when present,
so `hubsettings run` blocks that import before kopf loads (`cli/run.py`). Credentials come from
`kopf.login_with_service_account` (in a pod) or `kopf.login_with_kubeconfig` (`$KUBECONFIG`), the ones the
operator's kopf login handler uses too; a 401 (a rotated service-account token) logs in again once.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf

from hubsettings_operator.errors import SecretNotFound
from hubsettings_operator.redact import register_secret
from hubsettings_operator.secretdata import dsn_from_data
from hubsettings_operator.spec.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
# Bounds per request once it has a connection (TCP connect 10 s, each read 30 s). No bound on the wait for one
# of the `CONNECTIONS`: with a thousand objects, requests queue there (FIFO) instead of failing as timeouts.
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=10, sock_read=30)
CONNECTIONS = 16
# kopf's own requests (finalizers, handler progress, diff base; not its watch streams) in flight at once. kopf's
# session has no bound: a thousand objects seen at start sent a thousand PATCHes at once, the API server
# answered none within kopf's 30 s request timeout, and the retries kept it saturated (0 of 1,000 objects
# handled in 15 minutes, docs/performance.md). Queued here, they reach the API server a few at a time.
KOPF_REQUESTS = 16


def in_cluster_server(environ: Mapping[str, str]) -> str | None:
    """The API server as a pod reaches it without DNS: `KUBERNETES_SERVICE_HOST`/`_PORT`, which the kubelet
    sets in every pod (what client-go and the official Python client use). None outside a pod."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own login: the service account in a pod, else the kubeconfig.

    kopf's service-account helper names the server `kubernetes.default.svc`, which needs cluster DNS; a
    cluster without it (or a pod with `dnsPolicy: Default`) could not reach the API server at all, so in a
    pod the server is the address the kubelet gives in the environment, as client-go does."""
    info = kopf.login_with_service_account(**kwargs)
    if info is None:
        return kopf.login_with_kubeconfig(**kwargs)
    server = in_cluster_server(os.environ)
    return dataclasses.replace(info, server=server) if server else info


def bounded_requests(limit: int) -> aiohttp.ClientMiddlewareType:
    """An aiohttp client middleware: at most `limit` requests in flight, the rest wait in FIFO order. Watch
    streams (long-lived by design) pass: they would hold a slot for minutes."""
    gate = asyncio.Semaphore(limit)

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if request.url.query.get("watch") == "true":
            return await handler(request)
        async with gate:
            return await handler(request)

    return middleware


async def kopf_login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's login handler: the same credentials as `login`, in a session whose requests are bounded
    (`KOPF_REQUESTS`). Async: the session belongs to the operator's event loop."""
    info = login(**kwargs)
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        middlewares=(bounded_requests(KOPF_REQUESTS),),
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        priority=info.priority,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
    )


class KubeAPIError(Exception):
    """A Kubernetes API call answered with an error status (the body is not kept: it may quote a value)."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(f"HTTP {status} on {what}")
        self.status = status


# The Kubernetes API unreachable or failing (e.g. kube-apiserver restarting) while the reconciler reads a Secret
# or patches status: the handlers retry these with the reconciler's capped backoff.
KUBE_API_ERRORS = (KubeAPIError, aiohttp.ClientError, OSError, TimeoutError)


class Kube:
    """Thin async client for the calls the operator makes itself (the `KubeAPI` of the reconciler)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._server = ""

    def _login(self) -> aiohttp.ClientSession:
        info = login(settings=kopf.OperatorSettings(), logger=log)
        if info is None:
            raise KubeAPIError(401, "login: no service account and no kubeconfig")
        self._server = info.server.rstrip("/")
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=info.as_ssl_context(), limit=CONNECTIONS),
            headers={**info.as_http_headers(), "User-Agent": "hubsettings-operator"},
            timeout=TIMEOUT,
        )

    async def _call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, content_type: str = ""
    ) -> dict[str, Any] | None:
        """JSON of the answer; None on 404; KubeAPIError on any other error status."""
        for attempt in (1, 2):
            if self._session is None or self._session.closed:
                self._session = self._login()
            headers = {"Content-Type": content_type} if content_type else {}
            async with self._session.request(method, self._server + path, json=body, headers=headers) as resp:
                if resp.status == 401 and attempt == 1:
                    await self._session.close()  # a rotated token: log in again, once
                    self._session = None
                    continue
                if resp.status == 404:
                    return None
                if resp.status >= 400:
                    raise KubeAPIError(resp.status, f"{method} {path.split('?', maxsplit=1)[0]}")
                data: dict[str, Any] = await resp.json()
                return data
        raise KubeAPIError(401, f"{method} {path}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}")

    async def dsn_from_secret(self, namespace: str, name: str, key: str) -> str:
        """The DSN in Secret `namespace/name`, key `key`. Only the HubSettings' own namespace is ever read."""
        try:
            secret = await self._secret(namespace, name)
        except KubeAPIError as exc:
            if exc.status == 403:
                raise SecretNotFound(
                    f"Secret {namespace}/{name} may not be read by the operator (RBAC); create it with the "
                    f"Hub's DSN under key {key!r}"
                ) from None
            raise SecretNotFound(f"cannot read Secret {namespace}/{name}: HTTP {exc.status}") from None
        if secret is None:
            raise SecretNotFound(
                f"Secret {namespace}/{name} does not exist; create it with the Hub's DSN under key {key!r}"
            )
        data: Mapping[str, str] = secret.get("data") or {}
        return dsn_from_data(data, namespace, name, key)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """Base64 data of a Secret, or None when it is absent or unreadable (reported as unresolved)."""
        try:
            secret = await self._secret(namespace, name)
        except KubeAPIError:
            return None
        if secret is None:
            return None
        data = {str(k): str(v) for k, v in (secret.get("data") or {}).items()}
        for raw in data.values():
            register_secret(base64.b64decode(raw).decode("utf-8", errors="replace"))
        return data

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            cm = await self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}")
        except KubeAPIError:
            return None
        return None if cm is None else {str(k): str(v) for k, v in (cm.get("data") or {}).items()}

    def _hubsettings_path(self, namespace: str, name: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/{PLURAL}/{quote(name)}"

    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._call("GET", self._hubsettings_path(namespace, name))

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource with only the fields given (a deleted object: nothing to do)."""
        await self._call(
            "PATCH",
            self._hubsettings_path(namespace, name) + "/status",
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )

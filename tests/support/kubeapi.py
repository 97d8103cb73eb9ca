"""Helpers of the e2e tier and the benchmarks: namespaces, Secrets, HubSettings objects, waiting on conditions, events."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest
from kubernetes import client as k8s

from tests.support.hubdb import PROPOSAL_DDL, SCION_DDL
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer
from tests.support.standin import allow_loopback_clients
from tests.support.waits import condition, poll

GROUP, VERSION, PLURAL = "scion.dev", "v1alpha1", "hubsettings"

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def make_namespace(api: k8s.ApiClient, prefix: str) -> str:
    """A fresh namespace (never deleted: no controller-manager runs to finish the deletion)."""
    name = unique(prefix)
    k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def running_pod(
    api: k8s.ApiClient,
    namespace: str,
    name: str,
    labels: dict[str, str],
    *,
    env: list[dict[str, Any]] | None = None,
    ip: str | None = None,
    image: str = "scion-hub:test",
) -> str:
    """A Pod with one `hub` container, set Running (and given `ip`) through the status subresource, as no kubelet
    runs on the test API server; -> its uid."""
    core = k8s.CoreV1Api(api)
    container: dict[str, Any] = {"name": "hub", "image": image}
    if env is not None:
        container["env"] = env
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [container]},
    }
    created = core.create_namespaced_pod(namespace, body)
    status: dict[str, Any] = {"phase": "Running"}
    if ip is not None:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    core.patch_namespaced_pod_status(name, namespace, {"status": status})
    return str(created.metadata.uid)


def put_secret(api: k8s.ApiClient, namespace: str, name: str, data: dict[str, str]) -> None:
    core = k8s.CoreV1Api(api)
    body = k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=name),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )
    try:
        core.create_namespaced_secret(namespace, body)
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(name, namespace, body)


def hubsettings(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HubSettings",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def bootstrap_spec(table: str, bootstrap: dict[str, Any]) -> dict[str, Any]:
    """A proposal-profile spec on Secret hub-db that creates `table`, sets one setting and checks `bootstrap`.

    The drift tests vary only the table and the bootstrap check: the rest is the smallest spec that applies."""
    return {
        "database": {
            "secretRef": {"name": "hub-db"},
            "profile": "proposal",
            "createTable": True,
            "table": table,
        },
        "settings": {"maintenance": {"admin_mode": False}},
        "bootstrap": bootstrap,
    }


def create(api: k8s.ApiClient, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    out = k8s.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, obj)
    assert isinstance(out, dict)
    return out


def get(api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    out = k8s.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert isinstance(out, dict)
    return out


def patch(api: k8s.ApiClient, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    out = k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, body
    )
    assert isinstance(out, dict)
    return out


def delete(api: k8s.ApiClient, namespace: str, name: str) -> None:
    k8s.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def eventually(
    fn: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.25, what: str = ""
) -> T:
    return poll(
        fn,
        timeout=timeout,
        interval=interval,
        what=what or str(fn),
        retry_on=(AssertionError, k8s.ApiException),
    )


def wait_condition(
    api: k8s.ApiClient,
    namespace: str,
    name: str,
    ctype: str,
    status: str,
    reason: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(api, namespace, name)
        cond = condition(obj, ctype)
        if cond.get("status") == status and (reason is None or cond.get("reason") == reason):
            return obj
        return None

    return eventually(check, timeout, what=f"{ctype}={status} {reason or ''} on {namespace}/{name}")


def delete_pod(api: k8s.ApiClient, namespace: str, name: str) -> None:
    """Delete a pod at once (no grace period) and wait until the API server no longer has it."""
    core = k8s.CoreV1Api(api)
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def gone() -> bool:
        try:
            core.read_namespaced_pod(name, namespace)
        except k8s.ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, 20, what=f"pod {name} deleted")


def events(api: k8s.ApiClient, namespace: str, name: str) -> list[k8s.CoreV1Event]:
    items = (
        k8s.CoreV1Api(api)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        .items
    )
    return list(items)


class Database:
    """One fresh database with the Hub's table, and a NOTIFY counter on it."""

    def __init__(self, pg: PgServer, profile: str = "scion", *, listen: bool = True) -> None:
        self.name = "e2e_" + secrets.token_hex(5)
        self.profile = profile
        with psycopg.connect(pg.superuser_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        self.dsn = pg.dsn(self.name)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(SCION_DDL if profile == "scion" else PROPOSAL_DDL)  # type: ignore[arg-type]
        self.listener: psycopg.Connection[Any] | None = None
        if listen:
            self.listener = psycopg.connect(self.dsn, autocommit=True)
            channel = "scion_ev_global" if profile == "scion" else "scion_settings_changed"
            self.listener.execute(f"LISTEN {channel}")  # type: ignore[arg-type]

    def drain(self, wait: float = 0.5) -> list[str]:
        """Notifications received since the last drain."""
        assert self.listener is not None, "created with listen=False"
        return [n.payload for n in self.listener.notifies(timeout=wait)]

    def rows(self) -> dict[str, dict[str, Any]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if self.profile == "scion":
                cur = conn.execute(
                    "SELECT section, value, revision, updated_by, update_time FROM hub_settings"
                )
                return {
                    r[0]: {"value": r[1], "revision": r[2], "updated_by": r[3], "at": r[4]}
                    for r in cur.fetchall()
                }
            cur = conn.execute("SELECT key, value, updated_by, updated_at FROM hub_settings")
            return {r[0]: {"value": json.loads(r[1]), "updated_by": r[2], "at": r[3]} for r in cur.fetchall()}

    def values(self) -> dict[str, Any]:
        """Row key -> value only."""
        return {key: row["value"] for key, row in self.rows().items()}

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()


def module_namespace(prefix: str) -> Any:
    """A module-scoped `ns` fixture: a fresh namespace named after `prefix`, with the CRD installed."""

    @pytest.fixture(scope="module")
    def ns(kube_api: k8s.ApiClient, crd_installed: str) -> str:
        del crd_installed
        return make_namespace(kube_api, prefix)

    return ns


def module_hubdb() -> Any:
    """A module-scoped `hubdb` fixture: the Hub replicas' own database (scion profile, no listener), open to
    clients on any loopback address (each stand-in replica connects from its own 127.0.0.x)."""

    @pytest.fixture(scope="module")
    def hubdb(pg: PgServer) -> Iterator[Database]:
        allow_loopback_clients(pg)
        db = Database(pg, "scion", listen=False)
        try:
            yield db
        finally:
            db.close()

    return hubdb


def module_operator(logs: str, extra_args: list[str] | None = None) -> Any:
    """A module-scoped `operator` fixture: one operator process watching the module's `ns`."""

    @pytest.fixture(scope="module")
    def operator(
        kube_env: KubeTestEnv, ns: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[OperatorProcess]:
        with OperatorProcess(
            kube_env.kubeconfig, [ns], tmp_path_factory.mktemp(logs), extra_args=extra_args
        ) as proc:
            yield proc

    return operator

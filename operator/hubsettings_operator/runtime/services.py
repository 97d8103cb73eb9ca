"""What the operator process builds once and every check shares: config, the Kubernetes calls, the bounded
database pools, the store factory, the one status writer, and the Event poster.

The runner builds one `Services` (`build_services`); the reconcile (runtime/reconciler.py), the drift check
(runtime/drift_check.py) and the convergence check (runtime/convergence_check.py) each take it, and none of
them imports another. Tests build theirs with the same function, injecting a fake Kubernetes or a store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from hubsettings_operator.runtime.config import OperatorConfig
from hubsettings_operator.runtime.status_writer import StatusWriter
from hubsettings_operator.status.rules import Event
from hubsettings_operator.table.store import PoolRegistry, SettingsStore


class KubeAPI(Protocol):
    """The Kubernetes calls of the operator itself (runtime/kube.py's `Kube`; tests inject a fake)."""

    async def dsn_from_secret(self, namespace: str, name: str, key: str) -> str: ...
    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...
    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None: ...
    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None: ...
    async def close(self) -> None: ...


# (dsn, owner uid) -> a store on that database. The table layer's store is the default; tests inject others.
StoreFactory = Callable[[str, str], SettingsStore]
Emit = Callable[[Mapping[str, Any], Event], None]


@dataclass(frozen=True)
class Services:
    config: OperatorConfig
    kube: KubeAPI
    pools: PoolRegistry
    store_factory: StoreFactory
    writer: StatusWriter
    emit: Emit
    clock: Callable[[], datetime]


def build_services(
    kube: KubeAPI,
    config: OperatorConfig | None = None,
    *,
    pools: PoolRegistry | None = None,
    emit: Emit | None = None,
    store_factory: StoreFactory | None = None,
    writer: StatusWriter | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Services:
    """Everything once: pools bounded by `config.max_db_connections`, stores sharing them, one writer."""
    config = config or OperatorConfig()
    registry = pools or PoolRegistry(max_connections=config.max_db_connections)
    clock = clock or (lambda: datetime.now(UTC))
    return Services(
        config=config,
        kube=kube,
        pools=registry,
        store_factory=store_factory or (lambda dsn, owner: SettingsStore(dsn, registry, owner=owner)),
        writer=writer or StatusWriter(kube, clock),
        emit=emit or (lambda body, event: None),
        clock=clock,
    )


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object as it is now. kopf hands timers a live body whose source mapping is *replaced* by every
    watch event (never mutated in place), so a shallow copy keeps the spec, metadata and status of one
    moment together. (No deepcopy: a hostile spec may nest thousands of levels.)"""
    return dict(body)


def generation_of(body: Mapping[str, Any]) -> int | None:
    gen = (body.get("metadata") or {}).get("generation")
    return gen if isinstance(gen, int) else None

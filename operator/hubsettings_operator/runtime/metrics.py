"""Prometheus metrics of the operator (served on --metrics-port, /metrics). Documented in docs/metrics.md.

Labels are namespace/name of a HubSettings and bounded enums; never a DSN, a value or a key of a secret.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "hubsettings_reconciles_total",
    "Reconciles by result (applied, noop, invalid, suspended, error reason).",
    ["namespace", "name", "result"],
    registry=REGISTRY,
)
APPLY_SECONDS = Histogram(
    "hubsettings_apply_duration_seconds",
    "Duration of one apply transaction (lock, read, plan, write, notify).",
    ["namespace", "name"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
ROWS_CHANGED = Counter(
    "hubsettings_rows_changed_total",
    "Rows written by the operator, by action (insert, update, delete, adopt).",
    ["namespace", "name", "action"],
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "hubsettings_notifications_sent_total",
    "NOTIFY messages sent (only when a value changed).",
    ["namespace", "name"],
    registry=REGISTRY,
)
LAST_APPLY = Gauge(
    "hubsettings_last_successful_apply_timestamp_seconds",
    "Unix time of the last successful reconcile (applied or verified up to date).",
    ["namespace", "name"],
    registry=REGISTRY,
)
CONFLICTS = Gauge(
    "hubsettings_conflicts",
    "Rows edited out of band or owned by another HubSettings, as of the last reconcile.",
    ["namespace", "name"],
    registry=REGISTRY,
)
DRIFTED_PODS = Gauge(
    "hubsettings_drift_pods",
    "Hub pods whose Layer 0 settings disagree with the HubSettings or their peers.",
    ["namespace", "name"],
    registry=REGISTRY,
)
DRIFT_ITEMS = Gauge(
    "hubsettings_drift_items",
    "Layer 0 drift items (before the status cap).",
    ["namespace", "name"],
    registry=REGISTRY,
)
CHECKED_PODS = Gauge(
    "hubsettings_drift_checked_pods",
    "Hub pods compared by the last drift check.",
    ["namespace", "name"],
    registry=REGISTRY,
)
INDEXED_PODS = Gauge(
    "hubsettings_indexed_pods",
    "Pods held in the operator's pod index (selected by --pod-selector).",
    registry=REGISTRY,
)
REPLICAS_BEHIND = Gauge(
    "hubsettings_replicas_behind",
    "Hub pods that have not loaded every revision this HubSettings wrote (spec.convergence).",
    ["namespace", "name"],
    registry=REGISTRY,
)
CONVERGE_SECONDS = Histogram(
    "hubsettings_convergence_seconds",
    "From an apply that changed rows to every Hub pod having loaded the written revisions.",
    ["namespace", "name"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90, 120, 300),
    registry=REGISTRY,
)
DB_CONNECTIONS_OPEN = Gauge(
    "hubsettings_db_connections_open",
    "PostgreSQL connections the operator holds open, over all databases (bounded by --max-db-connections).",
    registry=REGISTRY,
)
DB_CONNECTION_WAITERS = Gauge(
    "hubsettings_db_connection_waiters",
    "Reconciles queued for one of the operator's database connections right now (the cap is full).",
    registry=REGISTRY,
)
DB_CONNECTION_WAIT_SECONDS = Histogram(
    "hubsettings_db_connection_wait_seconds",
    "How long a queued reconcile waited for a connection slot (only waits that queued).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
DB_CONNECTION_WAIT_TIMEOUTS = Gauge(
    "hubsettings_db_connection_wait_timeouts",
    "Waits for a connection slot that ended at the pool timeout since start (status WaitingForConnection).",
    registry=REGISTRY,
)


class ApplySeries(NamedTuple):
    """One HubSettings' series that every apply updates."""

    apply_seconds: Histogram
    notifications: Counter
    last_apply: Gauge
    conflicts: Gauge


# Per (namespace, name): the labelled children, looked up once instead of four `labels()` calls per reconcile
# (each validates and locks). `forget` drops the entry with the series, so a re-created object gets new ones.
_series: dict[tuple[str, str], ApplySeries] = {}


def apply_series(namespace: str, name: str) -> ApplySeries:
    found = _series.get((namespace, name))
    if found is None:
        found = _series[(namespace, name)] = ApplySeries(
            APPLY_SECONDS.labels(namespace, name),
            NOTIFICATIONS.labels(namespace, name),
            LAST_APPLY.labels(namespace, name),
            CONFLICTS.labels(namespace, name),
        )
    return found


def forget(namespace: str, name: str) -> None:
    """Drop the per-CR series of a deleted HubSettings (bounded cardinality)."""
    _series.pop((namespace, name), None)
    for metric in (
        APPLY_SECONDS,
        NOTIFICATIONS,
        LAST_APPLY,
        CONFLICTS,
        DRIFTED_PODS,
        DRIFT_ITEMS,
        CHECKED_PODS,
        REPLICAS_BEHIND,
        CONVERGE_SECONDS,
    ):
        with contextlib.suppress(KeyError):
            metric.remove(namespace, name)


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a pod's metrics port listens on all interfaces
    start_http_server(port, addr=addr, registry=REGISTRY)

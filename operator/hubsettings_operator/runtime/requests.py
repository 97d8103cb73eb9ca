"""Reconcile on request and per-object resync: which annotation asks, what status echoes, how long to wait.

The convention is Flux's: `reconcile.fluxcd.io/requestedAt` holds any string (Flux's CLI and most GitOps
tools write an RFC 3339 time); once the operator has reconciled the object, `status.lastHandledReconcileAt`
holds the same string. Tools that already speak it (`flux reconcile`'s annotation, kstatus, dashboards)
work unchanged. See docs/operations.md ("Reconcile now").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECONCILE_REQUEST_ANNOTATION = "reconcile.fluxcd.io/requestedAt"
HANDLED_FIELD = "lastHandledReconcileAt"


def pending_request(body: Mapping[str, Any]) -> str | None:
    """The annotation's value when the operator has not echoed it yet, else `None`."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(RECONCILE_REQUEST_ANNOTATION)
    if value is None:
        return None
    handled = (body.get("status") or {}).get(HANDLED_FIELD)
    return None if str(value) == handled else str(value)


def resync_period(spec: Mapping[str, Any] | None, default: float) -> float:
    """The object's own resync period (spec.resyncSeconds, bounded by the CRD), else the operator's."""
    value = (spec or {}).get("resyncSeconds")
    return float(value) if isinstance(value, int) and value > 0 else default


def has_own_period(spec: Mapping[str, Any] | None) -> bool:
    return isinstance((spec or {}).get("resyncSeconds"), int)

"""runtime/requests.py: when a reconcile request is pending, and which resync period an object gets."""

from __future__ import annotations

from typing import Any

import pytest

from hubsettings_operator.runtime.requests import (
    RECONCILE_REQUEST_ANNOTATION,
    has_own_period,
    pending_request,
    resync_period,
)
from hubsettings_operator.spec.validation import validate_spec


def body(annotation: str | None, handled: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "hub"}
    if annotation is not None:
        meta["annotations"] = {RECONCILE_REQUEST_ANNOTATION: annotation, "other": "x"}
    return {"metadata": meta, "status": {} if handled is None else {"lastHandledReconcileAt": handled}}


@pytest.mark.parametrize(
    ("annotation", "handled", "pending"),
    [
        (None, None, None),
        (None, "old", None),
        ("2026-12-03T10:00:00Z", None, "2026-12-03T10:00:00Z"),
        ("2026-12-03T10:00:00Z", "2026-12-03T10:00:00Z", None),
        ("new", "old", "new"),
    ],
)
def test_a_request_is_pending_until_status_echoes_its_value(
    annotation: str | None, handled: str | None, pending: str | None
) -> None:
    assert pending_request(body(annotation, handled)) == pending


def test_an_object_without_status_or_metadata_has_no_request() -> None:
    assert pending_request({}) is None


def test_own_period_overrides_the_operators() -> None:
    assert resync_period({"resyncSeconds": 45}, 300.0) == 45.0 and has_own_period({"resyncSeconds": 45})
    assert resync_period({}, 300.0) == 300.0 and not has_own_period({}) and not has_own_period(None)


@pytest.mark.parametrize(("period", "ok"), [(29, False), (30, True), (86400, True), (86401, False)])
def test_resync_seconds_bounds_in_the_operators_validation(period: int, ok: bool) -> None:
    spec, errors = validate_spec({"database": {"secretRef": {"name": "db"}}, "resyncSeconds": period})
    assert (spec is not None) is ok
    assert ok or any("resyncSeconds" in str(e) for e in errors)

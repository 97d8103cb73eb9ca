"""Reconcile on request (`reconcile.fluxcd.io/requestedAt`) and the per-object resync period, on the real
kube-apiserver with a real PostgreSQL.

The operator runs with hour-long resync and health periods, so only the request (or the object's own
`spec.resyncSeconds`) can repair an out-of-band edit within the test.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import psycopg
import pytest
from kubernetes import client as k8s

from tests.support.kubeapi import (
    Database,
    condition,
    create,
    eventually,
    get,
    hubsettings,
    module_namespace,
    module_operator,
    patch,
    wait_condition,
)
from tests.support.operator_proc import OperatorProcess

REQUEST = "reconcile.fluxcd.io/requestedAt"
SETTINGS = {"maintenance": {"admin_mode": False, "maintenance_message": "hello"}}

ns = module_namespace("reqrec")
operator = module_operator(
    "reqrec-logs", ["--resync-seconds", "3600", "--health-seconds", "3600", "--drift-seconds", "3600"]
)


def spec(secret: str, **extra: Any) -> dict[str, Any]:
    return {"database": {"secretRef": {"name": secret, "key": "url"}}, "settings": SETTINGS, **extra}


def edit_out_of_band(db: Database, message: str) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE hub_settings SET value = jsonb_set(value, '{maintenance_message}', %s::jsonb), "
            "revision = revision + 1, updated_by = 'admin@example.com', update_time = now() "
            "WHERE section = 'maintenance'",
            (json.dumps(message),),
        )


def message(db: Database) -> str:
    return str(db.values()["maintenance"]["maintenance_message"])


def request(api: k8s.ApiClient, namespace: str, name: str, value: str) -> None:
    patch(api, namespace, name, {"metadata": {"annotations": {REQUEST: value}}})


def handled(api: k8s.ApiClient, namespace: str, name: str) -> str | None:
    value = get(api, namespace, name).get("status", {}).get("lastHandledReconcileAt")
    return None if value is None else str(value)


def test_request_reconciles_at_once_and_is_echoed_once(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("req", spec(secret)))
    wait_condition(kube_api, ns, "req", "Ready", "True")
    assert handled(kube_api, ns, "req") is None  # no request, nothing echoed

    edit_out_of_band(db, "edited in the UI")
    request(kube_api, ns, "req", "2026-12-03T10:00:00Z")
    eventually(lambda: message(db) == "hello", 20, what="the request repaired the out-of-band edit")
    eventually(lambda: handled(kube_api, ns, "req") == "2026-12-03T10:00:00Z", 20, what="request echoed")

    # The same value again is no new request: an edit now stays (the hour-long resync would be the next).
    edit_out_of_band(db, "second edit")
    patch(kube_api, ns, "req", {"metadata": {"labels": {"touched": "yes"}}})  # a watch event, no request
    time.sleep(3)  # what the operator would do with it, it has done by now
    assert message(db) == "second edit"
    request(kube_api, ns, "req", "any string works")
    eventually(lambda: message(db) == "hello", 20, what="a new value is a new request")
    eventually(lambda: handled(kube_api, ns, "req") == "any string works", 20, what="second echo")
    assert "not handled yet" not in operator.logs()


def test_request_under_suspend_is_echoed_and_writes_nothing(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("susp", spec(secret)))
    wait_condition(kube_api, ns, "susp", "Ready", "True")
    patch(kube_api, ns, "susp", {"spec": {"suspend": True}})
    wait_condition(kube_api, ns, "susp", "Ready", "False", "Suspended")
    edit_out_of_band(db, "edited while suspended")
    db.drain()
    request(kube_api, ns, "susp", "suspended-request")
    eventually(lambda: handled(kube_api, ns, "susp") == "suspended-request", 20, what="echo under suspend")
    assert message(db) == "edited while suspended" and db.drain() == []
    assert condition(get(kube_api, ns, "susp"), "Ready")["reason"] == "Suspended"


def test_request_present_at_creation_is_handled(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    _, secret = database
    create(kube_api, ns, hubsettings("born", spec(secret), annotations={REQUEST: "at-birth"}))
    eventually(lambda: handled(kube_api, ns, "born") == "at-birth", 20, what="echo of a request at creation")
    assert condition(get(kube_api, ns, "born"), "Ready")["status"] == "True"


@pytest.mark.parametrize("period", [29, 86401])
def test_resync_seconds_out_of_bounds_is_refused_by_the_api_server(
    kube_api: k8s.ApiClient, ns: str, period: int
) -> None:
    with pytest.raises(k8s.ApiException) as info:
        create(kube_api, ns, hubsettings(f"bad-{period}", spec("x", resyncSeconds=period)))
    assert info.value.status == 422 and "resyncSeconds" in str(info.value.body)


def test_own_resync_period_repairs_an_edit_without_any_request(
    kube_api: k8s.ApiClient, ns: str, operator: OperatorProcess, database: tuple[Database, str]
) -> None:
    db, secret = database
    create(kube_api, ns, hubsettings("own", spec(secret, resyncSeconds=30)))
    wait_condition(kube_api, ns, "own", "Ready", "True")
    edit_out_of_band(db, "edited, repaired by the object's own period")
    # The operator's period is an hour: only spec.resyncSeconds (30 s) can bring it back.
    eventually(lambda: message(db) == "hello", 75, what="repaired by the object's own resync period")


def test_the_api_server_is_the_kubernetes_version_asked_for(kube_api: k8s.ApiClient) -> None:
    """`make test-oldest-k8s` runs this module on KUBERNETES_VERSION: prove the server is that version."""
    wanted = os.environ.get("KUBERNETES_VERSION", "v1.35.4")  # hack/build-testenv.sh's default
    assert k8s.VersionApi(kube_api).get_code().git_version == wanted

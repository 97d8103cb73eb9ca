"""On the real kube-apiserver (issue 25): a just-created object is never Current to kstatus, even with no
operator running (the CRD's status default), and a spec at the size limit is stored, applied and reported
while one a byte over gets one clear Stalled reason, never a storm of `request is too large` retries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s

from hubsettings_operator.spec.models import GROUP, PLURAL, VERSION
from hubsettings_operator.spec.size import MAX_SPEC_BYTES
from tests.support.bigspec import spec_of
from tests.support.gitops import argocd_health, kstatus
from tests.support.kubeapi import (
    Database,
    condition,
    create,
    events,
    eventually,
    get,
    hubsettings,
    module_namespace,
    patch,
    wait_condition,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess

ns = module_namespace("truth-api")


def spec(secret: str) -> dict[str, Any]:
    return {
        "database": {"secretRef": {"name": secret}, "profile": "scion"},
        "settings": {"maintenance": {"admin_mode": False, "maintenance_message": "hello"}},
    }


def judged_in_progress(obj: dict[str, Any]) -> None:
    verdict = kstatus(obj)
    assert verdict["status"] == "InProgress", verdict
    assert verdict["cel"] == "InProgress", verdict
    assert argocd_health(obj)["status"] == "Progressing"


def test_created_with_no_operator_running_is_never_current(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    database: tuple[Database, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _db, secret = database
    objects = k8s.CustomObjectsApi(kube_api)
    # No operator watches this namespace yet: whatever status the object has, the API server gave it.
    created = create(kube_api, ns, hubsettings("early", spec(secret)))
    assert created["status"] == {"observedGeneration": -1}
    judged_in_progress(created)
    listed = objects.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    for obj in [get(kube_api, ns, "early"), *[o for o in listed if o["metadata"]["name"] == "early"]]:
        assert obj["status"] == {"observedGeneration": -1}
        judged_in_progress(obj)
    # A spec change with still no operator: generation 2, still in progress.
    changed = patch(
        kube_api, ns, "early", {"spec": {"settings": {"maintenance": {"maintenance_message": "2"}}}}
    )
    assert changed["metadata"]["generation"] == 2
    judged_in_progress(changed)
    # The operator comes: it applies generation 2 and only then is the object Current.
    with OperatorProcess(kube_env.kubeconfig, [ns], tmp_path_factory.mktemp("truth-api-early")):
        obj = wait_condition(kube_api, ns, "early", "Ready", "True", timeout=60)
        assert obj["status"]["observedGeneration"] == 2
        assert kstatus(obj)["status"] == "Current" and argocd_health(obj)["status"] == "Healthy"


def test_spec_at_the_size_limit_and_one_byte_over(
    kube_api: k8s.ApiClient,
    kube_env: KubeTestEnv,
    ns: str,
    database: tuple[Database, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    db, secret = database
    at_limit = spec_of(MAX_SPEC_BYTES, spec(secret))
    with OperatorProcess(kube_env.kubeconfig, [ns], tmp_path_factory.mktemp("truth-api-big")) as operator:
        create(kube_api, ns, hubsettings("big", at_limit))
        obj = wait_condition(kube_api, ns, "big", "Ready", "True", timeout=90)
        assert obj["spec"]["extraSettings"] == at_limit["extraSettings"]  # stored whole
        assert set(at_limit["extraSettings"]) <= set(db.rows())  # applied
        # kopf's diff base (stored once the handler is done) is a digest, not a second copy of the spec.
        obj = eventually(
            lambda: (o := get(kube_api, ns, "big"))["status"].get("lastHandledConfiguration") and o,
            30,
            what="diff base stored",
        )
        assert obj["status"]["lastHandledConfiguration"].startswith("sha256:")
        assert len(json.dumps(obj)) < 1536 * 1024
        # A later change is handled as usual (no digest confusion, no retries).
        patch(kube_api, ns, "big", {"spec": {"settings": {"maintenance": {"maintenance_message": "big-2"}}}})
        eventually(
            lambda: db.rows()["maintenance"]["value"]["maintenance_message"] == "big-2", 30, what="big-2"
        )
        # One byte over: one clear Stalled reason naming the size, and no status write refused by etcd.
        over = spec_of(MAX_SPEC_BYTES + 1, spec(secret))
        create(kube_api, ns, hubsettings("over", over))
        obj = wait_condition(kube_api, ns, "over", "Stalled", "True", "InvalidSpec", timeout=60)
        message = condition(obj, "Stalled")["message"]
        assert f"{MAX_SPEC_BYTES + 1} bytes" in message and "etcd" in message
        wait_condition(kube_api, ns, "big", "Ready", "True", timeout=30)
        warnings = eventually(
            lambda: [e for e in events(kube_api, ns, "over") if e.reason == "InvalidSpec"], 20, what="event"
        )
        assert len(warnings) == 1 and (warnings[0].count or 1) == 1
        assert "request is too large" not in operator.logs()

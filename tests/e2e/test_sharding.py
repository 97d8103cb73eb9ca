"""Sharding by a label on HubSettings (issue 24), on the real API server: two operators, each with its own
`--shard-selector`, never touch each other's objects, and relabelling an object hands it over cleanly.

"Touch" is read from what each operator process itself reports: its reconcile counter per object (its
/metrics) and the objects named in its log. The handover is proven by the new shard applying a later spec
change while the old shard's counter for that object stays where it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

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
    patch,
    put_secret,
)
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

LABEL = "hubsettings.scion.dev/shard"
ns = module_namespace("shards")


@pytest.fixture(scope="module")
def shards(
    kube_env: KubeTestEnv, ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, OperatorProcess]]:
    logs: Path = tmp_path_factory.mktemp("shard-logs")
    procs = {
        shard: OperatorProcess(
            kube_env.kubeconfig,
            [ns],
            logs,
            name=f"shard-{shard}",
            extra_args=["--shard-selector", f"{LABEL}={shard}"],
        )
        for shard in ("a", "b")
    }
    try:
        for proc in procs.values():
            proc.start()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


def reconciled(proc: OperatorProcess, ns: str) -> dict[str, float]:
    """Object name -> reconciles this operator process ran on it (its own counter)."""
    out: dict[str, float] = {}
    for line in proc.metrics().splitlines():
        m = re.match(r"^hubsettings_reconciles_total\{([^}]*)\} (\S+)$", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("namespace") == ns:
            out[labels["name"]] = out.get(labels["name"], 0.0) + float(m.group(2))
    return out


def spec(secret: str, value: str) -> dict[str, object]:
    return {
        "database": {"secretRef": {"name": secret, "key": "url"}},
        "extraSettings": {"shard.value": value},
    }


def ready_on(api: k8s.ApiClient, ns: str, name: str, generation: int) -> bool:
    obj = get(api, ns, name)
    return (
        condition(obj, "Ready").get("status") == "True"
        and obj["status"].get("observedGeneration") == generation
    )


def test_two_shards_never_touch_each_others_objects_and_a_relabel_hands_over(
    kube_api: k8s.ApiClient, ns: str, shards: dict[str, OperatorProcess], pg: PgServer
) -> None:
    dbs: dict[str, Database] = {}
    owner = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
    try:
        for name, shard in owner.items():
            dbs[name] = Database(pg, listen=False)
            put_secret(kube_api, ns, f"db-{name}", {"url": dbs[name].dsn})
            create(kube_api, ns, hubsettings(name, spec(f"db-{name}", f"{name}-v1"), labels={LABEL: shard}))
        for name in owner:
            eventually(lambda n=name: ready_on(kube_api, ns, n, 1), 60, what=f"{name} Ready")
            assert dbs[name].values().get("shard.value") == f"{name}-v1"

        # Each shard reconciled its own objects, and only those; its log never names the other shard's.
        for shard, proc in shards.items():
            mine = {n for n, s in owner.items() if s == shard}
            assert set(reconciled(proc, ns)) == mine
            others = [n for n, s in owner.items() if s != shard]
            assert not [
                line for line in proc.logs().splitlines() if any(f"{ns}/{n}]" in line for n in others)
            ]

        # Move a2 from shard a to shard b: b takes it (its resume handler reconciles it) ...
        patch(kube_api, ns, "a2", {"metadata": {"labels": {LABEL: "b"}}})
        eventually(lambda: "a2" in reconciled(shards["b"], ns), 60, what="shard b picks up a2")
        before_a = reconciled(shards["a"], ns).get("a2")
        log_mark = len(shards["a"].logs())
        # ... and a later change of a2 is applied by b alone.
        generation = patch(kube_api, ns, "a2", {"spec": {"extraSettings": {"shard.value": "a2-v2"}}})[
            "metadata"
        ]["generation"]
        eventually(lambda: ready_on(kube_api, ns, "a2", generation), 60, what="a2 v2 applied")
        assert dbs["a2"].values().get("shard.value") == "a2-v2"
        assert reconciled(shards["a"], ns).get("a2") == before_a
        assert f"{ns}/a2]" not in shards["a"].logs()[log_mark:]
        assert reconciled(shards["b"], ns)["a2"] >= 1
        # The objects that did not move stay where they were.
        assert set(reconciled(shards["a"], ns)) <= {"a1", "a2"}
        assert set(reconciled(shards["b"], ns)) == {"b1", "b2", "a2"}
    finally:
        for db in dbs.values():
            db.close()

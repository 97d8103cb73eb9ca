"""Delete the active operator pod: the standby takes over and applies the next change. The time from the
delete to that change's commit is printed (bench/node_tier.py reports it too), never asserted."""

from __future__ import annotations

import json
import time

from tests.cluster.helpers import (
    HUB_NS,
    OPERATOR_NS,
    QuickStart,
    active_pod,
    operator_pods,
    peers,
    pod_ready,
    wait_for,
    wait_hs_ready,
    wait_operator_ready,
    wait_until,
)
from tests.support.nodeenv import NodeCluster


def test_delete_active_pod_standby_takes_over(node_cluster: NodeCluster, quickstart: QuickStart) -> None:
    wait_operator_ready(node_cluster)
    wait_hs_ready(node_cluster)
    active = wait_for(node_cluster, "an active operator pod", lambda: active_pod(node_cluster))
    standby = next(
        p["metadata"]["name"] for p in operator_pods(node_cluster) if p["metadata"]["name"] != active
    )
    message = f"failover {time.time():.0f}"

    start = time.monotonic()
    node_cluster.kubectl("-n", OPERATOR_NS, "delete", "pod", active, "--wait=false")
    patch = {"spec": {"settings": {"maintenance": {"admin_mode": False, "maintenance_message": message}}}}
    node_cluster.kubectl("-n", HUB_NS, "patch", "hs", "hub", "--type=merge", "-p", json.dumps(patch))
    wait_for(
        node_cluster,
        "the change applied after the failover",
        lambda: quickstart.db.values().get("maintenance", {}).get("maintenance_message") == message,
        timeout=240,
        interval=0.05,
    )
    took = time.monotonic() - start
    print(f"\nfailover: delete of the active pod -> next change committed in {took:.2f}s")

    # The deleted replica leaves the peering (at once on a graceful shutdown, at the latest when its record
    # expires); the standby was alive all along.
    wait_until(
        node_cluster,
        f"{active} gone from the peering",
        lambda: peers(node_cluster),
        lambda records: not any(f"@{active}/" in peer for peer in records),
        timeout=120,
    )
    assert any(p["metadata"]["name"] == standby and pod_ready(p) for p in operator_pods(node_cluster))
    wait_operator_ready(node_cluster)  # the Deployment replaced the deleted pod

"""Stopping the node tier leaves nothing on the host: no bridge, veth, network namespace, route, mount,
cgroup, iptables rule, process or changed kernel setting. Runs last (it stops the session's cluster)."""

from __future__ import annotations

from typing import Any

from tests.support.nodeenv import BRIDGE, NodeCluster, host_snapshot


def test_teardown_leaves_nothing(node_cluster: NodeCluster, host_before: dict[str, Any]) -> None:
    during = host_snapshot()
    # The comparison below can fail: while the tier runs, its traces are visible to the same snapshot.
    assert BRIDGE in during["links"]
    assert any("blackhole 10.0.0.0/24" in r for r in during["routes"])
    assert any(p.split(" ", 1)[1].endswith("kubelet") for p in during["processes"])
    # The network rule: no iptables rule appears while the tier runs (no kube-proxy, no CNI masquerade).
    assert during["iptables"] == host_before["iptables"]
    assert during["sysctls"]["net/ipv4/ip_forward"] == host_before["sysctls"]["net/ipv4/ip_forward"]

    node_cluster.stop()
    after = host_snapshot()
    for key, before in host_before.items():
        assert after[key] == before, f"{key} differs after teardown:\nbefore {before}\nafter  {after[key]}"

"""The README quick start on a real node: the chart's pods run the image `make image` built, two replicas with
one active through kopf peering, under the restricted Pod Security Standard; a HubSettings lands in PostgreSQL
with its NOTIFY; pods reach only addresses on this machine."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.cluster.helpers import (
    HUB_NS,
    OPERATOR_NS,
    REPO_ROOT,
    QuickStart,
    active_pod,
    condition,
    operator_pods,
    peers,
    sh,
    wait_for,
    wait_hs_ready,
    wait_operator_ready,
    wait_until,
)
from tests.support.nodeenv import KUBERNETES_SERVICE_IP, NODE_IP, POD_SUBNET, SERVICE_CIDR, NodeCluster


def test_quickstart_runs_two_ready_replicas_one_active(
    node_cluster: NodeCluster, quickstart: QuickStart
) -> None:
    pods = wait_operator_ready(node_cluster)
    assert len(pods) == 2
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "localhost/hubsettings-operator:0.1.0"
        assert container["imagePullPolicy"] == "Never"
        assert pod["spec"]["nodeName"] == "hubsettings-node"
    # Exactly the two replicas registered in the peering object, with distinct priorities: one is active.
    records = wait_until(node_cluster, "2 kopf peers", lambda: peers(node_cluster), lambda p: len(p) == 2)
    assert len({r["priority"] for r in records.values()}) == 2
    assert wait_for(node_cluster, "an active operator pod", lambda: active_pod(node_cluster)) in {
        p["metadata"]["name"] for p in pods
    }
    print(f"\nquick start timings (s): {json.dumps({k: round(v, 1) for k, v in quickstart.seconds.items()})}")


def test_namespace_enforces_restricted_and_the_operator_is_admitted(
    node_cluster: NodeCluster, quickstart: QuickStart
) -> None:
    del quickstart
    ns = node_cluster.kubectl("get", "namespace", OPERATOR_NS, "-o", "json").stdout
    assert json.loads(ns)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert len(operator_pods(node_cluster)) == 2  # admitted under restricted
    # The enforcement is real: a pod that runs as root with privilege escalation is refused there.
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "not-restricted", "namespace": OPERATOR_NS},
        "spec": {"containers": [{"name": "c", "image": "localhost/hubsettings-pause:3.10"}]},
    }
    proc = subprocess.run(
        ["kubectl", "apply", "--dry-run=server", "-f", "-"],
        input=json.dumps(bad),
        env=node_cluster.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "violates PodSecurity" in proc.stderr


def test_minimal_example_lands_in_postgres_with_notify(
    node_cluster: NodeCluster, quickstart: QuickStart
) -> None:
    obj = wait_hs_ready(node_cluster)
    assert condition(obj, "Synced")["status"] == "True"
    rows = quickstart.db.values()
    assert rows["access"]["admin_emails"] == ["ops@example.com"]
    assert rows["maintenance"]["admin_mode"] is False
    assert quickstart.db.drain(wait=2.0), "no NOTIFY on scion_ev_global after the first apply"


def test_full_example_lands_too(node_cluster: NodeCluster, quickstart: QuickStart) -> None:
    wait_hs_ready(node_cluster)
    quickstart.db.drain(wait=0.2)
    sh(node_cluster, ["kubectl", "apply", "-f", str(REPO_ROOT / "examples" / "full.yaml")])
    generation = json.loads(node_cluster.kubectl("get", "hs", "-n", HUB_NS, "hub", "-o", "json").stdout)[
        "metadata"
    ]["generation"]
    wait_hs_ready(node_cluster, generation=generation)
    rows = wait_until(
        node_cluster,
        "full.yaml's rows",
        quickstart.db.values,
        lambda r: "oncall@example.com" in str(r.get("access")),
    )
    assert rows["access"]["admin_emails"] == ["ops@example.com", "oncall@example.com"]
    assert {"telemetry", "lifecycle"} <= set(rows)
    assert quickstart.db.drain(wait=2.0), "no NOTIFY after applying full.yaml"


@pytest.mark.parametrize("probe", ["routes", "service-host"])
def test_pods_reach_only_this_machine(node_cluster: NodeCluster, quickstart: QuickStart, probe: str) -> None:
    """The tier's network rule, seen from inside an operator pod (docs/node-tier.md)."""
    del quickstart
    pod = operator_pods(node_cluster)[0]["metadata"]["name"]
    if probe == "routes":
        # /proc/net/route: destination and mask in little-endian hex; no default route (0.0.0.0/0) at all.
        code = (
            "import ipaddress,socket,struct\n"
            "for line in open('/proc/net/route').read().splitlines()[1:]:\n"
            "    f=line.split(); d=socket.inet_ntoa(struct.pack('<L',int(f[1],16)));"
            " m=bin(int(f[7],16)).count('1'); print(ipaddress.ip_network(f'{d}/{m}'))\n"
        )
        out = node_cluster.kubectl("-n", OPERATOR_NS, "exec", pod, "--", "python", "-c", code).stdout
        assert sorted(out.split()) == sorted([str(POD_SUBNET), str(SERVICE_CIDR)])
    else:
        out = node_cluster.kubectl(
            "-n", OPERATOR_NS, "exec", pod, "--", "printenv", "KUBERNETES_SERVICE_HOST"
        ).stdout
        assert out.strip() == KUBERNETES_SERVICE_IP
        addrs = subprocess.run(
            ["ip", "-o", "addr", "show", "hsnode0"], capture_output=True, text=True, check=True
        ).stdout
        assert f"{KUBERNETES_SERVICE_IP}/32" in addrs and f"{NODE_IP}/24" in addrs


def test_operator_image_runs_as_non_root_on_a_read_only_root_without_build_tools(
    node_cluster: NodeCluster, quickstart: QuickStart
) -> None:
    del quickstart
    pod = operator_pods(node_cluster)[0]["metadata"]["name"]
    code = (
        "import os, shutil\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n    open('/opt/venv/x', 'w')\nexcept OSError as e:\n    print('ro', e.errno)\n"
        "print([t for t in ('gcc', 'cc', 'c++', 'pip', 'pip3') if shutil.which(t)])\n"
    )
    out = node_cluster.kubectl("-n", OPERATOR_NS, "exec", pod, "--", "python", "-c", code).stdout.splitlines()
    assert out == ["65532 65532", "ro 30", "[]"]  # 30: EROFS

"""Benchmark of the node tier: the operator running in pods (the chart, 2 replicas, kopf peering).

`python -m bench.node_tier [--iterations N] [--failovers K]` starts the node tier (tests/support/nodeenv.py),
installs the operator by the README's quick start, then measures:

- patch -> commit: PATCH of a HubSettings on the API server -> the row committed in PostgreSQL (the NOTIFY sent
  at commit is the clock), operator in a pod; target p99 < 1 s;
- the same with the operator as a host subprocess against the same API server (the API-server tier's setting,
  `bench/end_to_end.py`): the same-run baseline;
- failover: delete of the active operator pod -> the next change committed by the standby.

Printed as a table like `python -m bench`'s (reported, never asserted). Needs root, like the tier.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from tests.cluster.helpers import (
    HUB_NS,
    OPERATOR_NS,
    active_pod,
    operator_pods,
    run_quickstart,
    tool_path,
    wait_for,
    wait_hs_ready,
    wait_operator_ready,
)
from tests.support.kubeapi import Database
from tests.support.nodeenv import NodeCluster, build_images
from tests.support.operator_proc import OperatorProcess
from tests.support.pgserver import PgServer

from bench.common import Row, percentile
from bench.report import table

BENCH = "7-node-tier"
TARGET_MS = 1000.0
CHANNEL = "scion_ev_global"


def _patch(cluster: NodeCluster, ns: str, message: str) -> None:
    body = {"spec": {"settings": {"maintenance": {"admin_mode": False, "maintenance_message": message}}}}
    cluster.kubectl("-n", ns, "patch", "hs", "hub", "--type=merge", "-p", json.dumps(body))


def _commit_latencies(cluster: NodeCluster, ns: str, dsn: str, iterations: int, tag: str) -> list[float]:
    """ms from just before `kubectl patch` to the NOTIFY of the commit carrying the new message."""
    samples: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        for i in range(iterations):
            message = f"{tag}-{i}"
            start = time.monotonic()
            _patch(cluster, ns, message)
            deadline = start + 60
            while time.monotonic() < deadline:
                for _ in conn.notifies(timeout=max(0.01, deadline - time.monotonic()), stop_after=1):
                    break
                row = conn.execute(
                    "SELECT value->>'maintenance_message' FROM hub_settings WHERE section = 'maintenance'"
                ).fetchone()
                if row and row[0] == message:
                    samples.append((time.monotonic() - start) * 1000)
                    break
            else:
                raise RuntimeError(f"{tag}: change {i} not committed within 60 s")
            time.sleep(0.2)  # let status writes settle: iterations must not overlap
    print(f"{tag}: {[round(x) for x in samples]} ms", file=sys.stderr, flush=True)
    return samples


def _failovers(cluster: NodeCluster, db: Database, count: int) -> list[float]:
    samples: list[float] = []
    for i in range(count):
        wait_operator_ready(cluster)
        active = wait_for(cluster, "an active operator pod", lambda: active_pod(cluster))
        message = f"failover-{i}-{time.time():.0f}"
        start = time.monotonic()
        cluster.kubectl("-n", OPERATOR_NS, "delete", "pod", active, "--wait=false")
        _patch(cluster, HUB_NS, message)
        wait_for(
            cluster,
            "the change after the failover",
            lambda m=message: db.values().get("maintenance", {}).get("maintenance_message") == m,
            timeout=240,
            interval=0.05,
        )
        samples.append((time.monotonic() - start) * 1000)
    return samples


def _baseline(cluster: NodeCluster, pg: PgServer, iterations: int, log_dir: Path) -> list[float]:
    """The operator as a host subprocess on the same API server, its own namespace and database."""
    ns = "bench-baseline"
    db = Database(pg, listen=False)
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "create", "secret", "generic", "hub-db", f"--from-literal=url={db.dsn}")
    spec: dict[str, Any] = {
        "apiVersion": "scion.dev/v1alpha1",
        "kind": "HubSettings",
        "metadata": {"name": "hub", "namespace": ns},
        "spec": {
            "database": {"secretRef": {"name": "hub-db", "key": "url"}},
            "settings": {"maintenance": {"admin_mode": False}},
        },
    }
    subprocess.run(
        ["kubectl", "apply", "-f", "-"],
        input=json.dumps(spec),
        text=True,
        env=cluster.env(),
        check=True,
        capture_output=True,
    )
    op = OperatorProcess(cluster.kubeconfig, [ns], log_dir, name="baseline")
    op.start()
    try:
        wait_hs_ready(cluster, namespace=ns)
        return _commit_latencies(cluster, ns, db.dsn, iterations, "baseline")
    finally:
        op.stop()
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_tier", description=__doc__)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args(argv)

    os.environ["PATH"] = tool_path()
    images = build_images()
    rows: list[Row] = []
    with PgServer() as pg, NodeCluster() as cluster, tempfile.TemporaryDirectory() as logs:
        cluster.import_images(images)
        t0 = time.monotonic()
        quick = run_quickstart(cluster, pg)
        wait_operator_ready(cluster)
        wait_hs_ready(cluster)
        print(f"quick start -> Ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        in_pod = _commit_latencies(cluster, HUB_NS, pg.dsn(quick.db.name), args.iterations, "pod")
        rows.append(
            Row(
                BENCH,
                "kubectl patch -> row committed, operator in a pod (chart, 2 replicas, peering)",
                1,
                "ms",
                in_pod,
                target="p99 < 1 s",
                met=percentile(in_pod, 99) < TARGET_MS if in_pod else None,
            )
        )
        rows.append(
            Row(
                BENCH,
                "baseline: same, operator as a host subprocess (API-server tier)",
                1,
                "ms",
                _baseline(cluster, pg, args.iterations, Path(logs)),
            )
        )
        if args.failovers:
            rows.append(
                Row(
                    BENCH,
                    "failover: delete the active pod -> next change committed",
                    1,
                    "ms",
                    _failovers(cluster, quick.db, args.failovers),
                )
            )
        print(f"operator pods: {[p['metadata']['name'] for p in operator_pods(cluster)]}", file=sys.stderr)
        quick.db.close()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

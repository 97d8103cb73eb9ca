"""Fixtures of the node tier: a one-node cluster where pods really run (tests/support/nodeenv.py), the
project's images loaded, PostgreSQL reachable from pods, and the operator installed by the README's quick start.

Every test collected under tests/cluster is marked `cluster` (`pytest -m "not cluster"` skips the tier). The tier
needs root and `make deps`; without them it is skipped with the reason, except under CI (CI=true), where a
missing prerequisite fails the run instead of hiding the tier.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import QuickStart, run_quickstart, tool_path
from tests.support.nodeenv import Images, NodeCluster, build_images, host_snapshot, missing_prerequisites
from tests.support.pgserver import PgServer

_CLUSTER_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    for item in items:
        if _CLUSTER_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.cluster)
            # The first test also pays for the session's fixtures: a cold image build (debootstrap, venv) and
            # the cluster's start can take minutes on a busy machine; pyproject's 300 s is for single tests.
            item.add_marker(pytest.mark.timeout(1800))


@pytest.fixture(scope="session")
def host_before() -> dict[str, Any]:
    """The host's network, mounts, cgroups, iptables, processes and sysctls before the tier started."""
    return host_snapshot()


@pytest.fixture(scope="session")
def node_images() -> Images:
    return build_images()


@pytest.fixture(scope="session")
def node_cluster(host_before: dict[str, Any], node_images: Images) -> Iterator[NodeCluster]:
    del host_before  # taken first, so it shows the host without the tier
    why = missing_prerequisites()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail("node tier prerequisites missing under CI: " + "; ".join(why))
        pytest.skip("node tier: " + "; ".join(why))
    os.environ["PATH"] = tool_path()  # kubectl and helm as the project provides them
    cluster = NodeCluster()
    cluster.start()
    try:
        cluster.import_images(node_images)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def quickstart(node_cluster: NodeCluster, pg: PgServer) -> QuickStart:
    """The operator installed and a HubSettings applied exactly as README.md's quick start says."""
    return run_quickstart(node_cluster, pg)

"""The one async drift reader (drift/sources.py) the operator and the CLI share."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from hubsettings_operator.drift import sources
from hubsettings_operator.spec.models import LabelSelector, Profile


def _pod(name: str, labels: dict[str, str], namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "hub",
                    "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}}],
                    "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}],
                }
            ]
        },
    }


class FakeCluster:
    """The CLI's one reader shape (cli/kube.Cluster: async list_pods / configmap_data / secret_data)."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [_pod("a", {"app": "hub"})]

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(f"cm/{name}")
        return {"SCION_SERVER_LOGLEVEL": "info"}

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(f"secret/{name}")
        return (
            None
            if name == "gone"
            else {"SCION_SERVER_AUTH_DEVTOKEN": base64.b64encode(b"t0ken-xyz").decode()}
        )


def test_cli_cluster_through_the_async_reader() -> None:
    cluster = FakeCluster()
    got = asyncio.run(sources.read_sources(cluster, "ns", [_pod("a", {"app": "hub"})]))
    assert sorted(cluster.reads) == ["cm/cm", "secret/gone", "secret/sec"]
    assert got.configmaps == {"cm": {"SCION_SERVER_LOGLEVEL": "info"}}
    assert got.secrets["gone"] is None  # unreadable: unresolved, never a crash
    assert set(got.secrets) == {"gone", "sec"}


def test_select_pods_set_based_and_namespace() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"app": "hub"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["agent"]}],
        }
    )
    pods = [
        _pod("a", {"app": "hub"}),
        _pod("b", {"app": "hub", "tier": "agent"}),
        _pod("c", {"app": "hub"}, namespace="other"),
    ]
    assert [p["metadata"]["name"] for p in sources.select_pods(pods, sel, "ns")] == ["a"]


def test_resolve_profile_one_rule() -> None:
    assert sources.resolve_profile("proposal", Profile.SCION) is Profile.PROPOSAL
    assert sources.resolve_profile(None, Profile.PROPOSAL) is Profile.PROPOSAL
    assert sources.resolve_profile(None, Profile.AUTO) is Profile.SCION
    assert sources.resolve_profile(Profile.SCION, Profile.PROPOSAL) is Profile.SCION

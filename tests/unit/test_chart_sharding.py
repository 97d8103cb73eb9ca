"""The chart renders shards (issue 24): `sharding.shards: [a, b]` gives one Deployment per shard, each with
`--shard-selector <label>=<shard>`, its own peering name (and peering object) and non-overlapping pod
selectors; without shards the chart renders exactly one Deployment as before."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.chart import HelmError, find, render_chart


def _args(deployment: dict[str, Any]) -> list[str]:
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def _value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def test_two_shards_render_two_deployments_each_with_its_selector_and_peering() -> None:
    objects = render_chart({"sharding": {"shards": ["a", "b"]}})
    deployments = {d["metadata"]["name"]: d for d in find(objects, "Deployment")}
    assert set(deployments) == {"hubsettings-operator-a", "hubsettings-operator-b"}
    for shard in ("a", "b"):
        dep = deployments[f"hubsettings-operator-{shard}"]
        args = _args(dep)
        assert _value(args, "--shard-selector") == f"hubsettings.scion.dev/shard={shard}"
        assert _value(args, "--peering") == f"hubsettings-operator-{shard}"
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector["hubsettings.scion.dev/shard"] == shard
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert all(labels[k] == v for k, v in selector.items())
    peerings = {p["metadata"]["name"] for p in find(objects, "KopfPeering")}
    assert peerings == {"hubsettings-operator-a", "hubsettings-operator-b"}


def test_cluster_wide_shards_get_one_cluster_peering_each() -> None:
    objects = render_chart(
        {"watch": {"clusterWide": True, "namespaces": []}, "sharding": {"shards": ["east", "west", "north"]}}
    )
    assert len(find(objects, "Deployment")) == 3
    assert {p["metadata"]["name"] for p in find(objects, "ClusterKopfPeering")} == {
        "hubsettings-operator-east",
        "hubsettings-operator-west",
        "hubsettings-operator-north",
    }


def test_no_shards_is_one_deployment_without_a_shard_selector() -> None:
    objects = render_chart()
    (dep,) = find(objects, "Deployment")
    assert dep["metadata"]["name"] == "hubsettings-operator"
    assert "--shard-selector" not in _args(dep)
    assert _value(_args(dep), "--peering") == "hubsettings-operator"
    assert "hubsettings.scion.dev/shard" not in dep["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("shards", [["A_b"], ["a", "a"]])
def test_bad_shard_names_are_rejected_by_the_schema(shards: list[str]) -> None:
    with pytest.raises(HelmError):
        render_chart({"sharding": {"shards": shards}})

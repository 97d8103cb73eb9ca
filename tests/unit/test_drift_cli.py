"""`hubsettings drift` (cli/drift_report.py): the report table, exit codes, JSON, errors, several manifests,
against an in-memory cluster behind the CLI's reader protocol (cli/kube.Cluster)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubsettings_operator.cli import drift_report as drift_cli
from hubsettings_operator.cli.exitcodes import ExitCode
from hubsettings_operator.drift.layer0 import compute
from hubsettings_operator.spec.models import DriftStatus, HubSettings, Profile
from tests.support.pods import DSN, b64, env, pod, secret_env


def _resource(bootstrap: dict[str, Any] | None, settings: dict[str, Any] | None = None) -> HubSettings:
    spec: dict[str, Any] = {"database": {"secretRef": {"name": "hub-db"}}, "settings": settings or {}}
    if bootstrap is not None:
        spec["bootstrap"] = bootstrap
    return HubSettings.model_validate(
        {
            "apiVersion": "scion.dev/v1alpha1",
            "kind": "HubSettings",
            "metadata": {"name": "hub", "namespace": "scion"},
            "spec": spec,
        }
    )


class FakeCluster:
    def __init__(
        self,
        pods: list[dict[str, Any]],
        configmaps: dict[str, Any] | None = None,
        secrets: dict[str, Any] | None = None,
    ) -> None:
        self.pods = pods
        self.configmaps = configmaps or {}
        self.secrets = secrets or {}
        self.calls: list[tuple[str, ...]] = []

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list", namespace, selector))
        return self.pods

    async def configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.calls.append(("cm", namespace, name))
        return self.configmaps.get(name)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.calls.append(("secret", namespace, name))
        return self.secrets.get(name)


def _use(monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster) -> list[str | None]:
    seen: list[str | None] = []

    def connect(kubeconfig: str | None) -> FakeCluster:
        seen.append(kubeconfig)
        return cluster

    monkeypatch.setattr(drift_cli, "_connect", connect)
    return seen


def test_render_table() -> None:
    pods = [pod("a", env(SCION_SERVER_LOGLEVEL="debug", SCION_SERVER_HUB_ADMINEMAILS="x"))]
    text = drift_cli.render_table(compute(pods, {"server.log_level": "info"}))
    lines = text.splitlines()
    assert lines[0].split() == ["POD", "CONTAINER", "KEY", "ENV", "EXPECTED", "ACTUAL", "REASON"]
    assert lines[1].split() == [
        "a",
        "hub",
        "server.log_level",
        "SCION_SERVER_LOGLEVEL",
        "info",
        "debug",
        "mismatch",
    ]
    assert "EFFECT" in text and "bootstrapFallback" in text
    assert "1 pod(s) checked, 1 drifted, 0 skipped" in text
    clean = drift_cli.render_table(DriftStatus(checkedPods=2))
    assert clean.startswith("No drift.")
    assert "more drift item(s)" in drift_cli.render_table(DriftStatus(truncated=3))


def test_run_drift_text_and_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pods = [
        pod("a", secret_env() + env(SCION_SERVER_LOGLEVEL="info")),
        pod("b", secret_env() + env(SCION_SERVER_LOGLEVEL="debug")),
    ]
    cluster = FakeCluster(pods, secrets={"hub-db": {"url": b64(DSN)}})
    seen = _use(monkeypatch, cluster)
    res = _resource(
        {"podSelector": {"matchLabels": {"app": "hub"}}, "expected": {"server.log_level": "info"}}
    )
    code = drift_cli.run_drift([res], "other-ns", "/tmp/kubeconfig", Profile.SCION, "text")
    out = capsys.readouterr().out
    assert code == ExitCode.DRIFT
    assert seen == ["/tmp/kubeconfig"]
    assert ("list", "other-ns", "app=hub") in cluster.calls
    assert ("secret", "other-ns", "hub-db") in cluster.calls
    assert "mismatch" in out and DSN not in out
    res_ok = _resource(
        {
            "podSelector": {"matchLabels": {"app": "hub"}},
            "expected": {"server.log_level": "info"},
            "requireConsistency": False,
        }
    )
    cluster.pods = pods[:1]
    assert drift_cli.run_drift([res_ok], None, None, Profile.SCION, "text") == ExitCode.OK
    assert cluster.calls[-2][1] == "scion"  # the resource's own namespace


def test_run_drift_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pods = [pod("a", secret_env() + env(SCION_SERVER_HUB_ADMINEMAILS="x"))]
    _use(monkeypatch, FakeCluster(pods, secrets={"hub-db": None}))  # 403/404: unresolved
    res = _resource(
        {"expected": {"server.database.url": "sha256:0123456789ab"}}, {"access": {"admin_emails": ["a@b.c"]}}
    )
    code = drift_cli.run_drift([res], None, None, Profile.SCION, "json")
    data = json.loads(capsys.readouterr().out)
    assert code == ExitCode.DRIFT
    assert DriftStatus.model_validate(data).items[0].reason == "unresolved"
    assert data["overrides"][0]["effect"] == "ignoredManagedRow"
    _use(monkeypatch, FakeCluster(pods, secrets={"hub-db": None}))
    assert drift_cli.run_drift([res], None, None, Profile.PROPOSAL, "json") == ExitCode.DRIFT
    assert json.loads(capsys.readouterr().out)["overrides"][0]["effect"] == "overridesTable"


def test_run_drift_without_bootstrap_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = _use(monkeypatch, FakeCluster([]))
    assert drift_cli.run_drift([_resource(None)], None, None, Profile.SCION, "text") == ExitCode.ERROR
    assert "no spec.bootstrap" in capsys.readouterr().err
    assert seen == []  # never even connects
    assert drift_cli.run_drift([], None, None, Profile.SCION, "text") == ExitCode.ERROR


def test_run_drift_reports_api_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken(FakeCluster):
        async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
            raise RuntimeError("connection refused")

    _use(monkeypatch, Broken([]))
    assert drift_cli.run_drift([_resource({})], None, None, Profile.SCION, "text") == ExitCode.ERROR
    assert "connection refused" in capsys.readouterr().err

    def no_config(kubeconfig: str | None) -> FakeCluster:
        raise OSError("no kubeconfig at /nowhere")

    monkeypatch.setattr(drift_cli, "_connect", no_config)
    assert drift_cli.run_drift([_resource({})], None, "/nowhere", Profile.SCION, "text") == ExitCode.ERROR
    assert "cannot load kubeconfig" in capsys.readouterr().err


def test_run_drift_several_resources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(monkeypatch, FakeCluster([pod("a", env(SCION_SERVER_LOGLEVEL="info"))]))
    resources = [_resource({"expected": {"server.log_level": "info"}}), _resource(None)]
    code = drift_cli.run_drift(resources, None, None, Profile.SCION, "json")
    captured = capsys.readouterr()
    assert code == ExitCode.ERROR  # one had no bootstrap: errors win
    data = json.loads(captured.out)
    assert data == [
        {"name": "hub", "namespace": "scion", "drift": DriftStatus(checkedPods=1).model_dump(mode="json")}
    ]

"""The offline CLI: validate, crd, import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hubsettings_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))


def test_validate_examples_exit_zero() -> None:
    result = CliRunner().invoke(main, ["validate", "-f", *EXAMPLES])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") >= 2


def test_validate_layer0_key_exits_one_with_guidance(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\nmetadata: {name: hub}\n"
        "spec:\n  database: {secretRef: {name: db}}\n  settings: {log_level: debug}\n"
    )
    result = CliRunner().invoke(main, ["validate", "-f", str(bad)])
    assert result.exit_code == 1
    assert "spec.settings.log_level" in result.output
    assert "SCION_SERVER_LOGLEVEL" in result.output
    assert "spec.bootstrap.expected" in result.output


def test_validate_json_output_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\nmetadata: {name: a}\n"
        "spec:\n  database: {secretRef: {name: db}}\n  settings: {log_level: x, access: {nope: 1}}\n"
        "---\n"
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\nmetadata: {name: b}\n"
        "spec:\n  database: {secretRef: {name: db}}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
    )
    result = CliRunner().invoke(main, ["validate", "-f", str(bad), "-o", "json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["valid"] is False and out["skipped"] == 1
    first, second = out["documents"]
    assert {e["path"] for e in first["errors"]} == {"spec.settings.log_level", "spec.settings.access.nope"}
    assert second["valid"] is True


def test_validate_rejects_duplicate_keys(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text(
        "apiVersion: scion.dev/v1alpha1\nkind: HubSettings\nmetadata: {name: a}\n"
        "spec:\n  database: {secretRef: {name: db}}\n  database: {secretRef: {name: other}}\n"
    )
    result = CliRunner().invoke(main, ["validate", "-f", str(bad)])
    assert result.exit_code == 1 and "duplicate key" in result.output


def test_crd_command_prints_the_committed_crd() -> None:
    result = CliRunner().invoke(main, ["crd"])
    assert result.exit_code == 0
    assert result.output == (ROOT / "crds" / "hubsettings.yaml").read_text()


def test_import_splits_layers_and_drops_secrets(tmp_path: Path) -> None:
    settings_yaml = tmp_path / "settings.yaml"
    settings_yaml.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "log_level": "debug",
                    "database": {"driver": "postgres", "url": "postgres://u:hunter22@db/hub"},
                    "hub": {
                        "port": 9810,
                        "admin_emails": ["ops@example.com"],
                        "public_url": "https://hub.example.com",
                    },
                    "auth": {"dev_token": "tok-123456"},
                },
                "telemetry": {"enabled": False, "cloud": {"endpoint": "otel:4317"}},
                "default_max_turns": 50,
                "image_registry": "reg.example.com",
            }
        )
    )
    runner = CliRunner()
    result = runner.invoke(
        main, ["import", "--settings-yaml", str(settings_yaml), "--name", "hub", "--namespace", "scion"]
    )
    assert result.exit_code == 0, result.output
    assert "hunter22" not in result.stdout and "tok-123456" not in result.stdout
    assert "secret dropped" in result.stderr
    manifest = yaml.safe_load(result.stdout)
    spec = manifest["spec"]
    assert spec["settings"]["access"]["admin_emails"] == ["ops@example.com"]
    assert spec["settings"]["endpoints"] == {
        "public_url": "https://hub.example.com",
        "image_registry": "reg.example.com",
    }
    assert spec["settings"]["telemetry"] == {"enabled": False, "cloud": {"endpoint": "otel:4317"}}
    assert spec["settings"]["agent_defaults"] == {"default_max_turns": 50}
    assert spec["bootstrap"]["expected"]["server.log_level"] == "debug"
    assert spec["bootstrap"]["expected"]["server.hub.port"] == 9810
    assert "server.database.url" not in spec["bootstrap"]["expected"]
    # The imported manifest is itself valid.
    out = tmp_path / "hub.yaml"
    out.write_text(result.stdout)
    assert runner.invoke(main, ["validate", "-f", str(out)]).exit_code == 0


def test_every_command_has_help_with_examples() -> None:
    for cmd in ("validate", "crd", "docs", "import", "plan", "apply", "watch", "drift", "run"):
        result = CliRunner().invoke(main, [cmd, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output, cmd


def test_run_periods_come_from_operator_config_and_their_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    from hubsettings_operator.runtime import runner
    from hubsettings_operator.runtime.config import DEFAULTS, OperatorConfig

    seen: list[OperatorConfig] = []
    monkeypatch.setattr(runner, "run_operator", lambda config: seen.append(config) or 0)
    assert CliRunner().invoke(main, ["run", "-n", "scion"]).exit_code == 0
    assert (seen[0].convergence_seconds, seen[0].trim_seconds) == (
        DEFAULTS.convergence_seconds,
        DEFAULTS.trim_seconds,
    )
    monkeypatch.setenv("HUBSETTINGS_CONVERGENCE_SECONDS", "2")
    monkeypatch.setenv("HUBSETTINGS_TRIM_SECONDS", "7")
    assert CliRunner().invoke(main, ["run", "-n", "scion"]).exit_code == 0
    assert (seen[1].convergence_seconds, seen[1].trim_seconds) == (2.0, 7.0)

"""The Flux health expressions are the same in docs/gitops.md, examples/flux-kustomization.yaml and the e2e
checker (tests/support/gitops.py), so what the e2e tests prove is what users copy."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.gitops import FLUX_CURRENT, FLUX_FAILED, FLUX_IN_PROGRESS

ROOT = Path(__file__).resolve().parents[2]


def test_flux_health_check_exprs_agree_everywhere() -> None:
    docs = list(yaml.safe_load_all((ROOT / "examples" / "flux-kustomization.yaml").read_text()))
    kustomization = next(d for d in docs if d["kind"] == "Kustomization")
    (check,) = kustomization["spec"]["healthCheckExprs"]
    assert (check["apiVersion"], check["kind"]) == ("scion.dev/v1alpha1", "HubSettings")
    assert (check["current"], check["inProgress"], check["failed"]) == (
        FLUX_CURRENT,
        FLUX_IN_PROGRESS,
        FLUX_FAILED,
    )
    gitops = (ROOT / "docs" / "gitops.md").read_text()
    for expr in (FLUX_CURRENT, FLUX_IN_PROGRESS, FLUX_FAILED):
        assert f'"{expr}"' in gitops

"""The Argo CD health check (docs/argocd-health.lua), run with a real Lua interpreter (lupa) on sample objects.

The same file is embedded verbatim in docs/gitops.md, both as a Lua block and in the argocd-cm snippet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

from tests.support.gitops import to_lua

ROOT = Path(__file__).resolve().parents[2]
LUA_FILE = ROOT / "docs" / "argocd-health.lua"
GITOPS_DOC = ROOT / "docs" / "gitops.md"
ARGOCD_KEY = "resource.customizations.health.scion.dev_HubSettings"


def health(obj: dict[str, Any]) -> dict[str, str]:
    """Runs the health check as Argo CD does: the script body with the object in the global `obj`."""
    lua = LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    lua.globals()["obj"] = to_lua(lua, obj)
    # Argo CD runs the script as a chunk and reads the table it returns.
    result = lua.execute(LUA_FILE.read_text())
    assert result is not None, "the script returned nothing"
    out = {k: v for k, v in result.items()}
    assert set(out) <= {"status", "message"}, out
    return {"status": str(out["status"]), "message": str(out.get("message", ""))}


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 3,
    }
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def hubsettings(
    conditions: list[dict[str, Any]] | None, generation: int = 3, observed: int | None = 3
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "scion.dev/v1alpha1",
        "kind": "HubSettings",
        "metadata": {"name": "hub", "namespace": "scion", "generation": generation},
        "spec": {"database": {"secretRef": {"name": "hub-db", "key": "url"}}},
    }
    if conditions is not None:
        obj["status"] = {"conditions": conditions, "appliedKeys": 12}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


READY = cond("Ready", "True", "Synced")
SYNCED = cond("Synced", "True", "Applied", "12 keys, 1 changed")

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "ready",
        hubsettings([READY, SYNCED, cond("Drifted", "False", "NoDrift")]),
        "Healthy",
        "Synced",
    ),
    (
        "ready-with-message",
        hubsettings([cond("Ready", "True", "Synced", "12 keys applied")]),
        "Healthy",
        "12 keys applied",
    ),
    # Drift is reported, but does not make the settings unhealthy.
    (
        "ready-and-drifted",
        hubsettings([READY, cond("Drifted", "True", "BootstrapMismatch", "2 of 3 pods differ")]),
        "Healthy",
        "Synced",
    ),
    ("no-status", hubsettings(None), "Progressing", "Waiting for the operator to report status"),
    ("empty-conditions", hubsettings([]), "Progressing", "Waiting for the operator to report status"),
    (
        "new-generation-not-observed",
        hubsettings([READY], generation=4, observed=3),
        "Progressing",
        "Waiting for the operator to observe generation 4",
    ),
    (
        "no-observed-generation",
        hubsettings([READY], observed=None),
        "Progressing",
        "Waiting for the operator to observe generation 3",
    ),
    # A Stalled condition of an old generation is stale: the new spec may fix it.
    (
        "stalled-but-old-generation",
        hubsettings([cond("Stalled", "True", "InvalidSpec", "bad")], generation=5, observed=4),
        "Progressing",
        "Waiting for the operator to observe generation 5",
    ),
    (
        "reconciling",
        hubsettings(
            [cond("Ready", "False", "Reconciling"), cond("Reconciling", "True", "Applying", "writing 3 keys")]
        ),
        "Progressing",
        "writing 3 keys",
    ),
    (
        "reconciling-no-message",
        hubsettings([READY, cond("Reconciling", "True", "Progressing")]),
        "Progressing",
        "Progressing",
    ),
    (
        "stalled",
        hubsettings(
            [
                cond("Ready", "False", "KeyOwnedByOther", "not ready"),
                cond("Stalled", "True", "KeyOwnedByOther", "section access is owned by scion/other"),
                cond("Reconciling", "True", "Retrying"),
            ]
        ),
        "Degraded",
        "section access is owned by scion/other",
    ),
    (
        "stalled-false-is-ignored",
        hubsettings([READY, cond("Stalled", "False", "NotStalled")]),
        "Healthy",
        "Synced",
    ),
    (
        "suspended",
        hubsettings([cond("Ready", "False", "Suspended", "spec.suspend is true; drift is still reported")]),
        "Suspended",
        "spec.suspend is true; drift is still reported",
    ),
    (
        "not-ready-database-down",
        hubsettings(
            [
                cond("Ready", "False", "DatabaseUnavailable", "connection refused"),
                cond("Synced", "False", "DatabaseUnavailable", "connection refused"),
            ]
        ),
        "Degraded",
        "connection refused",
    ),
    (
        "not-ready-without-message",
        hubsettings([cond("Ready", "False", "InvalidSpec")]),
        "Degraded",
        "InvalidSpec",
    ),
    (
        "ready-unknown",
        hubsettings([cond("Ready", "Unknown", "Starting")]),
        "Progressing",
        "Starting",
    ),
    (
        "no-ready-condition",
        hubsettings([SYNCED]),
        "Progressing",
        "Waiting for the Ready condition",
    ),
]


@pytest.mark.parametrize(("obj", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_health(obj: dict[str, Any], status: str, message: str) -> None:
    assert health(obj) == {"status": status, "message": message}


def test_statuses_are_argocd_health_codes() -> None:
    codes = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
    assert {status for _, _, status, _ in CASES} <= codes
    assert {status for _, _, status, _ in CASES} == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_missing_generation_counts_as_zero() -> None:
    obj = hubsettings([READY], observed=0)
    del obj["metadata"]["generation"]
    assert health(obj)["status"] == "Healthy"


def test_gitops_doc_embeds_the_lua_file_verbatim() -> None:
    lua = LUA_FILE.read_text()
    doc = GITOPS_DOC.read_text()
    blocks = re.findall(r"```lua\n(.*?)```", doc, flags=re.DOTALL)
    assert blocks == [lua], "docs/gitops.md must embed docs/argocd-health.lua exactly (one ```lua block)"


def test_gitops_doc_argocd_configmap_carries_the_same_lua() -> None:
    doc = GITOPS_DOC.read_text()
    snippets = [
        yaml.safe_load(block)
        for block in re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)
        if "kind: ConfigMap" in block
    ]
    assert len(snippets) == 1
    (configmap,) = snippets
    assert configmap["metadata"] == configmap["metadata"] | {"name": "argocd-cm", "namespace": "argocd"}
    assert configmap["data"][ARGOCD_KEY] == LUA_FILE.read_text()


def test_gitops_doc_covers_flux() -> None:
    doc = GITOPS_DOC.read_text()
    for needle in ("wait: true", "healthChecks", "kstatus", "Reconciling", "Stalled"):
        assert needle in doc


@pytest.mark.parametrize("name", ["argocd-application.yaml", "flux-kustomization.yaml"])
def test_gitops_examples_are_valid_yaml_and_not_hubsettings(name: str) -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / name).read_text()) if d is not None]
    assert docs
    for doc in docs:
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(doc), doc
        assert doc["kind"] != "HubSettings"
    kinds = {d["kind"] for d in docs}
    if name.startswith("flux"):
        (kustomization,) = [d for d in docs if d["kind"] == "Kustomization"]
        assert kustomization["spec"]["wait"] is True
        assert "HelmRelease" in kinds
    else:
        assert kinds == {"Application"}

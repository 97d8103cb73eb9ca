"""How GitOps tools read a live HubSettings: kstatus (Flux `wait`, kstatus waiters), Flux `healthCheckExprs`
(CEL) and the Argo CD health check (docs/argocd-health.lua under a real Lua interpreter, as Argo CD runs it).

kstatus and CEL are the real Go libraries (sigs.k8s.io/cli-utils/pkg/kstatus/status, github.com/google/cel-go),
in the small program hack/kstatus built by hack/install-kstatus.sh (`make deps`).
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LUA_FILE = ROOT / "docs" / "argocd-health.lua"

# The Flux snippet of docs/gitops.md and examples/flux-kustomization.yaml (tests/unit checks they agree).
FLUX_CURRENT = "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')"
FLUX_IN_PROGRESS = "status.?conditions.orValue([]).exists(c, c.type == 'Reconciling' && c.status == 'True')"
FLUX_FAILED = "status.?conditions.orValue([]).exists(c, c.type == 'Stalled' && c.status == 'True')"


@functools.cache
def kstatus_bin() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "install-kstatus.sh")], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def kstatus(obj: dict[str, Any]) -> dict[str, str]:
    """{"status": kstatus's verdict, "message": ..., "cel": the Flux healthCheckExprs verdict}."""
    out = subprocess.run(
        [
            kstatus_bin(),
            "-current",
            FLUX_CURRENT,
            "-in-progress",
            FLUX_IN_PROGRESS,
            "-failed",
            FLUX_FAILED,
        ],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert isinstance(result, dict)
    return {str(k): str(v) for k, v in result.items()}


def to_lua(lua: Any, value: Any) -> Any:
    """Python -> Lua, recursively: dicts become tables, lists 1-based sequences (as Argo CD passes JSON)."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """docs/argocd-health.lua on `obj` as Argo CD runs a health customization: the object in global `obj`."""
    from lupa import LuaRuntime

    lua = LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    lua.globals()["obj"] = to_lua(lua, obj)
    result = lua.execute(LUA_FILE.read_text())
    return {"status": str(result["status"]), "message": str(result["message"] or "")}

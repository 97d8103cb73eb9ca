"""Render the Helm chart with the real `helm` binary, for the unit tests and the RBAC / dry-run e2e tests.

`helm` comes from `hack/install-helm.sh` (the one on PATH if it works, else Helm built from its Go module
and cached under ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/bin). There is no fallback renderer: a missing
helm is a test failure, never a skip.

Usage::

    objs = render_chart({"watch": {"namespaces": ["scion"]}}, ["replicaCount=1"])
    roles = [o for o in objs if o["kind"] == "Role"]
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "hubsettings-operator"
INSTALL_HELM_SH = REPO_ROOT / "hack" / "install-helm.sh"
DEFAULT_RELEASE = "hubsettings-operator"
DEFAULT_NAMESPACE = "hubsettings-system"

# The chart's optional parts, and the combinations of them the unit (helm lint, schema) and e2e (server
# dry-run) tiers render: each must pass both.
MONITORING: dict[str, Any] = {
    "metrics": {
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
        "podMonitor": {"enabled": True},
    }
}
NAMESPACED_ONLY: dict[str, Any] = {
    "rbac": {"clusterScoped": False},
    "crds": {"install": False},
    "watch": {"namespaces": ["hub"]},
}
COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "monitoring": MONITORING,
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    },
    "network-policy": {"networkPolicy": {"enabled": True}},
    "namespaced-only": NAMESPACED_ONLY,
    "everything-namespaced": {**MONITORING, **NAMESPACED_ONLY, "networkPolicy": {"enabled": True}},
    "cluster-wide-all": {**MONITORING, "watch": {"clusterWide": True}, "networkPolicy": {"enabled": True}},
    "no-aggregation-no-tests": {"rbac": {"aggregateToDefaultRoles": False}, "tests": {"enabled": False}},
}


class HelmError(RuntimeError):
    """`helm` failed (or could not be provided); carries its exit code and output."""

    def __init__(self, message: str, returncode: int = 1, stdout: str = "", stderr: str = "") -> None:
        super().__init__(f"{message}\n--- stderr ---\n{stderr}" if stderr else message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@functools.cache
def helm_binary() -> str:
    """Path of a working Helm 3 binary (built on first use: can take minutes)."""
    proc = subprocess.run(
        ["bash", str(INSTALL_HELM_SH), "--print-path"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise HelmError(
            "hack/install-helm.sh could not provide helm", proc.returncode, proc.stdout, proc.stderr
        )
    path = lines[-1].strip()
    if not Path(path).is_file():
        raise HelmError(
            f"hack/install-helm.sh printed {path!r}, which is not a file", 1, proc.stdout, proc.stderr
        )
    return path


def run_helm(args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs `helm ARGS...` and returns the completed process whatever its exit code."""
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def template_args(
    values: dict[str, Any] | None,
    set_args: Sequence[str] = (),
    *,
    values_dir: Path,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    include_crds: bool = False,
    include_tests: bool = False,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The `helm template` command line (without the binary); `values` is written into `values_dir`.
    The `helm test` hooks (templates/tests/) are left out unless `include_tests`."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    if not include_tests:
        args.append("--skip-tests")
    if values is not None:
        values_file = values_dir / "values.yaml"
        values_file.write_text(yaml.safe_dump(values, sort_keys=False))
        args += ["--values", str(values_file)]
    for expression in set_args:
        args += ["--set", expression]
    if include_crds:
        args.append("--include-crds")
    return [*args, *extra_args]


def template_chart(
    values: dict[str, Any] | None = None,
    set_args: Sequence[str] = (),
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart; returns the completed process (the caller checks the exit code)."""
    with tempfile.TemporaryDirectory(prefix="hubsettings-chart-") as tmp:
        return run_helm(template_args(values, set_args, values_dir=Path(tmp), **kwargs))


def render_chart(
    values: dict[str, Any] | None = None,
    set_args: Sequence[str] = (),
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    include_crds: bool = False,
    include_tests: bool = False,
    extra_args: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Renders the chart and returns its objects, in helm's order (CRDs of crds/ first if include_crds).

    `values` is passed as a values file, each of `set_args` as `--set EXPR`. Raises HelmError when helm
    fails (e.g. values rejected by values.schema.json).
    """
    proc = template_chart(
        values,
        set_args,
        release=release,
        namespace=namespace,
        include_crds=include_crds,
        include_tests=include_tests,
        extra_args=extra_args,
    )
    if proc.returncode != 0:
        raise HelmError("helm template failed", proc.returncode, proc.stdout, proc.stderr)
    objects: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(proc.stdout):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise HelmError(f"helm template produced a non-object document: {doc!r:.200}", 1, proc.stdout)
        objects.append(doc)
    return objects


def find(objects: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of `kind` (and `name`, if given)."""
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"].get("name") == name)]

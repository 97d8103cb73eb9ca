"""`kubectl` against the test control plane: server-side apply of rendered objects (for real or dry-run).

Used by the RBAC and manifest dry-run e2e tests, which apply what `helm template` renders exactly as a user's
`kubectl apply --server-side` (or Argo CD / Flux server-side apply) would.

Usage::

    proc = apply_objects(env.kubeconfig, objs, field_manager="e2e")
    assert proc.returncode == 0, proc.stderr
    wait_established(env.kubeconfig, ["kopfpeerings.kopf.dev"])
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

REPO_ROOT = Path(__file__).resolve().parents[2]
HUBSETTINGS_CRD = "hubsettings.scion.dev"


def kubectl(
    kubeconfig: Path | str, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs `kubectl --kubeconfig KUBECONFIG ARGS...`; returns the completed process whatever its exit code."""
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def apply_objects(
    kubeconfig: Path | str,
    objects: Sequence[dict[str, Any]],
    *,
    field_manager: str,
    dry_run: bool = False,
    force_conflicts: bool = False,
    extra_args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply --server-side [--dry-run=server] -f -` of `objects` (one multi-document YAML stream)."""
    args = ["apply", "--server-side", f"--field-manager={field_manager}", *extra_args, "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    if force_conflicts:
        args.append("--force-conflicts")
    return kubectl(kubeconfig, *args, stdin=yaml.safe_dump_all(list(objects), sort_keys=False))


def wait_established(kubeconfig: Path | str, crd_names: Sequence[str], timeout_s: int = 30) -> None:
    """Waits until every CRD of `crd_names` is Established (its API is served); raises on failure."""
    if not crd_names:
        return
    deadline = time.monotonic() + timeout_s
    while True:
        proc = kubectl(
            kubeconfig,
            "wait",
            "--for=condition=Established",
            f"--timeout={timeout_s}s",
            *(f"crd/{name}" for name in crd_names),
            timeout=timeout_s + 30,
        )
        # kubectl wait fails at once while a CRD has no conditions yet (a large schema takes the API server
        # a few seconds): try again until it has them.
        if proc.returncode == 0 or "accessor error" not in proc.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if proc.returncode != 0:
        raise RuntimeError(f"CRDs {', '.join(crd_names)} not Established:\n{proc.stdout}\n{proc.stderr}")


def install_hubsettings_crd(
    kubeconfig: Path | str, api: k8s.ApiClient, *, field_manager: str, timeout_s: float = 30.0
) -> str:
    """The committed CRD (crds/hubsettings.yaml), server-side applied (idempotent: --force-conflicts, as
    other callers may have applied it with their own field manager), Established and served."""
    proc = kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={field_manager}",
        "-f",
        str(REPO_ROOT / "crds/hubsettings.yaml"),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"applying crds/hubsettings.yaml failed:\n{proc.stdout}\n{proc.stderr}")
    wait_established(kubeconfig, [HUBSETTINGS_CRD], timeout_s=int(timeout_s))
    # Established can precede the resource handler: wait until a list is served.
    objects = k8s.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            objects.list_cluster_custom_object("scion.dev", "v1alpha1", "hubsettings")
            return HUBSETTINGS_CRD
        except k8s.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

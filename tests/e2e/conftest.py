"""Fixtures of the e2e tier: one real kube-apiserver + etcd per test session (see tests/support/kubeenv.py).

Every test collected under tests/e2e is marked `e2e`, so `pytest -m "not e2e"` skips the tier that needs the
built binaries (the first build takes minutes; `make testenv-bin` does it ahead of time).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from tests.support.kubeenv import KubeTestEnv

_E2E_DIR = Path(__file__).resolve().parent


def _ensure_kubectl() -> None:
    """Tests call `kubectl` by name: use the machine's, else the one hack/install-kubectl.sh builds."""
    import os
    import shutil
    import subprocess

    if shutil.which("kubectl"):
        return
    out = subprocess.run(
        ["bash", str(_E2E_DIR.parents[1] / "hack/install-kubectl.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    os.environ["PATH"] = f"{Path(out.stdout.strip().splitlines()[-1]).parent}:{os.environ.get('PATH', '')}"


_ensure_kubectl()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the items of the whole session, not only this directory's: mark just ours.
    del config
    for item in items:
        if _E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kube_env() -> Iterator[KubeTestEnv]:
    """A running control plane shared by the session (start-up costs ~3 s, so once is enough)."""
    with KubeTestEnv() as env:
        yield env


@pytest.fixture(scope="session")
def kube_api(kube_env: KubeTestEnv) -> Iterator[k8s_client.ApiClient]:
    """An ApiClient authenticated as cluster admin."""
    with kube_env.admin_client() as api:
        yield api


ROOT = _E2E_DIR.parents[1]


@pytest.fixture(scope="session")
def crd_installed(kube_env: KubeTestEnv, kube_api: k8s_client.ApiClient) -> str:
    """The committed CRD (crds/hubsettings.yaml), applied server-side and Established."""
    import subprocess
    import time

    base = ["kubectl", f"--kubeconfig={kube_env.kubeconfig}"]
    subprocess.run(
        [
            *base,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=e2e",
            "-f",
            str(ROOT / "crds/hubsettings.yaml"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*base, "wait", "--for=condition=Established", "crd/hubsettings.scion.dev", "--timeout=30s"],
        check=True,
        capture_output=True,
    )
    objects = k8s_client.CustomObjectsApi(kube_api)
    deadline = time.monotonic() + 30
    while True:
        try:
            objects.list_cluster_custom_object("scion.dev", "v1alpha1", "hubsettings")
            break
        except k8s_client.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return "hubsettings.scion.dev"

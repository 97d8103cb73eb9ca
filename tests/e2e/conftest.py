"""Fixtures of the e2e tier: one real kube-apiserver + etcd per test session (see tests/support/kubeenv.py).

Every test collected under tests/e2e is marked `e2e`, so `pytest -m "not e2e"` skips the tier that needs the
built binaries (the first build takes minutes; `make testenv-bin` does it ahead of time).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from tests.support.kubeapi import Database, put_secret
from tests.support.kubectl import install_hubsettings_crd
from tests.support.kubeenv import KubeTestEnv
from tests.support.pgserver import PgServer

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


@pytest.fixture(scope="session")
def crd_installed(kube_env: KubeTestEnv, kube_api: k8s_client.ApiClient) -> str:
    """The committed CRD (crds/hubsettings.yaml), applied server-side and Established."""
    return install_hubsettings_crd(kube_env.kubeconfig, kube_api, field_manager="e2e")


@pytest.fixture
def database(pg: PgServer, kube_api: k8s_client.ApiClient, ns: str) -> Iterator[tuple[Database, str]]:
    """A fresh Hub database and a Secret (named after it) holding its DSN, in the module's `ns`."""
    db = Database(pg)
    secret = db.name.replace("_", "-")
    put_secret(kube_api, ns, secret, {"url": db.dsn})
    try:
        yield db, secret
    finally:
        db.close()

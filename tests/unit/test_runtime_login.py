"""The operator's in-pod login addresses the API server as the kubelet tells it, not by a DNS name."""

from __future__ import annotations

import pytest

from hubsettings_operator.runtime.kube import in_cluster_server


@pytest.mark.parametrize(
    ("environ", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.0.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, None),
        ({}, None),
    ],
)
def test_in_cluster_server_comes_from_the_kubelet_environment(
    environ: dict[str, str], server: str | None
) -> None:
    assert in_cluster_server(environ) == server

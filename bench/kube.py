"""The kube-apiserver side of the benchmarks: CRD install, the operator subprocess, status and metrics.

The control plane is `tests.support.kubeenv.KubeTestEnv` (real kube-apiserver + etcd, no controllers); the
operator is `tests.support.operator_proc.OperatorProcess` (`python -m hubsettings_operator --standalone`)
with production-like periods instead of the e2e tier's short ones, so timers do not add noise.
"""

from __future__ import annotations

import pstats
import re
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from tests.support.kubeapi import condition, get
from tests.support.kubectl import install_hubsettings_crd
from tests.support.kubeenv import KubeTestEnv
from tests.support.operator_proc import OperatorProcess

from bench.common import stats_top

# Appended after OperatorProcess's own (test) arguments; click keeps the last value of a repeated option.
QUIET_ARGS = [
    "--resync-seconds",
    "300",
    "--health-seconds",
    "10",
    "--secret-seconds",
    "60",
    "--drift-seconds",
    "60",
    "--log-level",
    "INFO",
]


def install_crd(env: KubeTestEnv, api: k8s.ApiClient) -> None:
    """The committed CRD, applied server-side, Established and served."""
    install_hubsettings_crd(env.kubeconfig, api, field_manager="bench", timeout_s=60)


class BenchOperator(OperatorProcess):
    """The operator subprocess, optionally under cProfile (stats written when it exits on SIGTERM)."""

    def __init__(
        self,
        kubeconfig: Path | str,
        namespaces: list[str],
        log_dir: Path,
        *,
        name: str,
        extra_args: list[str] | None = None,
        cprofile_to: Path | None = None,
    ) -> None:
        super().__init__(
            kubeconfig, namespaces, log_dir, extra_args=[*QUIET_ARGS, *(extra_args or [])], name=name
        )
        self.cprofile_to = cprofile_to

    def args(self) -> list[str]:
        args = super().args()
        if self.cprofile_to is None:
            return args
        assert args[:3] == [sys.executable, "-m", "hubsettings_operator"]
        return [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(self.cprofile_to),
            "-m",
            "hubsettings_operator",
            *args[3:],
        ]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the operator process, in KiB."""
        out: dict[str, int] = {}
        text = Path(f"/proc/{self.pid}/status").read_text()
        for key in ("VmRSS", "VmHWM"):
            m = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
            if m:
                out[key] = int(m.group(1))
        return out

    def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the samples of metric `name` whose labels include `labels` (None when absent)."""
        total: float | None = None
        for line in self.metrics().splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, label_text = head.partition("{")
            if metric != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total = (total or 0.0) + float(value)
        return total


def profile_top(path: Path, limit: int = 12) -> list[str]:
    """Top entries of a cProfile output file (see `bench.common.stats_top`)."""
    return stats_top(pstats.Stats(str(path)), limit)


def ready(api: k8s.ApiClient, namespace: str, name: str) -> bool:
    try:
        obj = get(api, namespace, name)
    except k8s.ApiException:
        return False
    return condition(obj, "Ready").get("status") == "True"


def observed(api: k8s.ApiClient, namespace: str, name: str) -> bool:
    obj: dict[str, Any] = get(api, namespace, name)
    return bool((obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"])


def wait(fn: Any, timeout: float, interval: float, what: str) -> float:
    """Poll `fn()` until true; -> the monotonic time it first was. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        if fn():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)

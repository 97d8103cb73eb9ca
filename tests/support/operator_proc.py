"""The operator as a real subprocess (`python -m hubsettings_operator`), for the e2e tier.

Logs go to a file the tests read (and grep for secrets). `kill()` is SIGKILL, `stop()` is a graceful SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.pgserver import free_port

ROOT = Path(__file__).resolve().parents[2]


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path | str,
        namespaces: list[str],
        log_dir: Path,
        *,
        extra_args: list[str] | None = None,
        standalone: bool = True,
        name: str = "operator",
    ) -> None:
        self.kubeconfig = str(kubeconfig)
        self.namespaces = namespaces
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        self.extra_args = extra_args or []
        self.standalone = standalone
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "hubsettings_operator"]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        args += [
            "--health-port",
            str(self.health_port),
            "--metrics-port",
            str(self.metrics_port),
            "--resync-seconds",
            "4",
            "--health-seconds",
            "1",
            "--secret-seconds",
            "1",
            "--drift-seconds",
            "2",
            "--max-backoff-seconds",
            "3",
            "--log-level",
            "DEBUG",
        ]
        if self.standalone:
            args.append("--standalone")
        return [*args, *self.extra_args]

    def start(self, wait_ready: bool = True) -> OperatorProcess:
        self._log = self.log_path.open("ab")
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1"}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self.proc = subprocess.Popen(
            self.args(), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        if wait_ready:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/healthz", timeout=1
                ) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"operator not healthy after {timeout}s:\n{self.logs()[-3000:]}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

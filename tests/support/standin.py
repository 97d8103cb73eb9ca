"""Hub stand-in replicas (`tests.support.hub_standin`) as real subprocesses, for e2e and bench.

Each one serves on its own loopback address (its "pod IP"), on the port every replica shares, and its database
connections leave from that address, so `pg_stat_activity.client_addr` maps back to the pod. The DSN and the
token go through 0600 files, never the command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from tests.support.pgserver import PgServer

ROOT = Path(__file__).resolve().parents[2]


def allow_loopback_clients(pg: PgServer) -> None:
    """Let clients from any 127.0.0.0/8 address in (initdb's pg_hba.conf allows 127.0.0.1/32 only)."""
    hba = pg.datadir / "pg_hba.conf"
    line = "host all all 127.0.0.0/8 scram-sha-256\n"
    if line not in hba.read_text():
        with hba.open("a") as f:
            f.write(line)
        with psycopg.connect(pg.superuser_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


class StandInProcess:
    """One stand-in replica; `control("listener", state="off")` etc. drive its test switches."""

    def __init__(
        self,
        dsn: str,
        ip: str,
        port: int,
        token: str,
        work_dir: Path,
        *,
        poll_seconds: float = 600.0,
        name: str = "standin",
        sections: list[str] | None = None,
        version: str = "",
        forbidden_token: str = "",
    ) -> None:
        self.ip, self.port, self.name = ip, port, name
        work_dir.mkdir(parents=True, exist_ok=True)
        self.dsn_file = work_dir / f"{name}.dsn"
        self.token_file = work_dir / f"{name}.token"
        self.forbidden_file = work_dir / f"{name}.forbidden-token"
        self.extra: list[str] = []
        if sections is not None:
            self.extra += ["--sections", ",".join(sections)]
        if version:
            self.extra += ["--version", version]
        if forbidden_token:
            self.extra += ["--forbidden-token-file", str(self.forbidden_file)]
        for path, value in (
            (self.dsn_file, dsn),
            (self.token_file, token),
            (self.forbidden_file, forbidden_token),
        ):
            path.write_text(value)
            os.chmod(path, 0o600)
        self.log_path = work_dir / f"{name}-{int(time.time() * 1000)}.log"
        self.poll_seconds = poll_seconds
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> StandInProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.hub_standin",
                "--dsn-file",
                str(self.dsn_file),
                "--token-file",
                str(self.token_file),
                "--host",
                self.ip,
                "--port",
                str(self.port),
                "--poll-seconds",
                str(self.poll_seconds),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stand-in {self.name} exited:\n{self.logs()[-2000:]}")
            try:
                self.state()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"stand-in {self.name} not serving:\n{self.logs()[-2000:]}")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(f"http://{self.ip}:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            out = json.loads(resp.read())
        assert isinstance(out, dict)
        return out

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/_standin/state")

    def control(self, what: str, **query: str) -> dict[str, Any]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return self._call("POST", f"/_standin/{what}" + (f"?{qs}" if qs else ""))

    def server_config(self, token: str | None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of `GET /api/v1/admin/server-config` with this bearer token (None: no
        Authorization header)."""
        req = urllib.request.Request(f"http://{self.ip}:{self.port}/api/v1/admin/server-config")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                return int(resp.status), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), json.loads(exc.read())

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

"""A throwaway PostgreSQL server on loopback, started by the test run itself.

It uses the machine's PostgreSQL server binaries (Debian's `postgresql` package, installed by `make deps`),
initialises a cluster in a temporary directory with password (SCRAM) authentication, and listens on
127.0.0.1 on a free port. PostgreSQL refuses to run as root, so when the tests run as root (CI does) the
server runs as the `postgres` system user the Debian package creates.

Usage from the command line, for people: `python -m tests.support.pgserver up` prints a DSN.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _find_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres (newest major version wins)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for cand in reversed(candidates):
        if Path(cand, "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found: run `make deps` (installs Debian's postgresql)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL cluster in a temp dir; `superuser_dsn` connects as its superuser."""

    def __init__(self, base_dir: str | None = None, max_connections: int = 300) -> None:
        self.bindir = _find_bindir()
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="hubsettings-pg-"))
        self.datadir = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self.port = free_port()
        self.user = "hubsettings_admin"
        # A unique random password per run: the secret-hygiene tests grep output for it.
        self.password = "pw-" + secrets.token_hex(12)
        self.max_connections = max_connections
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._run_as = pwd.getpwnam("postgres")

    # -- helpers -------------------------------------------------------------------------------------
    def _cmd(self, *args: str) -> list[str]:
        if self._run_as is None:
            return list(args)
        return ["runuser", "-u", self._run_as.pw_name, "--", *args]

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        return (
            f"postgresql://{user or self.user}:{password or self.password}@127.0.0.1:{self.port}/{dbname}"
            "?connect_timeout=5"
        )

    @property
    def superuser_dsn(self) -> str:
        return self.dsn()

    # -- lifecycle -----------------------------------------------------------------------------------
    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        os.chmod(self.base, 0o755)  # noqa: S103 - the postgres user must traverse it; it holds no secret
        self._chown(self.base)
        self._chown(self.sockdir)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        pwfile.unlink()

    def start(self) -> None:
        if not self.datadir.exists():
            self.init()
        opts = (
            f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={self.max_connections} "
            "-c shared_buffers=64MB"
        )
        if self.logfile.exists():
            self._chown(self.logfile)
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start; see {self.logfile}")

    def stop(self, mode: str = "fast") -> None:
        if not (self.datadir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        """Crash-stop the postmaster (SIGKILL), as a power cut would."""
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().splitlines()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            with contextlib.suppress(FileNotFoundError):
                pidfile.unlink()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def main(argv: list[str]) -> int:
    state = Path(os.environ.get("HUBSETTINGS_PG_DIR", "/tmp/hubsettings-pg"))
    if argv[:1] == ["up"]:
        shutil.rmtree(state, ignore_errors=True)
        server = PgServer(str(state))
        server.start()
        (state / "dsn").write_text(server.superuser_dsn)
        print(f"export HUBSETTINGS_DSN='{server.superuser_dsn}'")
        return 0
    if argv[:1] == ["down"]:
        if (state / "data").exists():
            srv = PgServer(str(state))
            srv.stop()
        shutil.rmtree(state, ignore_errors=True)
        return 0
    print("usage: python -m tests.support.pgserver up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Detached supervisors for people: `make testenv-up` / `make cluster-up` start an environment that outlives the
command, `... -down` stops it. One way for both tiers (the API server alone: kubeenv.py; the node: nodeenv.py).

`up` spawns `python -m <module> serve <state_dir> <ready_file>` in its own session, waits for the ready file
(a JSON object, or `{"error": ...}`), and prints the tail of the supervisor's log when it dies first. The
serving process runs `start`, writes what it returns, holds until SIGTERM/SIGINT, then runs `stop` (also when
`start` failed half-way).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def pidfile(state_dir: Path) -> Path:
    return state_dir.with_name(state_dir.name + ".supervisor.pid")


def logfile(state_dir: Path) -> Path:
    return state_dir.with_name(state_dir.name + ".supervisor.log")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if (Path(f"/proc/{pid}/stat").read_text().split()[2]) == "Z":
            return False
    return True


def running(state_dir: Path) -> bool:
    pid = pidfile(state_dir)
    return pid.exists() and pid_alive(int(pid.read_text()))


def up(module: str, state_dir: Path) -> dict[str, Any] | None:
    """Start the detached supervisor of `module` (no-op when running); its ready info, or None on failure."""
    if running(state_dir):
        return {}
    ready = Path(tempfile.mkstemp(prefix="hs-ready-")[1])
    ready.unlink()
    log = logfile(state_dir)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "serve", str(state_dir), str(ready)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pidfile(state_dir).write_text(str(proc.pid))
    while not ready.exists():
        if proc.poll() is not None:
            print(log.read_text()[-4000:], file=sys.stderr)
            return None
        time.sleep(0.5)
    time.sleep(0.1)  # the writer may still be flushing
    info: dict[str, Any] = json.loads(ready.read_text())
    ready.unlink()
    if "error" in info:
        print(f"failed: {info['error']} (log: {log})", file=sys.stderr)
        return None
    return info


def down(state_dir: Path, timeout: float = 180.0) -> None:
    """Stop the supervisor (SIGTERM: it tears its environment down) and wait for it."""
    pid_path = pidfile(state_dir)
    if not pid_path.exists():
        return
    pid = int(pid_path.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    pid_path.unlink(missing_ok=True)
    if not pid_alive(pid):  # a clean stop: nothing left to read in the supervisor's log
        logfile(state_dir).unlink(missing_ok=True)


def serve(ready_file: Path, start: Callable[[], dict[str, Any]], stop: Callable[[], None]) -> int:
    """The detached process: `start`, report, hold until SIGTERM/SIGINT, `stop`."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        ready_file.write_text(json.dumps(start()))
        while not stopping.wait(3600):
            pass
    except BaseException as exc:
        ready_file.write_text(json.dumps({"error": str(exc)}))
        raise
    finally:
        stop()
    return 0

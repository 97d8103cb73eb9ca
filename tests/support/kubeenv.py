"""A real, throwaway Kubernetes control plane (etcd + kube-apiserver) for tests, like envtest.

`hack/testenv.sh prepare` is the single source of truth for certificates, ports, kubeconfig and the exact
command lines (it writes `etcd.args` / `kube-apiserver.args` into the state dir); this module then starts
those processes itself, so it can supervise them: each runs in its own process group (killed as a group),
dies with the test process (PR_SET_PDEATHSIG, atexit, SIGTERM), and kube-apiserver alone can be stopped and
restarted on the same port with the same certificates for fault tests.

Binaries come from `hack/build-testenv.sh` (kube-apiserver and etcd built from the Go modules and cached under
${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/bin); the first build takes minutes, later runs are instant.

Usage::

    with KubeTestEnv() as env:
        api = env.admin_client()                      # cluster-admin (O=system:masters client certificate)
        sa = env.service_account_client("ns", "name")  # RBAC-checked, via impersonation

Over 400 lines: certificates, etcd, kube-apiserver and the RBAC-checked clients are one fixture's lifecycle.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import urllib3
from kubernetes import client as k8s_client

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTENV_SH = REPO_ROOT / "hack" / "testenv.sh"
BUILD_SH = REPO_ROOT / "hack" / "build-testenv.sh"

_PR_SET_PDEATHSIG = 1
# Looked up once in the parent: the preexec hook runs between fork and exec, where loading libs is unsafe.
_LIBC: ctypes.CDLL | None
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - non-glibc platforms
    _LIBC = None


class KubeTestEnvError(RuntimeError):
    """The test control plane could not be built, started or reached."""


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when the thread that started it dies (covers a SIGKILLed pytest)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class _Component:
    """One supervised server process started from `<state>/<name>.args`."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        # PDEATHSIG fires when the *thread* that forked exits, so only arm it from the main thread: a server
        # restarted from a worker thread (e.g. asyncio.to_thread) must outlive that thread.
        in_main = threading.current_thread() is threading.main_thread()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() kills the server and anything it spawned
            preexec_fn=_die_with_parent if in_main else None,  # noqa: PLW1509 - deliberate, see above
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is not None:
            # Only signal while the child is unreaped: its pid (= pgid) cannot have been reused yet.
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# Every started environment, so that atexit / SIGTERM can stop the ones a test run forgot (or crashed past).
_LIVE: weakref.WeakSet[KubeTestEnv] = weakref.WeakSet()
_SIGTERM_INSTALLED = False


def _stop_all() -> None:
    for env in list(_LIVE):
        with contextlib.suppress(Exception):
            env.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    # Then die of SIGTERM as if no handler had been installed.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_process_exit_hooks() -> None:
    global _SIGTERM_INSTALLED
    if _SIGTERM_INSTALLED:
        return
    _SIGTERM_INSTALLED = True
    atexit.register(_stop_all)
    # Only take over SIGTERM when nobody else handles it (and only the main thread may set handlers).
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _read_paths(*args: str) -> dict[str, Path]:
    out = subprocess.run(["bash", str(BUILD_SH), *args], check=True, capture_output=True, text=True).stdout
    paths: dict[str, Path] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            paths[key] = Path(value)
    return paths


def ensure_binaries() -> dict[str, Path]:
    """Paths of kube-apiserver and etcd (keys KUBE_APISERVER, ETCD), building them first if needed."""
    paths = _read_paths("--paths-only")
    if all(os.access(p, os.X_OK) for p in paths.values()):
        return paths
    print(
        "kubeenv: building kube-apiserver + etcd from the Go modules (hack/build-testenv.sh); "
        "the first build takes several minutes, later runs use the cache",
        file=sys.stderr,
        flush=True,
    )
    # Progress streams to our stderr (build logs are the only way to see where minutes go).
    subprocess.run(["bash", str(BUILD_SH)], check=True, stdout=sys.stderr)
    return _read_paths("--paths-only")


class KubeTestEnv:
    """etcd + kube-apiserver on 127.0.0.1 with RBAC, generated certificates and no controllers.

    `start()` / `stop()` or use as a context manager. `stop()` is idempotent and also runs at interpreter
    exit. With `keep_state=True` (or HUBSETTINGS_KEEP_TESTENV=1) the state dir and its logs survive `stop()`.
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        ready_timeout: float = 120.0,
        keep_state: bool | None = None,
        apiserver_args: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self._owns_state_dir = state_dir is None
        # Rewrites kube-apiserver's command line after `testenv.sh prepare` (the node tier turns on what
        # running pods need: tests/support/nodeenv.py).
        self._apiserver_args = apiserver_args
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="hskube-"))
        self.ready_timeout = ready_timeout
        self.keep_state = (
            keep_state if keep_state is not None else os.environ.get("HUBSETTINGS_KEEP_TESTENV") == "1"
        )
        self.kubeconfig = self.state_dir / "kubeconfig"
        pki = self.state_dir / "pki"
        self.ca_file = pki / "ca.crt"
        self.admin_cert_file = pki / "admin.crt"
        self.admin_key_file = pki / "admin.key"
        self.server = ""
        self.etcd_url = ""
        self._etcd: _Component | None = None
        self._apiserver: _Component | None = None
        self._lock = threading.RLock()  # re-entered when SIGTERM arrives during stop()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> KubeTestEnv:
        with self._lock:
            if self._started:
                return self
            _install_process_exit_hooks()
            _LIVE.add(self)
            self._started = True
        try:
            self._prepare()
            assert self._etcd is not None
            assert self._apiserver is not None
            self._etcd.start()
            self._wait_etcd()
            self.start_apiserver()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (each as a process group); remove the state dir unless kept."""
        with self._lock:
            for comp in (self._apiserver, self._etcd):
                if comp is not None:
                    comp.stop()
            # A caller-supplied dir is only removed if testenv.sh marked it as its own.
            ours = self._owns_state_dir or (self.state_dir / ".hubsettings-testenv").exists()
            if self._started and not self.keep_state and ours:
                shutil.rmtree(self.state_dir, ignore_errors=True)
            self._started = False
            _LIVE.discard(self)

    def __enter__(self) -> KubeTestEnv:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only (etcd and the data stay); clients get connection errors until started."""
        if self._apiserver is not None:
            self._apiserver.stop()

    def start_apiserver(self) -> None:
        """(Re)start kube-apiserver with the same port, certificates and flags; wait until /readyz is ok."""
        if self._apiserver is None:
            raise KubeTestEnvError("KubeTestEnv.start() was not called")
        if not self._apiserver.alive():
            self._apiserver.stop()  # closes the previous log handle of a dead process
            self._apiserver.start()
        self._wait_apiserver()

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver (same port and certificates), then wait until it is ready."""
        self.stop_apiserver()
        self.start_apiserver()

    @property
    def apiserver_pid(self) -> int | None:
        comp = self._apiserver
        return comp.proc.pid if comp is not None and comp.proc is not None else None

    # -- clients ---------------------------------------------------------------------------------------
    def _configuration(self, *, client_cert: bool = True) -> k8s_client.Configuration:
        cfg = k8s_client.Configuration(host=self.server, ssl_ca_cert=str(self.ca_file))
        if client_cert:
            cfg.cert_file = str(self.admin_cert_file)
            cfg.key_file = str(self.admin_key_file)
        return cfg

    def admin_client(self) -> k8s_client.ApiClient:
        """An ApiClient authenticated as cluster admin (client certificate in group system:masters)."""
        return k8s_client.ApiClient(self._configuration())

    def anonymous_client(self) -> k8s_client.ApiClient:
        """An ApiClient without credentials (user system:anonymous)."""
        return k8s_client.ApiClient(self._configuration(client_cert=False))

    def impersonating_client(self, user: str, groups: Sequence[str] = ()) -> k8s_client.ApiClient:
        """An ApiClient that acts as `user` (and `groups`) via impersonation, so RBAC applies to that user.

        The admin credentials authenticate; the Impersonate-User / Impersonate-Group headers make the server
        authorize every request as the impersonated identity (system:authenticated is added by the server).
        """
        api = k8s_client.ApiClient(self._configuration())
        api.default_headers["Impersonate-User"] = user
        if groups:
            # The generated client keeps headers in a plain dict (one value per name), but each group must be
            # its own Impersonate-Group header line: add them at the urllib3 layer.
            _add_repeated_header(api, "Impersonate-Group", list(groups))
        return api

    def service_account_client(self, namespace: str, name: str) -> k8s_client.ApiClient:
        """An ApiClient acting as ServiceAccount namespace/name (impersonation; the SA need not exist).

        The server adds the groups system:serviceaccounts and system:serviceaccounts:<namespace> itself.
        """
        return self.impersonating_client(f"system:serviceaccount:{namespace}:{name}")

    # -- internals -------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        ensure_binaries()
        env = {**os.environ, "HUBSETTINGS_TESTENV_DIR": str(self.state_dir)}
        proc = subprocess.run(
            ["bash", str(TESTENV_SH), "prepare"], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise KubeTestEnvError(f"hack/testenv.sh prepare failed ({proc.returncode}):\n{proc.stderr}")
        self.server = (self.state_dir / "server").read_text().strip()
        etcd_argv = (self.state_dir / "etcd.args").read_text().splitlines()
        api_argv = (self.state_dir / "kube-apiserver.args").read_text().splitlines()
        if self._apiserver_args is not None:
            api_argv = self._apiserver_args(api_argv)
        for arg in etcd_argv:
            if arg.startswith("--listen-client-urls="):
                self.etcd_url = arg.partition("=")[2]
        self._etcd = _Component("etcd", etcd_argv, self.state_dir / "etcd.log")
        self._apiserver = _Component("kube-apiserver", api_argv, self.state_dir / "kube-apiserver.log")

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.admin_cert_file), str(self.admin_key_file))
        return ctx

    def _get(self, url: str, ctx: ssl.SSLContext | None = None) -> tuple[int, str]:
        parts = urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=2, context=ctx)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2)
        try:
            conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def get_raw(self, path: str) -> tuple[int, str]:
        """GET `path` (e.g. "/readyz?verbose") from kube-apiserver as admin: (HTTP status, body)."""
        return self._get(f"{self.server}{path}", self._ssl_context())

    def readyz(self) -> bool:
        """True if kube-apiserver answers /readyz with 200."""
        try:
            status, _ = self.get_raw("/readyz")
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def _wait(self, comp: _Component, probe: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not probe():
            if not comp.alive():
                raise KubeTestEnvError(f"{comp.name} exited; last log lines:\n{comp.log_tail()}")
            if time.monotonic() > deadline:
                raise KubeTestEnvError(
                    f"{comp.name} not ready after {self.ready_timeout}s; last log lines:\n{comp.log_tail()}"
                )
            time.sleep(0.1)

    def _wait_etcd(self) -> None:
        def healthy() -> bool:
            try:
                status, body = self._get(f"{self.etcd_url}/health")
            except (OSError, http.client.HTTPException):
                return False
            return status == 200 and '"true"' in body

        assert self._etcd is not None
        self._wait(self._etcd, healthy)

    def _wait_apiserver(self) -> None:
        assert self._apiserver is not None
        self._wait(self._apiserver, self.readyz)


def _add_repeated_header(api: k8s_client.ApiClient, name: str, values: list[str]) -> None:
    """Make every request of `api` carry one `name: value` header line per value."""
    pool = api.rest_client.pool_manager
    original: Callable[..., Any] = pool.request

    def request(method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(dict(headers or {}))
        for value in values:
            merged.add(name, value)
        return original(method, url, *args, headers=merged, **kwargs)

    pool.request = request  # type: ignore[method-assign]


DEFAULT_STATE_DIR = Path(os.environ.get("HUBSETTINGS_TESTENV_DIR", "/tmp/hubsettings-testenv"))


def _main(argv: list[str]) -> int:
    """`python -m tests.support.kubeenv up|down|status` (make testenv-up / testenv-down): a real API server to
    poke at, kept by a detached supervisor (tests/support/supervise.py) until `down`."""
    from tests.support import supervise

    state = DEFAULT_STATE_DIR
    match argv:
        case ["up"]:
            info = supervise.up("tests.support.kubeenv", state)
            if info is None:
                return 1
            print(f"export KUBECONFIG={state / 'kubeconfig'}")
            return 0
        case ["down"]:
            supervise.down(state)
            return 0
        case ["status"]:
            alive = supervise.running(state)
            print("running" if alive else "not running")
            return 0 if alive else 1
        case ["serve", state_dir, ready]:
            env = KubeTestEnv(state_dir)

            def start() -> dict[str, str]:
                env.start()
                return {"kubeconfig": str(env.kubeconfig)}

            return supervise.serve(Path(ready), start, env.stop)
    print("usage: python -m tests.support.kubeenv up|down|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

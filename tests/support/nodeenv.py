"""A one-node Kubernetes cluster where pods really run, on this machine only and without any registry.

The node tier of the tests (tests/cluster) and of `make cluster-up`. On top of `KubeTestEnv` (etcd +
kube-apiserver, here with ServiceAccount admission on) it starts and supervises, each in its own process group
like kubeenv.py's components: kube-controller-manager, kube-scheduler, containerd (own root, state and socket
under the state dir), kubelet (own root dir) and socat relays. Binaries: `hack/build-testenv.sh --node` (built
from the same k8s.io/kubernetes version as kube-apiserver) and Debian's containerd, runc, CNI plugins and socat
(`hack/install-node-packages.sh`); images: `hack/build-image.sh` (imported into the tier's containerd).

Network rule (docs/node-tier.md): pods reach only addresses on this machine. The tier creates one bridge,
`hsnode0`, holding the node IP 10.244.77.1 (the pods' gateway, /24 pod subnet) and 10.0.0.1, the ClusterIP of
the `kubernetes` Service, where a relay forwards to kube-apiserver on 127.0.0.1; so the in-cluster
configuration kubelet hands to pods (KUBERNETES_SERVICE_HOST=10.0.0.1) points at a relay on the node. Pods get
routes to the pod subnet and the Service CIDR only (no default route), the Service CIDR has a blackhole route on
the host while the tier runs, no kube-proxy runs, no iptables rule is added and IP forwarding stays as it was.
Other servers (PostgreSQL) are reached through relays on the node IP (`relay()`).

Teardown (`stop()`) leaves nothing: pods are deleted first (so the CNI plugin removes veths and network
namespaces), then kubelet and containerd and every shim stop, mounts under the state dir are unmounted, the
pod cgroups and the bridge and routes are removed, and the kernel settings kubelet changes are restored.
`host_snapshot()` lists exactly those traces; tests/cluster/test_teardown.py compares it before and after.

The tier is a machine-wide singleton (one bridge, fixed addresses): a lock file serialises users. Needs root.

Usage::

    with NodeCluster() as cluster:
        cluster.import_images(build_images())
        subprocess.run(["kubectl", ...], env=cluster.env())

`python -m tests.support.nodeenv up|down|status` is `make cluster-up` / `make cluster-down`: `up` starts a
detached supervisor process and returns once the node is Ready; `down` stops it (full teardown).

Over 400 lines: the one-node cluster's lifecycle (network, containerd, kubelet, control plane, teardown) is
one supervisor.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.support import supervise
from tests.support.kubeenv import REPO_ROOT, KubeTestEnv, KubeTestEnvError, _Component

BUILD_SH = REPO_ROOT / "hack" / "build-testenv.sh"
IMAGE_SH = REPO_ROOT / "hack" / "build-image.sh"
PACKAGES_SH = REPO_ROOT / "hack" / "install-node-packages.sh"

# Fixed by design: one tier per machine (see the module docstring and docs/node-tier.md).
NODE_NAME = "hubsettings-node"
BRIDGE = "hsnode0"
POD_SUBNET = ipaddress.ip_network("10.244.77.0/24")
NODE_IP = "10.244.77.1"
SERVICE_CIDR = ipaddress.ip_network("10.0.0.0/24")  # hack/testenv.sh's --service-cluster-ip-range
KUBERNETES_SERVICE_IP = "10.0.0.1"  # first address of the Service CIDR: the `kubernetes` Service
CNI_NETWORK = "hubsettings-node"
DEFAULT_STATE_DIR = Path(os.environ.get("HUBSETTINGS_NODE_DIR", "/tmp/hubsettings-node"))
LOCK_FILE = Path(os.environ.get("HUBSETTINGS_CACHE", Path.home() / ".cache" / "hubsettings")) / "node.lock"
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
# kubelet sets these kernel tunables at start (protectKernelDefaults=false); restored at teardown.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Directories kubelet and the CNI plugins write outside their configured roots.
HOST_DIRS = (Path("/var/log/pods"), Path("/var/log/containers"), Path("/var/lib/cni"))


class NodeClusterError(KubeTestEnvError):
    """The node tier could not be built, started or reached (the message says which part and why)."""


def _run(argv: list[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise NodeClusterError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def node_binaries() -> dict[str, Path]:
    """kube-apiserver, etcd, kubelet, kube-controller-manager, kube-scheduler; built first if missing."""
    out = subprocess.run(
        ["bash", str(BUILD_SH), "--node", "--print-paths"], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return {k: Path(v) for k, _, v in (line.partition("=") for line in out.splitlines()) if v}


@dataclass(frozen=True)
class Images:
    """Archives and references from hack/build-image.sh --print-paths."""

    operator: str
    operator_archive: Path
    hub: str
    hub_archive: Path
    pause: str
    pause_archive: Path
    operator_sbom: Path  # CycloneDX JSON of the operator image, beside its archive


def build_images() -> Images:
    """Build (or take from the cache) the operator, Hub stand-in and pause images."""
    start = time.monotonic()
    out = subprocess.run(
        ["bash", str(IMAGE_SH), "--print-paths"], check=True, stdout=subprocess.PIPE, text=True
    )
    kv = dict(line.partition("=")[::2] for line in out.stdout.splitlines() if "=" in line)
    print(f"nodeenv: images ready in {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)
    return Images(
        operator=kv["OPERATOR_IMAGE"],
        operator_archive=Path(kv["OPERATOR_ARCHIVE"]),
        hub=kv["HUB_IMAGE"],
        hub_archive=Path(kv["HUB_ARCHIVE"]),
        pause=kv["PAUSE_IMAGE"],
        pause_archive=Path(kv["PAUSE_ARCHIVE"]),
        operator_sbom=Path(kv["OPERATOR_SBOM"]),
    )


def missing_prerequisites() -> list[str]:
    """Why the tier cannot run here (empty when it can): not root, missing packages or CNI plugins."""
    why: list[str] = []
    if os.geteuid() != 0:
        why.append("needs root (network bridge, containerd, kubelet)")
    for tool in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "socat", "ip"):
        if shutil.which(tool) is None:
            why.append(f"{tool} not found (make deps installs Debian's packages)")
    if _cni_bin_dir() is None:
        why.append("CNI plugins (bridge, host-local) not found (Debian's containernetworking-plugins)")
    return why


def _cni_bin_dir() -> str | None:
    for d in CNI_BIN_DIRS:
        if (Path(d) / "bridge").exists() and (Path(d) / "host-local").exists():
            return d
    return None


# -- host traces ------------------------------------------------------------------------------------------------
def host_snapshot() -> dict[str, Any]:
    """Everything the tier could leave behind on the host, as comparable values (teardown test, diagnostics)."""

    def lines(argv: list[str]) -> list[str]:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return []
        return sorted(
            line.strip() for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")
        )

    links = lines(["ip", "-o", "link", "show"])
    mounts = Path("/proc/mounts").read_text().splitlines()
    cgroups: list[str] = []
    for root in Path("/sys/fs/cgroup").glob("*"):
        for name in ("kubepods", "kubepods.slice", "k8s.io", "system.slice/containerd.service"):
            if (root / name).exists():
                cgroups.append(str(root / name))
    procs: list[str] = []
    for pid_dir in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmd = (pid_dir / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if Path(cmd).name in {
                "kubelet",
                "containerd",
                "containerd-shim-runc-v2",
                "kube-controller-manager",
                "kube-scheduler",
                "pause",
            } or (Path(cmd).name == "socat" and NODE_IP in (pid_dir / "cmdline").read_text(errors="replace")):
                procs.append(f"{pid_dir.name} {cmd}")
    return {
        "links": [line.split(":", 2)[1].strip().split("@")[0] for line in links],
        # IPv4 only (the tier is IPv4) and without lifetimes, which count down on their own.
        "addresses": sorted(" ".join(a.split()[1:4]) for a in lines(["ip", "-4", "-o", "addr", "show"])),
        "routes": lines(["ip", "-4", "route", "show", "table", "all"]),
        "netns": lines(["ip", "netns", "list"]),
        "mounts": sorted(m for m in mounts if "hubsettings-node" in m or "kubelet" in m or "containerd" in m),
        "cgroups": sorted(cgroups),
        "iptables": lines(["iptables-save"]) if shutil.which("iptables-save") else [],
        "ip6tables": lines(["ip6tables-save"]) if shutil.which("ip6tables-save") else [],
        "processes": sorted(procs),
        "sysctls": {k: _read_sysctl(k) for k in (*KUBELET_SYSCTLS, "net/ipv4/ip_forward")},
        "dirs": sorted(str(d) for d in HOST_DIRS if d.exists()),
    }


def _read_sysctl(key: str) -> str:
    try:
        return (Path("/proc/sys") / key).read_text().strip()
    except OSError:
        return ""


def _write_sysctl(key: str, value: str) -> None:
    with contextlib.suppress(OSError):
        (Path("/proc/sys") / key).write_text(value + "\n")


def _check_addresses_free() -> None:
    """Refuse to start when the tier's subnets overlap a network this machine already uses."""
    routes = _run(["ip", "-o", "route", "show", "table", "all"]).stdout.splitlines()
    for line in routes:
        dst = line.split()[0]
        if dst in {"default", "broadcast", "local", "unreachable", "blackhole", "multicast"}:
            dst = line.split()[1] if dst != "default" else "0.0.0.0/0"
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(dst, strict=False)
            if net.version != 4 or net.prefixlen == 0 or BRIDGE in line:
                continue
            for ours in (POD_SUBNET, SERVICE_CIDR):
                if net.overlaps(ours):
                    raise NodeClusterError(
                        f"the node tier's subnet {ours} overlaps an existing route ({line.strip()}): "
                        "stop whatever uses it (a node tier left running? `make cluster-down`)"
                    )


# -- the cluster ------------------------------------------------------------------------------------------------
class NodeCluster:
    """A one-node cluster: control plane, scheduler, controllers, containerd, kubelet, relays.

    `start()` / `stop()` or use as a context manager; `stop()` is idempotent and always runs the full teardown.
    """

    def __init__(self, state_dir: Path | None = None, *, ready_timeout: float = 180.0) -> None:
        self.state_dir = Path(state_dir or DEFAULT_STATE_DIR)
        self.ready_timeout = ready_timeout
        self.kube: KubeTestEnv | None = None
        self._components: dict[str, _Component] = {}
        self._lock_fd: IO[bytes] | None = None
        self._sysctls: dict[str, str] = {}
        self._host_dirs_before: set[Path] = set()
        self._netns_before: set[str] = set()
        self._net_up = False
        self._started = False
        self._guard = threading.RLock()

    # -- paths ------------------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kube" / "kubeconfig"

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at this cluster (for kubectl / helm subprocesses)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), **(extra or {})}

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> NodeCluster:
        why = missing_prerequisites()
        if why:
            raise NodeClusterError("the node tier cannot run here: " + "; ".join(why))
        with self._guard:
            if self._started:
                return self
            self._started = True
        t0 = time.monotonic()
        try:
            self._take_lock()
            bins = node_binaries()
            self._clean_state_dir()
            self._sysctls = {k: _read_sysctl(k) for k in KUBELET_SYSCTLS}
            self._host_dirs_before = {d for d in HOST_DIRS if d.exists()}
            self._netns_before = set(_netns())
            self._start_control_plane(bins)
            self._network_up()
            self._start_containerd()
            self._start_kubelet(bins["KUBELET"])
            self.relay("apiserver", KUBERNETES_SERVICE_IP, 443, self._apiserver_port())
            self._wait_node_ready()
        except BaseException:
            self.stop()
            raise
        print(f"nodeenv: node {NODE_NAME} Ready in {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)
        return self

    def __enter__(self) -> NodeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Full teardown; safe to call at any point of a failed start and more than once."""
        with self._guard:
            if not self._started:
                return
            self._started = False
            # The controllers go first (else ReplicaSets recreate the pods being deleted), then the pods, so
            # that kubelet stops their sandboxes through CNI DEL (veths, network namespaces, IP leases).
            for name in ("kube-controller-manager", "kube-scheduler"):
                self._stop_component(name)
            if "kubelet" in self._components and self.kube is not None:
                self._delete_all_pods()
            self._stop_component("kubelet")
            self._stop_sandboxes()
            self._stop_component("containerd")
            self._kill_shims()
            for name in [n for n in self._components if n.startswith("relay-")]:
                self._stop_component(name)
            if self.kube is not None:
                self.kube.stop()
                self.kube = None
            self._unmount_state()
            self._remove_cgroups()
            self._network_down()
            self._remove_netns()
            self._clean_host_dirs()
            for key, value in self._sysctls.items():
                if value and _read_sysctl(key) != value:
                    _write_sysctl(key, value)
            self._sysctls = {}
            if os.environ.get("HUBSETTINGS_KEEP_NODE") != "1":
                shutil.rmtree(self.state_dir, ignore_errors=True)
            if self._lock_fd is not None:
                self._lock_fd.close()
                self._lock_fd = None

    # -- images, relays, diagnostics ---------------------------------------------------------------------
    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return _run(["ctr", "-a", str(self.containerd_socket), "-n", "k8s.io", *args], timeout=timeout)

    def import_images(self, images: Images) -> None:
        """Load the operator and Hub images (the pause image is loaded at start)."""
        for archive in dict.fromkeys((images.operator_archive, images.hub_archive)):  # one archive holds both
            self.import_archive(archive)

    def import_archive(self, archive: Path) -> None:
        start = time.monotonic()
        self.ctr("images", "import", "--no-unpack=false", str(archive))
        print(
            f"nodeenv: imported {archive.name} in {time.monotonic() - start:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    def relay(self, name: str, listen_host: str, listen_port: int, target_port: int) -> str:
        """A TCP relay listen_host:listen_port -> 127.0.0.1:target_port (a socat process); returns host:port.

        Only the node's own addresses are accepted as listen_host (the network rule of the tier).
        """
        if listen_host not in (NODE_IP, KUBERNETES_SERVICE_IP):
            raise NodeClusterError(f"relay {name}: {listen_host} is not an address of the node")
        comp = _Component(
            f"relay-{name}",
            [
                "socat",
                f"TCP-LISTEN:{listen_port},bind={listen_host},fork,reuseaddr",
                f"TCP:127.0.0.1:{target_port}",
            ],
            self.state_dir / f"relay-{name}.log",
        )
        self._stop_component(comp.name)
        comp.start()
        self._components[comp.name] = comp
        deadline = time.monotonic() + 10
        while not _listening(listen_host, listen_port):
            if not comp.alive() or time.monotonic() > deadline:
                raise NodeClusterError(
                    f"relay {name} did not listen on {listen_host}:{listen_port}:\n{comp.log_tail()}"
                )
            time.sleep(0.05)
        return f"{listen_host}:{listen_port}"

    def kubectl(
        self, *args: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["kubectl", *args], env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise NodeClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def diagnostics(self, namespaces: tuple[str, ...] = ()) -> str:
        """Nodes, pods, events, describe and logs of the given namespaces, and the components' log tails."""
        parts: list[str] = []

        def add(title: str, *args: str) -> None:
            with contextlib.suppress(Exception):
                proc = self.kubectl(*args, check=False, timeout=30)
                parts.append(f"--- {title}\n{proc.stdout}{proc.stderr}")

        add("nodes", "get", "nodes", "-o", "wide")
        add("pods", "get", "pods", "-A", "-o", "wide")
        for ns in namespaces:
            add(f"events {ns}", "-n", ns, "get", "events", "--sort-by=.lastTimestamp")
            add(f"describe pods {ns}", "-n", ns, "describe", "pods")
            add(
                f"logs {ns}",
                "-n",
                ns,
                "logs",
                "--all-containers",
                "--prefix",
                "--tail=60",
                "-l",
                "app.kubernetes.io/name",
            )
        for comp in self._components.values():
            parts.append(f"--- {comp.name} log tail\n{comp.log_tail(25)}")
        return "\n".join(parts)

    # -- internals: control plane -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = LOCK_FILE.open("ab")
        try:
            fcntl.flock(self._lock_fd.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("nodeenv: another node tier is running on this machine; waiting for it", file=sys.stderr)
            fcntl.flock(self._lock_fd.fileno(), fcntl.LOCK_EX)

    def _clean_state_dir(self) -> None:
        # A previous run killed with SIGKILL may have left its state: tear that down first (we hold the lock).
        if self.state_dir.exists():
            self._unmount_state()
            self._remove_cgroups()
            self._network_down()
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)

    def _start_control_plane(self, bins: Mapping[str, Path]) -> None:
        kube_dir = self.state_dir / "kube"

        def apiserver_args(argv: list[str]) -> list[str]:
            pki = kube_dir / "pki"
            argv = [a for a in argv if a != "--disable-admission-plugins=ServiceAccount"]
            return [
                *argv,
                # Logs, exec and port-forward reach the kubelet on the node IP with the admin certificate.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
            ]

        self.kube = KubeTestEnv(kube_dir, ready_timeout=self.ready_timeout, apiserver_args=apiserver_args)
        self.kube.start()
        pki = kube_dir / "pki"
        common = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--v=1",
        ]
        self._launch(
            "kube-controller-manager",
            [
                str(bins["KUBE_CONTROLLER_MANAGER"]),
                *common,
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                "--use-service-account-credentials=false",
                # No pod CIDRs from the controller (the CNI plugin's host-local range is the node's) and no cloud.
                "--controllers=*,-nodeipam,-cloud-node-lifecycle",
            ],
        )
        self._launch("kube-scheduler", [str(bins["KUBE_SCHEDULER"]), *common])

    def _apiserver_port(self) -> int:
        assert self.kube is not None
        return int(self.kube.server.rsplit(":", 1)[1])

    # -- internals: network -------------------------------------------------------------------------------
    def _network_up(self) -> None:
        self._network_down()  # a bridge left by a run killed with SIGKILL (we hold the lock: it is stale)
        _check_addresses_free()
        self._net_up = True
        prefix = POD_SUBNET.prefixlen
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE])
        # The `kubernetes` Service's ClusterIP lives on the node: its relay answers there (no kube-proxy).
        _run(["ip", "addr", "add", f"{KUBERNETES_SERVICE_IP}/32", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        # Any other Service IP goes nowhere, instead of following the host's default route off the machine.
        _run(["ip", "route", "add", "blackhole", str(SERVICE_CIDR)])

    def _network_down(self) -> None:
        # Veths of sandboxes stopped without CNI DEL still hang on the bridge: delete them with it.
        proc = _run(["ip", "-o", "link", "show", "master", BRIDGE], check=False)
        for line in proc.stdout.splitlines():
            veth = line.split(":", 2)[1].strip().split("@")[0]
            _run(["ip", "link", "del", veth], check=False)
        _run(["ip", "link", "del", BRIDGE], check=False)
        _run(["ip", "route", "del", "blackhole", str(SERVICE_CIDR)], check=False)
        self._net_up = False

    def _write_cni_config(self, conf_dir: Path) -> None:
        conf_dir.mkdir(parents=True, exist_ok=True)
        conf = {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    # The bridge and its address exist already; isGateway would also turn on IP forwarding.
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.state_dir / "cni" / "ipam"),
                        "ranges": [[{"subnet": str(POD_SUBNET), "gateway": NODE_IP}]],
                        # No default route: a pod can reach its subnet (the node IP) and the Service CIDR only.
                        "routes": [{"dst": str(SERVICE_CIDR)}],
                    },
                }
            ],
        }
        (conf_dir / "10-hubsettings-node.conflist").write_text(json.dumps(conf, indent=2))

    # -- internals: containerd + kubelet ------------------------------------------------------------------
    def _start_containerd(self) -> None:
        d = self.state_dir / "containerd"
        d.mkdir(parents=True)
        cni_conf = self.state_dir / "cni" / "net.d"
        self._write_cni_config(cni_conf)
        (d / "config.toml").write_text(
            f"""version = 2
root = "{d / "root"}"
state = "{d / "state"}"
[grpc]
  address = "{self.containerd_socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_REF}"
  # kubelet asks for oom_score_adj -998 for sandboxes; lowering it needs CAP_SYS_RESOURCE, which this kind of
  # machine (a VM whose root lacks it) does not grant: clamp instead of failing every sandbox.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{_cni_bin_dir()}"
    conf_dir = "{cni_conf}"
"""
        )
        self._launch("containerd", ["containerd", "--config", str(d / "config.toml")])
        deadline = time.monotonic() + 30
        while _run(["ctr", "-a", str(self.containerd_socket), "version"], check=False).returncode != 0:
            self._check_alive("containerd")
            if time.monotonic() > deadline:
                raise NodeClusterError(
                    f"containerd did not answer:\n{self._components['containerd'].log_tail()}"
                )
            time.sleep(0.1)
        self.import_archive(_pause_archive())

    def _start_kubelet(self, kubelet: Path) -> None:
        k = self.state_dir / "kubelet"
        (k / "pki").mkdir(parents=True)
        # A resolver that answers nothing: a pod's DNS query stays inside the pod (network rule).
        (k / "resolv.conf").write_text("nameserver 127.0.0.1\noptions ndots:1 attempts:1 timeout:1\n")
        assert self.kube is not None
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "failCgroupV1": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.kube.ca_file)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDomain": "cluster.local",
            "resolvConf": str(k / "resolv.conf"),
            "podLogsDir": str(k / "pod-logs"),
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "2%",
                "imagefs.available": "2%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "registerNode": True,
            "maxPods": 40,
            # Without this kubelet adds KUBE-FIREWALL and canary chains to the host's iptables.
            "makeIPTablesUtilChains": False,
            "serializeImagePulls": False,
            # Fast status: readiness changes reach the API server within ~1 s (the default sync is 10 s).
            "nodeStatusUpdateFrequency": "10s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "20s",
        }
        (k / "config.yaml").write_text(json.dumps(config, indent=2))
        self._launch(
            "kubelet",
            [
                str(kubelet),
                f"--config={k / 'config.yaml'}",
                f"--kubeconfig={self.kubeconfig}",
                f"--root-dir={k / 'root'}",
                f"--cert-dir={k / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                "--v=1",
            ],
        )

    def _wait_node_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = ""
        while True:
            for name in ("kubelet", "containerd", "kube-controller-manager", "kube-scheduler"):
                self._check_alive(name)
            proc = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if proc.returncode == 0:
                node = json.loads(proc.stdout)
                ready = any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in node["status"].get("conditions", [])
                )
                taints = node["spec"].get("taints") or []
                sa = (
                    self.kubectl("-n", "default", "get", "serviceaccount", "default", check=False).returncode
                    == 0
                )
                last = f"ready={ready} taints={taints} default-sa={sa}"
                if ready and not taints and sa:
                    return
            else:
                last = proc.stderr.strip()
            if time.monotonic() > deadline:
                raise NodeClusterError(
                    f"node {NODE_NAME} not Ready after {self.ready_timeout}s ({last})\n{self.diagnostics()}"
                )
            time.sleep(0.5)

    # -- internals: processes ----------------------------------------------------------------------------
    def _launch(self, name: str, argv: list[str]) -> None:
        comp = _Component(name, argv, self.state_dir / f"{name}.log")
        comp.start()
        self._components[name] = comp

    def _check_alive(self, name: str) -> None:
        comp = self._components.get(name)
        if comp is not None and not comp.alive():
            raise NodeClusterError(f"{name} exited; last log lines:\n{comp.log_tail()}")

    def _stop_component(self, name: str) -> None:
        comp = self._components.pop(name, None)
        if comp is not None:
            comp.stop(timeout=20)

    def _delete_all_pods(self) -> None:
        with contextlib.suppress(Exception):
            self.kubectl(
                "delete", "pods", "-A", "--all", "--wait=true", "--timeout=60s", timeout=90, check=False
            )

    def _stop_sandboxes(self) -> None:
        """Kill the containers kubelet left running (pods of a failed run); _network_down removes their veths."""
        if "containerd" not in self._components:
            return
        with contextlib.suppress(Exception):
            for task in self.ctr("tasks", "ls", "-q", timeout=30).stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, timeout=30)

    def _kill_shims(self) -> None:
        # containerd-shim-runc-v2 processes outlive containerd by design; ours name our socket.
        marker = str(self.containerd_socket).encode()
        for pid_dir in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError):
                cmdline = (pid_dir / "cmdline").read_bytes()
                if b"containerd-shim" in cmdline and marker in cmdline:
                    pid = int(pid_dir.name)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        # Container processes of killed shims (each container is its own process group under the shim).
        runc_root = self.state_dir / "containerd" / "runc"
        for state in runc_root.glob("*/*/state.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
                os.kill(int(json.loads(state.read_text())["init_process_pid"]), signal.SIGKILL)

    def _unmount_state(self) -> None:
        prefix = str(self.state_dir) + "/"
        for _ in range(3):
            mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
            ours = sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True)
            if not ours:
                return
            for m in ours:
                _run(["umount", "-l", m], check=False)

    def _remove_cgroups(self) -> None:
        for root in Path("/sys/fs/cgroup").glob("*"):
            for name in ("kubepods", "k8s.io"):
                top = root / name
                if not top.is_dir():
                    continue
                # Deepest first: a cgroup directory can only be removed once it has no children.
                for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
                    with contextlib.suppress(OSError):
                        os.rmdir(dirpath)

    def _remove_netns(self) -> None:
        """Pod network namespaces of sandboxes that were never torn down through CNI (a killed run)."""
        for name in set(_netns()) - self._netns_before:
            if name.startswith("cni-"):
                _run(["ip", "netns", "delete", name], check=False)

    def _clean_host_dirs(self) -> None:
        for d in HOST_DIRS:
            if d.exists() and d not in self._host_dirs_before:
                shutil.rmtree(d, ignore_errors=True)
            elif d == Path("/var/lib/cni"):
                for f in (d / "results").glob(f"{CNI_NETWORK}-*"):
                    f.unlink(missing_ok=True)


PAUSE_REF = "localhost/hubsettings-pause:3.10"


def _pause_archive() -> Path:
    out = subprocess.run(
        ["bash", str(IMAGE_SH), "--print-paths"], check=True, stdout=subprocess.PIPE, text=True
    )
    for line in out.stdout.splitlines():
        if line.startswith("PAUSE_ARCHIVE="):
            return Path(line.partition("=")[2])
    raise NodeClusterError("hack/build-image.sh printed no PAUSE_ARCHIVE")


def _netns() -> list[str]:
    proc = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def _listening(host: str, port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# -- make cluster-up / cluster-down -------------------------------------------------------------------------------
def _serve(state_dir: Path, ready_file: Path) -> int:
    """The detached supervisor of `up`: start the node, import the images, hold it until SIGTERM/SIGINT."""
    cluster = NodeCluster(state_dir)

    def start() -> dict[str, Any]:
        cluster.start()
        images = build_images()
        cluster.import_images(images)
        return {"kubeconfig": str(cluster.kubeconfig), "operator_image": images.operator}

    return supervise.serve(ready_file, start, cluster.stop)


def _up(state_dir: Path) -> int:
    info = supervise.up("tests.support.nodeenv", state_dir)
    if info is None:
        return 1
    if info:
        print(
            f"node tier up (log: {supervise.logfile(state_dir)}); operator image {info['operator_image']}",
            file=sys.stderr,
        )
    print(f"export KUBECONFIG={state_dir / 'kube' / 'kubeconfig'}")
    return 0


def _down(state_dir: Path) -> int:
    if not supervise.pidfile(state_dir).exists():
        print("node tier not running", file=sys.stderr)
        return 0
    supervise.down(state_dir)
    print("node tier down", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    """`python -m tests.support.nodeenv up|down|status` (make cluster-up / cluster-down)."""
    state = DEFAULT_STATE_DIR
    match argv:
        case ["up"]:
            return _up(state)
        case ["down"]:
            return _down(state)
        case ["status"]:
            alive = supervise.running(state)
            print("running" if alive else "not running")
            return 0 if alive else 1
        case ["serve", state_dir, ready]:
            return _serve(Path(state_dir), Path(ready))
        case ["snapshot"]:
            print(json.dumps(host_snapshot(), indent=2))
            return 0
    print("usage: python -m tests.support.nodeenv up|down|status|snapshot", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Helpers of the node tier's tests: the README quick start as commands, and waits that explain failures.

The quick start is read from README.md and run command by command, word for word, with one substitution: the
placeholder DSN of step 2 becomes a real database's DSN as pods reach it (PostgreSQL through the relay on the
node IP). Every wait has a generous timeout and, when it runs out, fails with the cluster's diagnostics
(pods, events, describe, logs, component log tails), never with a bare timeout.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.chart import helm_binary
from tests.support.kubeapi import Database
from tests.support.kubeenv import REPO_ROOT
from tests.support.nodeenv import NODE_IP, NodeCluster
from tests.support.pgserver import PgServer
from tests.support.waits import condition

README = REPO_ROOT / "README.md"
PLACEHOLDER_DSN = "postgres://hub:...@postgres:5432/hub"
OPERATOR_NS = "hubsettings-system"
HUB_NS = "scion"
RELEASE = "hubsettings-operator"
OPERATOR_SELECTOR = "app.kubernetes.io/name=hubsettings-operator"


def quickstart_commands(readme: str) -> list[list[str]]:
    """The commands of the first ```sh block under `## Quick start`, continuation lines joined, comments dropped."""
    section = readme.split("\n## Quick start\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    commands: list[list[str]] = []
    pending = ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        argv = shlex.split(pending + line, comments=True)
        pending = ""
        if argv:
            commands.append(argv)
    return commands


def tool_path() -> str:
    """PATH with helm and kubectl as the project provides them (the machine's if it has them)."""
    dirs = [str(Path(helm_binary()).parent)]
    if shutil.which("kubectl") is None:
        out = subprocess.run(
            ["bash", str(REPO_ROOT / "hack" / "install-kubectl.sh")],
            capture_output=True,
            text=True,
            check=True,
        )
        dirs.append(str(Path(out.stdout.strip().splitlines()[-1]).parent))
    return os.pathsep.join([*dirs, os.environ.get("PATH", "")])


def sh(
    cluster: NodeCluster, argv: list[str], *, timeout: float = 600, redact: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would (repo root, KUBECONFIG of the cluster, helm/kubectl on PATH).

    `redact`: a secret in the arguments (a DSN), masked in the failure message."""
    proc = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=cluster.env({"PATH": tool_path()}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        shown = shlex.join(argv).replace(redact, "<redacted>") if redact else shlex.join(argv)
        raise AssertionError(
            f"`{shown}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n"
            + cluster.diagnostics((OPERATOR_NS, HUB_NS))
        )
    return proc


def kget(cluster: NodeCluster, *args: str) -> Any:
    """`kubectl get ... -o json`, parsed."""
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def wait_for(
    cluster: NodeCluster, what: str, probe: Callable[[], Any], *, timeout: float = 240, interval: float = 0.5
) -> Any:
    """Poll `probe` until it returns something truthy; on timeout fail with the cluster's diagnostics."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            result = probe()
        except Exception as exc:  # a probe may race with rollouts (404, conflicts): keep polling
            last_error = f"{type(exc).__name__}: {exc}"
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error or 'none'})\n"
        + cluster.diagnostics((OPERATOR_NS, HUB_NS))
    )


def wait_until(
    cluster: NodeCluster,
    what: str,
    get: Callable[[], Any],
    good: Callable[[Any], bool],
    *,
    timeout: float = 240,
) -> Any:
    """Poll `get()` until `good(value)`; returns that value (diagnostics on timeout, like wait_for)."""

    def probe() -> Any:
        value = get()
        return (value,) if good(value) else None

    return wait_for(cluster, what, probe, timeout=timeout)[0]


def operator_pods(cluster: NodeCluster) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kget(cluster, "pods", "-n", OPERATOR_NS, "-l", OPERATOR_SELECTOR)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def pod_ready(pod: dict[str, Any]) -> bool:
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def wait_operator_ready(
    cluster: NodeCluster, replicas: int = 2, timeout: float = 300
) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        pods = operator_pods(cluster)
        return pods if len(pods) == replicas and all(pod_ready(p) for p in pods) else None

    pods: list[dict[str, Any]] = wait_for(
        cluster, f"{replicas} operator pods Running and Ready", probe, timeout=timeout
    )
    return pods


def hubsettings(cluster: NodeCluster, name: str = "hub", namespace: str = HUB_NS) -> dict[str, Any]:
    obj: dict[str, Any] = kget(cluster, "hubsettings", "-n", namespace, name)
    return obj


def wait_hs_ready(
    cluster: NodeCluster, name: str = "hub", *, namespace: str = HUB_NS, generation: int | None = None
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = hubsettings(cluster, name, namespace)
        ready = condition(obj, "Ready")
        observed = (obj.get("status") or {}).get("observedGeneration")
        if ready.get("status") == "True" and (generation is None or observed == generation):
            return obj
        return None

    obj: dict[str, Any] = wait_for(cluster, f"HubSettings {namespace}/{name} Ready", probe)
    return obj


def peers(cluster: NodeCluster) -> dict[str, dict[str, Any]]:
    """kopf peering records in the watched namespace: peer id -> {priority, lastseen, lifetime}."""
    obj = kget(cluster, "kopfpeerings.kopf.dev", "-n", HUB_NS, RELEASE)
    return {k: v for k, v in (obj.get("status") or {}).items() if isinstance(v, dict)}


def active_pod(cluster: NodeCluster) -> str | None:
    """The operator pod kopf peering made active: the live peer with the highest priority (its id names the pod)."""
    records = peers(cluster)
    if not records:
        return None
    top = max(records, key=lambda k: int(records[k].get("priority", 0)))
    for pod in operator_pods(cluster):
        if f"@{pod['metadata']['name']}" in top:
            return str(pod["metadata"]["name"])
    return None


@dataclass
class QuickStart:
    """What the quick start left behind, for the tests that build on it."""

    db: Database
    pod_dsn: str
    commands: list[list[str]]
    seconds: dict[str, float] = field(default_factory=dict)


def pod_dsn(cluster: NodeCluster, pg: PgServer, dbname: str) -> str:
    """`dbname`'s DSN as pods reach it: PostgreSQL listens on 127.0.0.1; a relay on the node IP forwards."""
    relay = cluster.relay("postgres", NODE_IP, pg.port, pg.port)
    return pg.dsn(dbname).replace(f"@127.0.0.1:{pg.port}/", f"@{relay}/")


def run_quickstart(cluster: NodeCluster, pg: PgServer) -> QuickStart:
    """README.md's quick start, command by command (the Hub's namespace exists beforehand, as with a real Hub)."""
    db = Database(pg)
    dsn = pod_dsn(cluster, pg, db.name)
    cluster.kubectl("create", "namespace", HUB_NS)
    commands = quickstart_commands(README.read_text())
    seconds: dict[str, float] = {}
    for command in commands:
        argv = [a.replace(PLACEHOLDER_DSN, dsn) for a in command]
        start = time.monotonic()
        sh(cluster, argv, redact=dsn)
        label = " ".join(command[:2])
        seconds[label] = seconds.get(label, 0.0) + time.monotonic() - start
    return QuickStart(db=db, pod_dsn=dsn, commands=commands, seconds=seconds)

"""The operator's settings in one place: every period, bound and default the runtime uses.

`hubsettings run` builds one `OperatorConfig` from its flags (whose defaults are read from this class), and
the runner, the handlers, the reconciler and the status rules read only this object: no default is written
twice. Frozen, so a running operator cannot change its own behaviour half-way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from hubsettings_operator import selectors


@dataclass(frozen=True)
class OperatorConfig:
    """How the operator runs. Field comments are the documentation (and the CLI help's defaults)."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch (`--namespace`, repeatable); empty with `all_namespaces` for a cluster-wide install."""

    all_namespaces: bool = False
    """Watch every namespace (`--all-namespaces`; needs cluster-wide RBAC)."""

    health_port: int = 8080
    """Port of the liveness endpoint `/healthz`."""

    metrics_port: int = 9090
    """Port of the Prometheus endpoint `/metrics`."""

    log_format: str = "text"
    """`text` or `json`."""

    log_level: str = "INFO"
    """Python log level name."""

    resync_seconds: float = 300.0
    """Full reconcile of every HubSettings this often (catches out-of-band edits of the table)."""

    drift_seconds: float = 60.0
    """Layer 0 drift check period (only for objects with `spec.bootstrap`)."""

    convergence_seconds: float = 30.0
    """Convergence check period (only for objects with `spec.convergence`); 1 s while a replica is behind, and a
    check right after every apply that changed rows. `--convergence-seconds` or $HUBSETTINGS_CONVERGENCE_SECONDS."""

    trim_seconds: float = 30.0
    """How often freed heap is given back to the OS (glibc malloc_trim). `--trim-seconds` or
    $HUBSETTINGS_TRIM_SECONDS."""

    health_seconds: float = 10.0
    """Database probe period: an outage shows as DatabaseUnavailable within about one period."""

    secret_seconds: float = 60.0
    """How often the health probe re-reads each object's DSN Secret (one API GET). In between it pings with the
    DSN it read last, and a ping that fails re-reads the Secret at once (a revoked password shows within one
    health period); a new DSN whose old one still works is picked up within this period. Each reconcile
    reads the Secret too. Re-read every health period, 1,000 objects cost 100 GETs/s (docs/scale.md)."""

    probe_timeout_seconds: float | None = None
    """Longest wait of one database probe (Secret read + ping); unset: half the health period, between 2 s and
    5 s. With the default 10 s period a probe that hangs (unreachable host, exhausted pool) reports within one
    period, instead of after the store's pool and connect timeouts."""

    max_backoff_seconds: float = 60.0
    """Cap of the retry backoff after a failed reconcile (2 s doubling up to this)."""

    progress_deadline_seconds: float = 600.0
    """How long a HubSettings may stay not Ready with a transient error (database down, Secret missing) before
    it is reported Stalled (kstatus Failed, Argo CD Degraded). Per object: `spec.progressDeadlineSeconds`."""

    pod_selector: str = "app.kubernetes.io/name=scion-hub"
    """Label selector of the Hub pods the operator watches (any Kubernetes syntax, set-based too). It is sent to
    the API server as the pod watch's labelSelector, so no other pod ever reaches the operator; each
    HubSettings' `spec.bootstrap.podSelector` then chooses among the watched pods."""

    shard_selector: str = ""
    """Label selector of the HubSettings this operator handles (sharding, docs/scale.md), sent to the API server
    as the HubSettings watch's labelSelector: objects outside it never reach this process. Empty: all."""

    max_db_connections: int = 10
    """Upper bound of PostgreSQL connections the operator holds open, over all databases and objects."""

    cluster_scanning: bool = True
    """Let kopf list namespaces and watch CustomResourceDefinitions (cluster-scoped reads) to notice a CRD or a
    namespace appearing while it runs. `--no-cluster-scanning` is for installs with no cluster-scoped RBAC (the
    chart's rbac.clusterScoped: false): the CRD is discovered once at start, the listed namespaces are taken
    as they are (docs/rbac.md)."""

    peering: str | None = "hubsettings-operator"
    """kopf peering name for HA (one active replica); None runs standalone."""

    priority: int | None = None
    """Peering priority; None draws a random one per process (avoids kopf's equal-priority pause)."""

    def __post_init__(self) -> None:
        for name in (
            "resync_seconds",
            "drift_seconds",
            "convergence_seconds",
            "trim_seconds",
            "health_seconds",
            "secret_seconds",
            "max_backoff_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.progress_deadline_seconds <= 0:
            raise ValueError("progress_deadline_seconds must be > 0")
        if self.max_db_connections < 1:
            raise ValueError("max_db_connections must be >= 1")

    @property
    def probe_timeout(self) -> float:
        """The effective probe timeout: below the health period in every case."""
        if self.probe_timeout_seconds is not None:
            return self.probe_timeout_seconds
        # libpq waits at least 2 s for a connect (a smaller connect_timeout counts as 2), so a shorter bound
        # would report a merely slow database as down.
        return min(5.0, max(2.0, self.health_seconds / 2))

    @property
    def pod_watch_selector(self) -> str:
        """`pod_selector` normalised for the API server; ValueError with the reason when it does not parse."""
        try:
            return selectors.normalize(self.pod_selector)
        except selectors.SelectorError as exc:
            raise ValueError(f"--pod-selector: {exc}") from None

    @property
    def shard_watch_selector(self) -> str:
        """`shard_selector` normalised for the API server; ValueError with the reason when it does not parse."""
        try:
            return selectors.normalize(self.shard_selector) if self.shard_selector else ""
        except selectors.SelectorError as exc:
            raise ValueError(f"--shard-selector: {exc}") from None


DEFAULTS = OperatorConfig()


def default(name: str) -> object:
    """The default of one field (the CLI's click options read theirs here)."""
    if name not in {f.name for f in fields(OperatorConfig)}:
        raise KeyError(name)
    return getattr(DEFAULTS, name)


__all__ = ["DEFAULTS", "OperatorConfig", "default"]

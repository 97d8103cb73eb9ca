"""Starting the operator: logging, metrics, kopf settings (peering, persistence, timeouts), then kopf.run.

HA: every replica runs; kopf peering keeps exactly one active (the highest priority; a random priority per
process avoids kopf's "same priority: everybody pauses" rule). The PostgreSQL advisory lock taken by every
apply makes a split-brain write harmless, and a no-op apply writes nothing, so two active replicas can at
worst repeat a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import random
from typing import Any

import kopf

from hubsettings_operator.redact import install_log_scrubber
from hubsettings_operator.runtime import handlers, metrics, toggles
from hubsettings_operator.runtime.config import OperatorConfig
from hubsettings_operator.runtime.diffbase import CompactStatusDiffBaseStorage
from hubsettings_operator.runtime.kube import Kube, kopf_login
from hubsettings_operator.runtime.services import Services, build_services

log = logging.getLogger(__name__)

DIFFBASE_FIELD = "status.lastHandledConfiguration"
PEERING_LIFETIME_S = 15  # a dead active replica is replaced within about this long (docs/operations.md)


def configure_logging(config: OperatorConfig) -> None:
    kopf.configure(
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
        verbose=config.log_level.upper() == "DEBUG",
        debug=False,
        quiet=config.log_level.upper() in ("WARNING", "ERROR"),
    )
    logging.getLogger().setLevel(config.log_level.upper())
    install_log_scrubber()


def build_registry(services: Services) -> kopf.OperatorRegistry:
    config = services.config
    registry = kopf.OperatorRegistry()
    config.pod_watch_selector  # noqa: B018 - a bad --pod-selector fails here, before kopf starts
    handlers.register(registry, services)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = handlers.FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=handlers.ANNOTATION_PREFIX
        )
        # kopf's diff base is the whole spec: in an annotation it overflows the 256 KiB limit of all
        # annotations together (a spec with large extraSettings: 422 on every patch, nothing in status). In
        # status it is bounded only by the object's size. Handler progress stays in (small) annotations.
        # Only the spec matters to the handlers (update fires on spec changes): labels and annotations stay out
        # of the diff base, so editing them changes nothing in status.
        settings.persistence.diffbase_storage = CompactStatusDiffBaseStorage(
            field=DIFFBASE_FIELD, ignored_fields=["metadata"]
        )  # a digest instead of a second copy of a large spec (runtime/diffbase.py)
        # Our own Events say what happened; kopf's per-handler log events would be noise on every retry.
        settings.posting.level = logging.CRITICAL
        settings.peering.lifetime = PEERING_LIFETIME_S
        settings.peering.mandatory = config.peering is not None
        settings.peering.clusterwide = config.all_namespaces
        settings.peering.stealth = True
        # Namespaced-only installs: no list/watch of namespaces and CRDs (cluster-scoped), by choice, not a warning.
        settings.scanning.disabled = not config.cluster_scanning
        # Recover from API server restarts: bounded watches, reconnect quickly.
        settings.watching.server_timeout = 60
        settings.watching.client_timeout = 90
        settings.watching.connect_timeout = 10
        settings.watching.reconnect_backoff = 1.0
        settings.networking.request_timeout = 30
        settings.execution.max_workers = 8

    # A fresh registry has none of kopf's default login handlers: kopf's own helpers (in-cluster service
    # account, or $KUBECONFIG), the same the runtime's own calls use, in a session that bounds kopf's requests
    # in flight (runtime/kube.py).
    kopf.on.login(registry=registry)(kopf_login)

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await services.pools.close()
        await services.kube.close()

    @kopf.on.startup(registry=registry)
    async def start_trimmer(memo: kopf.Memo, **_: Any) -> None:
        memo["trimmer"] = asyncio.create_task(
            _trim_memory_forever(config.trim_seconds), name="hubsettings-trim-memory"
        )

    return registry


async def _trim_memory_forever(period: float) -> None:
    """Give freed heap back to the OS after bursts (e.g. a re-list of 1,000 pods): glibc keeps freed arenas
    otherwise, so RSS would stay at the burst's peak. A no-op where malloc_trim does not exist."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    while True:
        await asyncio.sleep(period)
        gc.collect()
        trim(0)


def run_operator(config: OperatorConfig) -> int:
    configure_logging(config)
    metrics.serve(config.metrics_port)
    services = build_services(Kube(), config, emit=handlers.emit)
    pools = services.pools
    metrics.DB_CONNECTIONS_OPEN.set_function(lambda: float(pools.open_connections()))
    metrics.DB_CONNECTION_WAITERS.set_function(lambda: float(pools.waiting()))
    metrics.DB_CONNECTION_WAIT_TIMEOUTS.set_function(lambda: float(pools.saturated_total))
    pools.on_wait = metrics.DB_CONNECTION_WAIT_SECONDS.observe
    registry = build_registry(services)
    toggles.install()  # start-up linear in the number of Hub pods listed (runtime/toggles.py)
    priority = config.priority if config.priority is not None else random.randint(1, 1_000_000)
    log.info(
        "starting hubsettings-operator: %s, peering %s (priority %d)",
        "all namespaces" if config.all_namespaces else f"namespaces {', '.join(config.namespaces)}",
        config.peering or "off (standalone)",
        priority,
    )
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=config.all_namespaces,
            namespaces=list(config.namespaces),
            standalone=config.peering is None,
            peering_name=config.peering,
            priority=priority,
            liveness_endpoint=f"http://0.0.0.0:{config.health_port}/healthz",
        )
    )
    return 0

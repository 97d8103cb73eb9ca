"""kopf handlers: thin adapters from kopf's events to the reconcile and drift services.

Handler ids (stable, they name kopf's progress annotations):
- `hubsettings.reconcile.{create,update,resume}`: reconcile on spec changes and at operator start;
- `hubsettings.resync`: periodic full reconcile (catches out-of-band edits in the table);
- `hubsettings.health`: short-period probe: re-reads the DSN Secret (a rotated DSN triggers a reconcile) and
  pings the database, so an outage shows in status within seconds and a recovery is noticed without
  touching the CR;
- `hubsettings.drift`: Layer 0 drift check against the pod index;
- `hubsettings.convergence`: daemon per HubSettings with spec.convergence (runtime/convergence_timer.py);
- `hubsettings.finalize`: deletion policy Delete (only objects with that policy get the finalizer).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from hubsettings_operator import selectors
from hubsettings_operator.redact import scrub
from hubsettings_operator.runtime import convergence_timer, metrics
from hubsettings_operator.runtime import drift_timer as drift_check
from hubsettings_operator.runtime.kube import Kube
from hubsettings_operator.runtime.reconciler import Event, Reconciler, backoff
from hubsettings_operator.spec.models import GROUP, PLURAL, VERSION
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.store import SettingsStore, Target

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "hubsettings.scion.dev"
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"
# The Kubernetes API unreachable or failing (e.g. kube-apiserver restarting) while the reconciler reads a Secret
# or patches status: retried with the reconciler's capped backoff, not kopf's fixed 60 s for unknown errors.
KUBE_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


@dataclass
class HandlerConfig:
    resync_seconds: float = 300.0
    drift_seconds: float = 60.0
    health_seconds: float = 10.0
    # The operator-wide pod watch: passed to the API server as labelSelector (any selector syntax).
    pod_selector: str = "app.kubernetes.io/name=scion-hub"


@dataclass
class State:
    reconciler: Reconciler
    kube: Kube


def emit(body: Mapping[str, Any], event: Event) -> None:
    """Post a Kubernetes Event (scrubbed: never a secret value)."""
    try:
        kopf.event(
            cast(kopf.Body, dict(body)),
            type=event.type,
            reason=event.reason,
            message=scrub(event.message)[:1024],
        )
    except Exception:  # an event that cannot be posted must not fail a reconcile
        log.debug("could not post event %s", event.reason, exc_info=True)


def _slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What drift needs of a pod (keeps the index small: no managedFields, no full status)."""
    meta = body.get("metadata", {})
    spec = body.get("spec", {})
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": dict(meta.get("labels") or {}),
            "deletionTimestamp": meta.get("deletionTimestamp"),
            "uid": meta.get("uid"),
        },
        "spec": {
            "containers": [_slim_container(c) for c in spec.get("containers") or []],
            # Only volumes that can carry a settings.yaml matter to drift.
            "volumes": [v for v in spec.get("volumes") or [] if v.get("configMap") or v.get("secret")],
        },
        # podIP: the convergence check calls each Hub pod directly.
        "status": {
            "phase": body.get("status", {}).get("phase"),
            "podIP": body.get("status", {}).get("podIP"),
        },
    }


def _slim_container(container: Mapping[str, Any]) -> dict[str, Any]:
    """Only the Hub's own env vars (SCION_*) are compared; other env entries would only cost memory."""
    out: dict[str, Any] = {"name": container.get("name")}
    env = [e for e in container.get("env") or [] if str(e.get("name", "")).startswith("SCION_")]
    if env:
        out["env"] = env
    for key in ("envFrom", "volumeMounts"):
        if container.get(key):
            out[key] = container[key]
    return out


def register(registry: kopf.OperatorRegistry, config: HandlerConfig, state: State) -> None:
    """Register every handler on `registry` (kept explicit so tests can build an operator in-process)."""
    reconciler = state.reconciler
    resource = (GROUP, VERSION, PLURAL)

    async def reconcile(body: kopf.Body, retry: int, **_: Any) -> None:
        try:
            outcome = await reconciler.reconcile(body, retry)
        except KUBE_API_ERRORS as exc:
            raise kopf.TemporaryError(
                f"Kubernetes API unavailable ({type(exc).__name__}); retrying",
                delay=backoff(retry, cap=reconciler.max_backoff),
            ) from None
        if outcome.result == "applied":
            converge.poke(body)
        if outcome.retry_in is not None:
            raise kopf.TemporaryError(outcome.error or outcome.result, delay=outcome.retry_in)

    converge = convergence_timer.register(registry, resource, state, emit, watch_selector=config.pod_selector)
    kopf.on.create(*resource, id="hubsettings.reconcile.create", registry=registry, timeout=None)(reconcile)
    kopf.on.update(*resource, id="hubsettings.reconcile.update", field="spec", registry=registry)(reconcile)
    kopf.on.resume(*resource, id="hubsettings.reconcile.resume", registry=registry)(reconcile)

    @kopf.timer(
        *resource,
        id="hubsettings.resync",
        interval=config.resync_seconds,
        initial_delay=config.resync_seconds,
        registry=registry,
    )
    async def resync(body: kopf.Body, **_: Any) -> None:
        if (await reconciler.reconcile(body)).result == "applied":
            converge.poke(body)

    @kopf.timer(
        *resource,
        id="hubsettings.health",
        interval=config.health_seconds,
        initial_delay=config.health_seconds,
        backoff=config.health_seconds,  # after an error (API server down), probe again soon, not in 60 s
        registry=registry,
    )
    async def health(body: kopf.Body, **_: Any) -> None:
        """Reconcile when not Ready, or when the database stops answering (cheap probe otherwise)."""
        conditions = {c.get("type"): c for c in (body.get("status") or {}).get("conditions") or []}
        ready = conditions.get("Ready", {})
        stalled = conditions.get("Stalled", {})
        if stalled.get("status") == "True" and stalled.get("reason") == "InvalidSpec":
            return  # only a spec change helps; the update handler will run then
        if ready.get("reason") == "Suspended":
            return
        probe = await _probe(state, body)
        if probe == "ok" and ready.get("status") == "True":
            return
        if probe == "dsn-changed":
            meta = body.get("metadata", {})
            ref = ((body.get("spec") or {}).get("database") or {}).get("secretRef") or {}
            log.info(
                "DSN in Secret %s/%s changed: reconciling HubSettings %s",
                meta.get("namespace"),
                ref.get("name"),
                meta.get("name"),
            )
        await reconciler.reconcile(body)

    watch = selectors.parse(config.pod_selector)

    @kopf.on.startup(registry=registry)
    def pod_watch_selector(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Server-side: the API server sends only matching pods (kopf's `labels=` filter would stream every
        # pod of the namespace and drop the others on our side).
        if config.pod_selector:
            settings.watching.label_selectors["v1", "pods"] = selectors.to_query(watch)

    @kopf.index("", "v1", "pods", id="hubsettings_pods", registry=registry)
    def pods_index(
        namespace: str | None, name: str, labels: kopf.Labels, body: kopf.Body, **_: Any
    ) -> dict[str | None, dict[str, Any]]:
        if not selectors.matches(watch, labels):  # never expected: the API server filtered already
            return {}
        log.debug("indexed pod %s/%s", namespace, name)
        return {namespace: _slim_pod(body)}

    @kopf.timer(
        *resource,
        id="hubsettings.drift",
        interval=config.drift_seconds,
        initial_delay=min(5.0, config.drift_seconds),
        registry=registry,
        when=lambda spec, **_: bool(spec.get("bootstrap")),
    )
    async def drift_timer(body: kopf.Body, namespace: str | None, **kwargs: Any) -> None:
        index: kopf.Index[str | None, dict[str, Any]] = kwargs["hubsettings_pods"]
        pods = list(index.get(namespace, []))
        metrics.INDEXED_PODS.set(sum(len(v) for v in index.values()))
        await drift_check.check(reconciler, state.kube, body, pods, watch_selector=config.pod_selector)

    @kopf.on.delete(
        *resource,
        id="hubsettings.finalize",
        registry=registry,
        when=lambda spec, **_: ((spec or {}).get("policy") or {}).get("deletion") == "Delete",
    )
    async def finalize(body: kopf.Body, retry: int, **_: Any) -> None:
        outcome = await reconciler.finalize(body, retry)
        for event in outcome.events:
            emit(body, event)
        if outcome.retry_in is not None:
            raise kopf.TemporaryError(outcome.error or "deletion failed", delay=outcome.retry_in)

    @kopf.on.delete(*resource, id="hubsettings.forget", optional=True, registry=registry)
    async def forget(namespace: str | None, name: str, **_: Any) -> None:
        metrics.forget(str(namespace), name)


async def _probe(state: State, body: Mapping[str, Any]) -> str:
    """ "ok" when the database of this HubSettings answers (no lock, no write), "down" when it does not,
    "dsn-changed" when its Secret now holds another DSN than the last reconcile used.

    Reading the one Secret each HubSettings names (GET) replaces a watch on every Secret of the namespace:
    the operator never receives Secrets it was not given, at the cost of noticing a rotation within one
    health period instead of at once."""
    spec, _ = validate_spec(body.get("spec"))
    if spec is None:
        return "ok"
    meta = body.get("metadata", {})
    try:
        ref = spec.database.secretRef
        dsn = await state.kube.dsn_from_secret(str(meta.get("namespace")), ref.name, ref.key)
        if state.reconciler.dsn_changed(body, dsn):
            return "dsn-changed"
        store = SettingsStore(dsn, state.reconciler.registry)
        await store.ping(Target(table=spec.database.table))
    except Exception:
        return "down"
    return "ok"

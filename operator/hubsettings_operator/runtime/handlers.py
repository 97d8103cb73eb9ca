"""kopf handlers: thin adapters from kopf's events to the three checks (reconcile, drift, convergence).

Handler ids (stable, they name kopf's progress annotations):
- `hubsettings.reconcile.{create,update,resume}`: reconcile on spec changes and at operator start;
- `hubsettings.resync`: periodic full reconcile (catches out-of-band edits in the table);
- `hubsettings.resync.own`: the same on the object's own period (spec.resyncSeconds), a daemon per such object;
- `hubsettings.reconcile.requested`: reconcile at once when the reconcile.fluxcd.io/requestedAt annotation
  holds a value status.lastHandledReconcileAt does not echo yet (runtime/requests.py), then echo it;
- `hubsettings.health`: short-period probe (`Reconciler.health`): re-reads the DSN Secret every
  `--secret-seconds` and when a ping fails (a rotated DSN triggers a reconcile) and pings the database within a timeout shorter than the period, so an outage shows
  in status within about one period and a recovery is noticed without touching the CR;
- `hubsettings.drift`: Layer 0 drift check against the pod index;
- the resync, health and drift timers' first runs are spread over their period per object
  (runtime/stagger.py): a thousand objects seen at start do not resync, probe, read Secrets and write drift
  status in the same second;
- `hubsettings.convergence`: daemon per HubSettings with spec.convergence (runtime/convergence_check.py);
- `hubsettings.finalize`: deletion policy Delete (only objects with that policy get the finalizer).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from hubsettings_operator import selectors
from hubsettings_operator.redact import scrub
from hubsettings_operator.runtime import convergence_check, drift_check, metrics, requests
from hubsettings_operator.runtime.kube import KUBE_API_ERRORS
from hubsettings_operator.runtime.reconciler import Reconciler, backoff
from hubsettings_operator.runtime.services import Services
from hubsettings_operator.runtime.stagger import Stagger
from hubsettings_operator.runtime.status_writer import uid as status_uid
from hubsettings_operator.spec.models import GROUP, PLURAL, VERSION
from hubsettings_operator.status.rules import Event

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "hubsettings.scion.dev"
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"
__all__ = ["KUBE_API_ERRORS", "emit", "register"]


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


def register(registry: kopf.OperatorRegistry, services: Services) -> None:
    """Register every handler on `registry` (kept explicit so tests can build an operator in-process)."""
    config = services.config
    reconciler = Reconciler(services)
    resource = (GROUP, VERSION, PLURAL)

    async def reconcile(body: kopf.Body, retry: int, **_: Any) -> None:
        try:
            outcome = await reconciler.reconcile(body, retry)
        except KUBE_API_ERRORS as exc:
            raise kopf.TemporaryError(
                f"Kubernetes API unavailable ({type(exc).__name__}); retrying",
                delay=backoff(retry, cap=reconciler.max_backoff),
            ) from None
        if outcome.retry_in is not None:
            raise kopf.TemporaryError(outcome.error or outcome.result, delay=outcome.retry_in)

    watch_selector = config.pod_watch_selector
    converge = convergence_check.register(registry, resource, services, watch_selector=watch_selector)
    # Every apply that changed rows starts a convergence round at its commit (whichever handler reconciled).
    reconciler.committed = converge.poke

    async def revalidate(body: Mapping[str, Any]) -> None:
        # The replicas' Hub versions changed: validate the spec against the new governing version now.
        await reconciler.reconcile(body)

    converge.revalidate = revalidate
    kopf.on.create(*resource, id="hubsettings.reconcile.create", registry=registry, timeout=None)(reconcile)
    kopf.on.update(*resource, id="hubsettings.reconcile.update", field="spec", registry=registry)(reconcile)
    kopf.on.resume(*resource, id="hubsettings.reconcile.resume", registry=registry)(reconcile)
    in_flight: set[tuple[str, str]] = set()
    resync_stagger = Stagger(config.resync_seconds)

    # Reconcile on request (runtime/requests.py). A watch-event handler, because kopf's diff base leaves
    # metadata out (runner.py), so no update handler ever sees an annotation change; the echo in status makes
    # it fire once per request, and a request pending while the operator was down is handled on its start.
    @kopf.on.event(
        *resource,
        id="hubsettings.reconcile.requested",
        registry=registry,
        when=lambda body, type, **_: type != "DELETED" and requests.pending_request(body) is not None,
    )
    async def requested(body: kopf.Body, **_: Any) -> None:
        value = requests.pending_request(body)
        key = (status_uid(body), str(value))
        if value is None or key in in_flight:
            return  # a status write of this very reconcile brought us here again
        in_flight.add(key)
        try:
            await reconciler.reconcile(body)
            meta = body.get("metadata", {})
            # Handled even when the reconcile failed or the object is suspended: its status says how.
            await services.kube.patch_status(
                str(meta.get("namespace")), str(meta.get("name")), {requests.HANDLED_FIELD: value}
            )
        except KUBE_API_ERRORS as exc:  # not echoed: the next watch event of the object asks again
            log.warning("reconcile request %s not handled yet: %s", value, type(exc).__name__)
        finally:
            in_flight.discard(key)

    @kopf.timer(
        *resource,
        id="hubsettings.resync",
        interval=config.resync_seconds,
        initial_delay=config.resync_seconds,
        registry=registry,
        when=lambda spec, **_: not requests.has_own_period(spec),
    )
    async def resync(body: kopf.Body, **_: Any) -> None:
        await resync_stagger.wait_turn(status_uid(body))
        await periodic(body)

    async def periodic(body: kopf.Body) -> None:
        await reconciler.reconcile(body)

    @kopf.daemon(
        *resource,
        id="hubsettings.resync.own",
        registry=registry,
        cancellation_timeout=1.0,
        when=lambda spec, **_: requests.has_own_period(spec),
    )
    async def own_resync(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        """spec.resyncSeconds: the same periodic reconcile on the object's own period (read each round, so a
        changed period applies from the next one; kopf stops this daemon when the field is removed)."""
        while not await stopped.wait(requests.resync_period(body.get("spec"), config.resync_seconds)):
            await periodic(body)

    health_stagger = Stagger(config.health_seconds)
    drift_stagger = Stagger(config.drift_seconds)

    @kopf.timer(
        *resource,
        id="hubsettings.health",
        interval=config.health_seconds,
        initial_delay=config.health_seconds,
        backoff=config.health_seconds,  # after an error (API server down), probe again soon, not in 60 s
        registry=registry,
    )
    async def health(body: kopf.Body, **_: Any) -> None:
        """Report an outage within about one period; reconcile when not Ready or the DSN changed; a changed
        convergence token starts a convergence round."""
        await health_stagger.wait_turn(status_uid(body))
        await reconciler.health(body)
        await converge.check_token(body)

    watch = selectors.parse(watch_selector)

    @kopf.on.startup(registry=registry)
    def pod_watch_selector(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Server-side: the API server sends only matching pods (kopf's `labels=` filter would stream every
        # pod of the namespace and drop the others on our side).
        if watch_selector:
            settings.watching.label_selectors["v1", "pods"] = watch_selector
        # Sharding: only this shard's HubSettings are listed and watched. An object relabelled out of the
        # shard arrives as a watch DELETED event here (its timers stop) and as ADDED in its new shard, whose
        # resume handler reconciles it: the handover needs nothing else.
        if config.shard_watch_selector:
            settings.watching.label_selectors[GROUP, PLURAL] = config.shard_watch_selector

    # async: kopf runs a sync handler in its thread pool, one hand-over per pod (1,000 at start).
    @kopf.index("", "v1", "pods", id="hubsettings_pods", registry=registry)
    async def pods_index(
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
        await drift_stagger.wait_turn(status_uid(body))
        index: kopf.Index[str | None, dict[str, Any]] = kwargs["hubsettings_pods"]
        pods = list(index.get(namespace, []))
        metrics.INDEXED_PODS.set(sum(len(v) for v in index.values()))
        await drift_check.check(services, body, pods, watch_selector=watch_selector)

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
    async def forget(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
        metrics.forget(str(namespace), name)
        resync_stagger.forget(status_uid(body))
        health_stagger.forget(status_uid(body))
        drift_stagger.forget(status_uid(body))
        await reconciler.forget(body)

"""Status vocabulary shared by every layer: condition types, condition and event reasons, the condition model.

Types only (a shared leaf): the rules that turn a reconcile outcome into conditions live in
`status/rules.py`. kstatus (Flux, `kubectl wait`, Argo CD through docs/argocd-health.lua) reads
`Reconciling=True` as in progress, `Stalled=True` as failed and `Ready` as the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CondType(StrEnum):
    READY = "Ready"
    SYNCED = "Synced"
    DRIFTED = "Drifted"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    CONVERGED = "Converged"


class CondStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    SYNCED = "Synced"
    APPLIED = "Applied"
    UP_TO_DATE = "UpToDate"
    CONFLICTS_REPORTED = "ConflictsReported"
    INVALID_SPEC = "InvalidSpec"
    DATABASE_UNAVAILABLE = "DatabaseUnavailable"
    WAITING_FOR_CONNECTION = "WaitingForConnection"
    PERMISSION_DENIED = "PermissionDenied"
    SCHEMA_MISMATCH = "SchemaMismatch"
    SECRET_NOT_FOUND = "SecretNotFound"
    KEY_OWNED_BY_OTHER = "KeyOwnedByOther"
    CONCURRENT_WRITE = "ConcurrentWrite"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    DELETING = "Deleting"
    BOOTSTRAP_MISMATCH = "BootstrapMismatch"
    BOOTSTRAP_CONSISTENT = "BootstrapConsistent"
    NO_PODS = "NoPods"
    ALL_REPLICAS_LOADED = "AllReplicasLoaded"
    REPLICAS_BEHIND = "ReplicasBehind"
    LISTENER_MISSING = "ListenerMissing"
    UNKNOWN = "Unknown"
    TOKEN_REJECTED = "TokenRejected"
    TOKEN_FORBIDDEN = "TokenForbidden"
    SECTIONS_UNKNOWN_TO_REPLICA = "SectionsUnknownToReplica"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(StrEnum):
    """Reasons of the Events the operator posts (docs/status.md), besides the failure `Reason`s."""

    APPLIED = "Applied"
    CONFLICT_OVERWRITTEN = "ConflictOverwritten"
    MODIFIED_OUT_OF_BAND = "ModifiedOutOfBand"
    ADOPTED_ROWS = "AdoptedRows"
    RETARGETED = "Retargeted"
    ROWS_DELETED = "RowsDeleted"
    ROWS_LEFT = "RowsLeft"
    DELETE_FAILED = "DeleteFailed"
    FINALIZER_RELEASED = "FinalizerReleased"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_CLEARED = "DriftCleared"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    CONVERGED = "Converged"
    HUB_VERSIONS_MIXED = "HubVersionsMixed"  # replicas run different Hub versions (a rolling upgrade)


class Condition(BaseModel):
    """A Kubernetes condition (metav1.Condition shape)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = Field(description="Condition type: Ready, Synced, Drifted, Reconciling or Stalled.")
    status: str = Field(description='"True", "False" or "Unknown".')
    reason: str = Field(description="CamelCase reason, e.g. Applied, InvalidSpec, DatabaseUnavailable.")
    message: str = Field(default="", description="Human-readable detail; never contains secret values.")
    lastTransitionTime: str = Field(default="", description="When status last changed (RFC 3339).")
    observedGeneration: int | None = Field(default=None, description="metadata.generation this reflects.")


@dataclass(frozen=True)
class Desired:
    """One condition as an outcome wants it (lastTransitionTime is filled when merged into status)."""

    type: CondType
    status: bool | None  # None: "Unknown"
    reason: Reason
    message: str = ""


def find(status: Mapping[str, Any] | None, ctype: CondType) -> Mapping[str, Any] | None:
    """The condition of type `ctype` in a status as the API returns it (raw mapping), None when absent."""
    conditions = (status or {}).get("conditions") or []
    return next((c for c in conditions if isinstance(c, Mapping) and c.get("type") == ctype.value), None)

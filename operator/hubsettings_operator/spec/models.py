"""The HubSettings custom resource as pydantic v2 models: spec, status, and the resource envelope.

The CRD's OpenAPI schema is generated from these models (`crd.py`), so every field's description here is
what `kubectl explain` shows. The Layer 1 section models live in `sections.py`; the settings catalog
(`catalog.py`) ties them to the Hub's keys and env vars.

Over 400 lines because the CRD is one schema: spec, status and envelope stay together so the generated
CRD and `kubectl explain` follow one file.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hubsettings_operator.conditions import Condition
from hubsettings_operator.spec.sections import Settings

GROUP = "scion.dev"
VERSION = "v1alpha1"
KIND = "HubSettings"
PLURAL = "hubsettings"
SINGULAR = "hubsettings"
SHORT_NAMES = ("hs",)
API_VERSION = f"{GROUP}/{VERSION}"

# A SQL identifier as the operator accepts it: lower-case, unquoted-safe, at most 63 bytes (NAMEDATALEN-1).
IDENTIFIER_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
TABLE_PATTERN = r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$"
# Row keys of extraSettings: dotted lower-case words; never starting with `_` (the Hub's `_meta` rows).
EXTRA_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62}){0,7}$"
# Catalog keys under bootstrap.expected: koanf paths as in the Hub's settings.yaml.
KOANF_PATH_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

# Size limits (documented in docs/crd-reference.md): the Hub's NOTIFY payloads must stay small and the
# operator must never write a value a replica would choke on.
MAX_VALUE_BYTES = 64 * 1024
MAX_EXTRA_KEYS = 100
MAX_JSON_DEPTH = 16


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Profile(StrEnum):
    AUTO = "auto"
    SCION = "scion"
    PROPOSAL = "proposal"


class ConflictMode(StrEnum):
    ENFORCE = "Enforce"
    REPORT = "Report"
    # Per section only (spec.policy.sections): never write, only report.
    OBSERVE = "Observe"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class SecretKeyRef(_Strict):
    """A key of a Secret in the HubSettings' own namespace."""

    name: str = Field(
        description="Name of the Secret, in the same namespace as the HubSettings.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    key: str = Field(
        default="url",
        description="Key inside the Secret whose value is the PostgreSQL DSN.",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
    )


class DatabaseSpec(_Strict):
    """Where the Hub's Layer 1 settings live: the Hub's own PostgreSQL database."""

    secretRef: SecretKeyRef = Field(
        description="Secret key holding the DSN of the Hub's database (the same secret the Hub uses). "
        "The DSN is never logged or shown in status."
    )
    table: str = Field(
        default="hub_settings",
        description="Settings table, optionally schema-qualified (schema.table). Lower-case SQL identifiers.",
        pattern=TABLE_PATTERN,
        max_length=127,
    )
    profile: Profile = Field(
        default=Profile.AUTO,
        description="Table layout. scion: the shipped Hub (one row per section, revision counter, NOTIFY on "
        "scion_ev_global). proposal: seed 000 (one row per key, NOTIFY on scion_settings_changed). auto: "
        "detect from the table's columns (a missing table means proposal when createTable is true).",
    )
    channel: str = Field(
        default="",
        description="NOTIFY channel; empty means the profile's default (scion_ev_global or "
        "scion_settings_changed). Lower-case SQL identifier.",
        pattern=r"^([a-z_][a-z0-9_]{0,62})?$",
    )
    createTable: bool = Field(
        default=False,
        description="proposal profile only: create the table (seed 000's DDL) if it is missing. The shipped "
        "Hub creates its own table through its migrations.",
    )

    @model_validator(mode="after")
    def _create_table_only_for_proposal(self) -> DatabaseSpec:
        # The same rule as the CRD's CEL rule, so offline `validate` agrees with the API server.
        if self.createTable and self.profile is Profile.SCION:
            raise ValueError(
                "createTable applies to the proposal profile only: the shipped Hub creates its table through "
                "its own migrations"
            )
        return self


class LabelSelectorRequirement(_Strict):
    """A label selector requirement (as in metav1.LabelSelector)."""

    key: str = Field(description="Label key.", min_length=1, max_length=317)
    operator: str = Field(
        description="In, NotIn, Exists or DoesNotExist.",
        pattern=r"^(In|NotIn|Exists|DoesNotExist)$",
    )
    values: list[str] = Field(default_factory=list, description="Values for In and NotIn.")


class LabelSelector(_Strict):
    """Selects the Hub's pods by label."""

    matchLabels: dict[str, str] = Field(default_factory=dict, description="Labels a pod must carry.")
    matchExpressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Set-based requirements a pod must meet."
    )


BootstrapValue = str | int | bool


class BootstrapSpec(_Strict):
    """Layer 0 (bootstrap) checks. Never written to the database: only compared with the Hub pods' env."""

    podSelector: LabelSelector = Field(
        default_factory=lambda: LabelSelector(matchLabels={"app.kubernetes.io/name": "scion-hub"}),
        description="Label selector of the Hub's pods, in the HubSettings' namespace.",
    )
    container: str | None = Field(
        default=None,
        description="Container to inspect; default: every container of the selected pods.",
        max_length=63,
    )
    expected: dict[str, BootstrapValue] = Field(
        default_factory=dict,
        description="Expected Layer 0 values by catalog key (koanf path as in the Hub's settings.yaml, "
        "e.g. server.log_level: info). Secret-valued keys are compared by SHA-256 fingerprint: give the "
        "value's fingerprint (sha256:<hex prefix>) rather than the secret itself.",
    )
    requireConsistency: bool = Field(
        default=True,
        description="Report pods that disagree with their peers on any Layer 0 key, even one not listed in "
        "expected.",
    )


class SectionPolicy(_Strict):
    """The policy of one section, overriding the HubSettings-wide one."""

    conflicts: ConflictMode = Field(
        description="Enforce: write the section and overwrite out-of-band edits. Report: write it, but leave "
        "out-of-band edits and report them. Observe: never write it, only report how it differs (for runtime "
        "state admins change in the Hub's UI, such as maintenance)."
    )


class PolicySpec(_Strict):
    """How the operator treats rows it does not own and rows it no longer lists."""

    prune: bool = Field(
        default=True, description="Delete rows this HubSettings wrote before and no longer lists."
    )
    conflicts: ConflictMode = Field(
        default=ConflictMode.ENFORCE,
        description="Rows edited out of band (e.g. through the Hub's admin API). Enforce: overwrite them and "
        "report the conflict. Report: leave them and report the conflict.",
    )
    deletion: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="When the HubSettings is deleted: Retain leaves its rows, Delete removes them "
        "(and notifies the replicas).",
    )
    sections: dict[str, SectionPolicy] = Field(
        default_factory=dict,
        description="Per-section policy by section name (a section of spec.settings or an extraSettings key), "
        "overriding conflicts for that section; Observe is allowed here only.",
        max_length=64,
    )

    @model_validator(mode="after")
    def _observe_is_per_section(self) -> PolicySpec:
        if self.conflicts is ConflictMode.OBSERVE:
            raise ValueError(
                "conflicts: Observe applies to one section at a time: set spec.policy.sections.<section>."
                "conflicts: Observe (e.g. for maintenance) and keep Enforce or Report here"
            )
        return self


class TokenSecretRef(SecretKeyRef):
    """A key of a Secret in the HubSettings' own namespace holding a bearer token."""

    key: str = Field(
        default="token",
        description="Key inside the Secret whose value is the token.",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
    )


class ConvergenceScheme(StrEnum):
    HTTP = "http"
    HTTPS = "https"


# The Hub's HTTP port (server.hub.port default) and its poll backstop (60 s + up to 10 s jitter) + margin.
HUB_DEFAULT_PORT = 9810
CONVERGENCE_DEFAULT_TIMEOUT_S = 75


class ConvergenceSpec(_Strict):
    """How the operator confirms that each Hub replica loaded what it wrote (scion profile)."""

    adminTokenSecretRef: TokenSecretRef | None = Field(
        default=None,
        description="Secret key holding a Hub bearer token with permission hub.config.read. The operator "
        "asks each Hub pod directly (pod IP, never a Service) for GET /api/v1/admin/server-config. Without "
        "it only the replicas' listener connections are reported. Never logged or shown.",
    )
    port: int = Field(default=HUB_DEFAULT_PORT, ge=1, le=65535, description="The Hub pods' HTTP port.")
    scheme: ConvergenceScheme = Field(
        default=ConvergenceScheme.HTTP,
        description="http or https (https: the pod's certificate is not verified against the pod IP).",
    )
    timeoutSeconds: int = Field(
        default=CONVERGENCE_DEFAULT_TIMEOUT_S,
        ge=1,
        le=3600,
        description="A replica still behind this long after a change gets a Warning Event (default: the Hub's "
        "60 s poll + jitter + margin).",
    )
    requiredForReady: bool = Field(
        default=False, description="Keep Ready=False until every replica has loaded the written revisions."
    )


class HubSettingsSpec(_Strict):
    """Desired Hub settings: Layer 1 rows to write, Layer 0 values to check."""

    database: DatabaseSpec = Field(description="The Hub's database and settings table.")
    settings: Settings = Field(
        default_factory=Settings,
        description="Layer 1 (operational) settings, grouped by the Hub's sections. A listed section is "
        "owned whole: fields left out are written with the Hub's defaults (scion profile).",
    )
    extraSettings: dict[str, Any] = Field(
        default_factory=dict,
        description="Rows the catalog does not know yet (newer Hub sections or keys), written verbatim as "
        "JSON. Explicit opt-in: no type checks beyond size and key grammar.",
    )
    bootstrap: BootstrapSpec | None = Field(
        default=None, description="Layer 0 (bootstrap) checks on the Hub's pods: drift detection."
    )
    policy: PolicySpec = Field(default_factory=PolicySpec, description="Pruning, conflicts and deletion.")
    suspend: bool = Field(default=False, description="Stop writing to the database; drift is still reported.")
    hubVersion: str | None = Field(
        default=None,
        pattern=r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$",
        max_length=64,
        description="Version of the Hub these settings are for (e.g. 0.2.21). When set, a section or field that "
        "Hub version does not know is refused before anything is written; when unset, fields of newer Hub "
        "versions are written only when set and plan lists the version each needs.",
    )
    convergence: ConvergenceSpec | None = Field(
        default=None,
        description="Confirm that every Hub replica has loaded the written revisions (scion profile): "
        "status.convergence and the Converged condition.",
    )
    resyncSeconds: int | None = Field(
        default=None,
        ge=30,
        le=86400,
        description="This object's own full-reconcile period in seconds (30 to 86400), overriding the "
        "operator's --resync-seconds (300). A no-op resync writes nothing. To reconcile at once instead, "
        "annotate the object with reconcile.fluxcd.io/requestedAt.",
    )
    progressDeadlineSeconds: int | None = Field(
        default=None,
        ge=10,
        le=604800,
        description="How long this object may stay not Ready with a transient error (database down, Secret "
        "missing) before it is reported Stalled (kstatus Failed, Argo CD Degraded); it recovers by itself when "
        "the cause goes. Default: the operator's --progress-deadline-seconds (600).",
    )


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    namespace: str = Field(default="default", min_length=1, max_length=63)

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", v):
            raise ValueError("must be a DNS label (lower-case letters, digits, '-')")
        return v


class HubSettings(BaseModel):
    """A whole HubSettings manifest as read from YAML or the API server."""

    model_config = ConfigDict(extra="ignore")

    apiVersion: str = Field(pattern=rf"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern=rf"^{KIND}$")
    metadata: ObjectMeta
    spec: HubSettingsSpec


# ---- status ----------------------------------------------------------------------------------------


class ConflictItem(BaseModel):
    """A row edited out of band (or owned by another HubSettings)."""

    key: str = Field(description="Row key: a section (scion profile) or a key (proposal profile).")
    updatedBy: str | None = Field(default=None, description="updated_by of the row as found.")
    updatedAt: str | None = Field(default=None, description="When the row was last written (RFC 3339).")
    action: str = Field(description="overwritten (Enforce), left (Report) or ownedByOther (not written).")


class DriftItem(BaseModel):
    """One Layer 0 disagreement on one pod."""

    pod: str = Field(description="Pod name.")
    container: str = Field(description="Container name.")
    key: str = Field(description="Catalog key (koanf path), or the env var name for ineffective env vars.")
    env: str | None = Field(default=None, description="Env var that sets it on the pod.")
    reason: str = Field(
        description="mismatch (differs from spec.bootstrap.expected), differsFromPeers, missing, "
        "unresolved, ineffectiveEnv or tie."
    )
    expected: str | None = Field(default=None, description="Expected value (fingerprint for secrets).")
    actual: str | None = Field(default=None, description="Value on the pod (fingerprint for secrets).")
    source: str | None = Field(
        default=None,
        description="Where the actual value came from (env, envFrom, configMap, secret, settings.yaml).",
    )
    message: str | None = Field(default=None, description="What to do about it.")


class OverrideItem(BaseModel):
    """A Layer 1 key set by a pod's environment, and its effect under the table profile in use."""

    pod: str = Field(description="Pod name.")
    container: str = Field(description="Container name.")
    key: str = Field(description="Catalog key (koanf path).")
    env: str = Field(description="Env var name.")
    effect: str = Field(
        description="overridesTable (proposal: the env value hides the table's on this pod), ignoredManagedRow "
        "(shipped Hub: deprecated, ignored while a managed row exists), seedOnly (SCION_SEED_*: only seeds "
        "an empty table)."
    )


class DriftStatus(BaseModel):
    """Layer 0 drift across the Hub's pods."""

    checkedPods: int = Field(default=0, description="Pods compared.")
    driftedPods: int = Field(default=0, description="Pods with at least one drift item.")
    skippedPods: int = Field(default=0, description="Pods skipped (not Running, terminating, no container).")
    items: list[DriftItem] = Field(default_factory=list, description="Drift items, capped.")
    truncated: int = Field(default=0, description="Drift items left out of items by the cap.")
    overrides: list[OverrideItem] = Field(default_factory=list, description="Layer 1 keys set by env vars.")


class WrittenItem(BaseModel):
    """What the operator last wrote to one row: the next apply tells its own writes from out-of-band edits."""

    revision: int | None = Field(default=None, description="Row revision after the write (scion profile).")
    digest: str = Field(description="sha256: of the canonical JSON written (never the value itself).")


class TargetStatus(BaseModel):
    """Where this object's rows are: kept so that a change of spec.database releases the old place."""

    table: str = Field(description="Settings table.")
    profile: str = Field(description="Table profile in use (scion or proposal).")
    dsnFingerprint: str = Field(
        description="sha256: fingerprint of the database's host:port/name (never the DSN or its credentials, "
        "so a password rotation is not a move)."
    )
    secretName: str = Field(description="spec.database.secretRef.name used.")
    secretKey: str = Field(description="spec.database.secretRef.key used.")


class HubSettingsStatus(BaseModel):
    """Observed state, kstatus compatible."""

    observedGeneration: int | None = Field(default=None, description="Last metadata.generation acted on.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Synced, Drifted, Reconciling, Stalled."
    )
    profile: str | None = Field(default=None, description="Table profile in use (scion or proposal).")
    settingsHash: str | None = Field(
        default=None, description="SHA-256 of the canonical applied Layer 1 set."
    )
    appliedKeys: int | None = Field(default=None, description="Rows this HubSettings owns in the table.")
    lastAppliedTime: str | None = Field(default=None, description="Last time a change was written.")
    conflicts: list[ConflictItem] = Field(
        default_factory=list, description="Out-of-band edits and rows owned by another HubSettings."
    )
    drift: DriftStatus | None = Field(default=None, description="Layer 0 drift report.")
    written: dict[str, WrittenItem] = Field(
        default_factory=dict, description="Per row key: revision and digest of the operator's last write."
    )
    target: TargetStatus | None = Field(default=None, description="Where the rows were last written.")
    unvalidatedSections: list[str] = Field(
        default_factory=list,
        description="extraSettings sections the operator's catalog does not know (a newer Hub): written as JSON "
        "objects without schema validation.",
    )
    observedDrift: list[str] = Field(
        default_factory=list,
        description="Rows of sections under policy Observe whose table value differs from the spec (never written).",
    )
    lastHandledConfiguration: str | None = Field(
        default=None,
        description="The spec the operator last handled, as JSON (kopf's diff base; kept in status because an "
        "annotation cannot hold a spec over 256 KiB). Internal: do not edit.",
    )
    convergence: ConvergenceStatus | None = Field(
        default=None, description="Which revision each Hub replica has loaded (spec.convergence)."
    )
    lastHandledReconcileAt: str | None = Field(
        default=None,
        description="The value of the reconcile.fluxcd.io/requestedAt annotation the operator last reconciled "
        "for (Flux's convention): equal to the annotation once the request has been handled.",
    )
    hubVersion: HubVersionStatus | None = Field(
        default=None, description="Which Hub version governed the last validation, and where it came from."
    )


class HubVersionStatus(BaseModel):
    """The Hub version the reconcile validated against (docs/status.md, "hubVersion")."""

    effective: str = Field(description="The governing Hub version.")
    source: str = Field(
        description="spec (spec.hubVersion), replicas (the oldest version the replicas reported to the "
        "convergence check) or facts (no replica reported one: the newest Hub generation the operator knows)."
    )
    mixed: bool = Field(default=False, description="Replicas run different Hub versions (a rolling upgrade).")
    versions: list[str] = Field(default_factory=list, description="The replicas' versions, oldest first.")
    message: str = Field(default="", description="Why this version governs.")


class ReplicaConvergence(BaseModel):
    """One Hub pod: its listener connection and the revisions it has loaded."""

    name: str = Field(description="Pod name.")
    listening: bool | None = Field(
        default=None,
        description="Whether a LISTEN connection from the pod's IP is open (null: cannot tell, the database "
        "role may not read other sessions in pg_stat_activity).",
    )
    loaded: dict[str, int] = Field(
        default_factory=dict, description="Revision of each written section this replica has loaded."
    )
    behind: list[str] = Field(default_factory=list, description="Written sections not loaded yet.")
    unknownSections: list[str] = Field(
        default_factory=list,
        description="Written sections this replica's Hub version does not know (not in its server-config): it "
        "will never load them; not counted as behind.",
    )
    version: str | None = Field(default=None, description="The replica's scion_version (its server-config).")
    error: str | None = Field(default=None, description="Why the loaded revisions are unknown.")
    checkedAt: str | None = Field(default=None, description="When this pod was last checked (RFC 3339).")


class ConvergenceStatus(BaseModel):
    """Per-replica proof that the settings the operator wrote are loaded."""

    written: dict[str, int] = Field(
        default_factory=dict, description="Revision of each section this HubSettings wrote, as in the table."
    )
    replicas: list[ReplicaConvergence] = Field(default_factory=list, description="One entry per Hub pod.")
    summary: str = Field(default="", description="Replicas that loaded every written revision / Hub pods.")
    oldestVersion: str | None = Field(
        default=None,
        description="The oldest scion_version the replicas report: the sections and fields every replica "
        "knows are those of this version.",
    )

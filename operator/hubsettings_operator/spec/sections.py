"""The Hub's 21 Layer 1 sections as pydantic models, typed like the Hub's own section schemas.

The shipped Hub validates a section document against a JSON Schema (`additionalProperties: false`) only on
its own write path, built in `pkg/config/opsettings/registry.go` from `pkg/config/schemas/settings-v1.schema.json`.
Its read path does not validate: an unknown field is silently dropped and a wrong type makes the whole
section malformed. For rows the operator writes, these models are the only guard, so they mirror those
schemas field by field (the generated facts in `data/hub_facts.json` carry the schemas, and
`tests/unit/test_sections_schema.py` fails on any drift).

Where the Hub's section schema is looser than what its Go code reads, the models follow the code and say so
in the field's description (documented in docs/sections.md): Go durations are checked with
`time.ParseDuration`'s grammar, `admin_emails` and `public_url` with the `format` the schema names (the
Hub's schema library treats `format` as an annotation), `user_access_mode` with the values the Hub's login
code knows, and the entries of `runtimes`, `profiles` and `harness_configs` refuse unknown keys (the Hub's
schema would accept them and its Go structs would drop them).

Every field defaults to `None`, meaning "not set in the HubSettings": the catalog fills the Hub's default
when a complete section document is written (scion profile), and the proposal profile writes only the
fields that are set. The Hub's defaults live in `catalog.py`, not here.

Over 400 lines: 21 sections, one model each, field by field as the Hub's schemas (declarative).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hubsettings_operator.spec.goduration import is_go_duration
from hubsettings_operator.spec.hub_urls import dashboard_url_problem

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URL = r"^https?://[^\s/]+[^\s]*$"


def _duration(value: str) -> str:
    # Operator rule go-duration: exactly what Go's time.ParseDuration takes; "" is the Hub's "unset".
    if value and not is_go_duration(value):
        raise PydanticCustomError(
            "go_duration", "not a Go duration (time.ParseDuration: e.g. 90s, 1h30m, -1h, .5s)"
        )
    return value


def _format(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # Operator rule format: the Hub's schema names the format, its schema library does not check it.
        if value and not compiled.search(value):
            raise PydanticCustomError("format", f"not {what}")
        return value

    return AfterValidator(check)


def _dashboard_url(value: str) -> str:
    problem = dashboard_url_problem(value)
    if problem:
        raise PydanticCustomError("format", problem)
    return value


# Go integers as json.Unmarshal fills them (int and int64 are 64-bit on the Hub's builds): a wider value makes
# the Hub's read path fail on the whole section.
GoInt = Annotated[int, Field(strict=True)]  # its int64 range: Section._go_ints
Duration = Annotated[str, Field(strict=True), AfterValidator(_duration)]
Email = Annotated[str, Field(strict=True), _format(EMAIL, "an email address")]
HttpURL = Annotated[str, Field(strict=True), _format(URL, "an absolute http(s) URL")]
DashboardURL = Annotated[str, Field(strict=True), AfterValidator(_dashboard_url)]
# A float64 as the Hub decodes it: a JSON number, never a string or a boolean (no coercion).
Fraction = Annotated[float, Field(strict=True, ge=0, le=1)]
# registry.go dns1123LabelOrEmptyPattern / dns1123SubdomainOrEmptyPattern, config.SharedDirNamePattern.
DNS_LABEL_OR_EMPTY = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_OR_EMPTY = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SHARED_DIR_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
GSA_EMAIL = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+gserviceaccount\.com$"
# The federation intervals' string branch in the Hub's section schema (empty means the Hub's default).
FEDERATION_DURATION = r"^(|[-+]?0|[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"
# pkg/experiments NamePattern.
EXPERIMENT_NAME = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
NEWER = (
    " Newer Hub versions only: an older Hub rejects a section document holding it, so the operator writes it "
    "only when it is set."
)
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
StorageBackend = Literal["", "local", "nfs"]
HomeLeaf = Literal["", "pod", "broker"]
AgentRole = Literal["none", "readonly", "baseline", "full"]
AuthType = Literal["api-key", "oauth-token", "auth-file", "vertex-ai", "none"]
StrMap = dict[str, StrictStr]


class Section(BaseModel):
    """Base of every section: unknown fields rejected, as the Hub's schemas do.

    A section model (one listed in SECTION_MODELS) also says `hub_defaults`: the Hub's defaults for its fields
    (hub_config.go DefaultGlobalConfig, the schemas' `default`s, the zero values the Hub reads for absent
    fields). A field without a default the Hub would accept (e.g. default_max_turns, minimum 1) is left out,
    so a written document leaves it unset, exactly as the Hub's own rows do. spec/section_registry.py reads it
    and fails at import for a section model without one."""

    hub_defaults: ClassVar[dict[str, Any]]

    @model_validator(mode="after")
    def _go_ints(self) -> Section:
        # Go integers as json.Unmarshal fills them (int and int64 are 64-bit on the Hub's builds): a wider value
        # fails the Hub's read path on the whole section. Checked here, not as schema bounds: the CRD's
        # minimum/maximum are float64, and 2^63-1 would round to 2^63.
        for name, value in self:
            if type(value) is int and not -(2**63) <= value <= 2**63 - 1:
                raise PydanticCustomError(
                    "go_int",
                    "{field} does not fit the Hub's Go int64 field (-2^63 to 2^63-1)",
                    {"field": name},
                )
        return self

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MapSection(Section):
    """A section whose document is a map of named entries (one row holds the whole map)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)


class AccessSettings(Section):
    """Who may use the Hub (section `access`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {
        "admin_emails": [],
        "user_access_mode": "open",
        "authorized_domains": [],
    }

    admin_emails: list[Email] | None = Field(
        default=None,
        description="Email addresses promoted to the admin role at sign-in. The Hub lowercases and trims them; "
        "so does the operator, so the stored value is what the Hub compares.",
    )
    user_access_mode: Literal["open", "invite_only", "domain_restricted"] | None = Field(
        default=None,
        description="How sign-in is granted: open (default), invite_only (an admin must invite), "
        "domain_restricted (only authorized_domains). The Hub's schema says only 'string'; these are the values "
        "its login code knows (any other acts as open).",
    )
    authorized_domains: list[StrictStr] | None = Field(
        default=None, description="Email domains allowed to sign in."
    )
    default_user_role: Literal["member", "viewer"] | None = Field(
        default=None,
        description="Role assigned to new users not in admin_emails: member (default) or viewer. 'admin' is "
        "blocked." + NEWER,
    )

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _normalize_emails(cls, value: object) -> object:
        if isinstance(value, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in value]
        return value


class LifecycleSettings(Section):
    """Agent lifecycle (section `lifecycle`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {
        "auto_suspend_stalled": False,
        "soft_delete_retain_files": False,
    }

    auto_suspend_stalled: StrictBool | None = Field(
        default=None, description="Automatically suspend stalled agents."
    )
    soft_delete_retention: Duration | None = Field(
        default=None,
        description="How long soft-deleted agents are kept before permanent cleanup (Go duration, e.g. 72h).",
    )
    soft_delete_retain_files: StrictBool | None = Field(
        default=None, description="Keep workspace files during the soft-delete period."
    )
    stalled_threshold: Duration | None = Field(
        default=None, description="How long without progress before an agent counts as stalled." + NEWER
    )
    start_claim_lease_ttl: Duration | None = Field(
        default=None,
        description="Lease of the claim every agent start holds; the holder renews it every third of this. "
        "Default 90s, allowed 30s to 5m." + NEWER,
    )
    start_max_duration: Duration | None = Field(
        default=None,
        description="Hard deadline on any agent start, including a wait for another hub node. Default 12m, "
        "minimum 11m." + NEWER,
    )
    start_unconfirmed_hold: Duration | None = Field(
        default=None,
        description="Longest time a start whose outcome is unknown blocks other starts of the agent. Default "
        "13m, minimum 12m40s." + NEWER,
    )
    start_create_unconfirmed_hold: Duration | None = Field(
        default=None,
        description="start_unconfirmed_hold for a new agent's create-and-start. Default 5m, allowed 3m up to "
        "start_unconfirmed_hold." + NEWER,
    )


class MaintenanceSettings(Section):
    """Maintenance mode (section `maintenance`; database only, no settings.yaml form). Runtime state admins
    usually toggle in the Hub's UI: see spec.policy.sections for Observe."""

    hub_defaults: ClassVar[dict[str, Any]] = {"admin_mode": False, "maintenance_message": ""}

    admin_mode: StrictBool | None = Field(
        default=None, description="Admin-only mode: only admins may use the Hub while true."
    )
    maintenance_message: StrictStr | None = Field(
        default=None, description="Message shown to users while in maintenance."
    )


class MessagingSettings(Section):
    """Agent messaging switches (section `messaging`; database only, absent row = both switches off)."""

    hub_defaults: ClassVar[dict[str, Any]] = {
        "conversation_envelope_switch": False,
        "cross_project_messaging_enabled": False,
    }

    conversation_envelope_switch: StrictBool | None = Field(
        default=None, description="Wrap agent conversations in the message envelope." + NEWER
    )
    cross_project_messaging_enabled: StrictBool | None = Field(
        default=None, description="Allow agents to message agents of other projects." + NEWER
    )
    offload_threshold_runes: GoInt | None = Field(
        default=None,
        ge=0,
        description="Message size (in runes) above which a message body is offloaded instead of sent inline."
        + NEWER,
    )


class TelemetryTLS(Section):
    """TLS to the telemetry collector."""

    enabled: StrictBool | None = Field(default=None, description="Use TLS.")
    insecure_skip_verify: StrictBool | None = Field(
        default=None, description="Skip certificate verification (testing only)."
    )
    ca_file: StrictStr | None = Field(
        default=None, description="CA bundle file path inside the Hub container."
    )


class TelemetryBatch(Section):
    """Export batching."""

    max_size: GoInt | None = Field(default=None, description="Maximum events per batch.")
    timeout: Duration | None = Field(default=None, description="Maximum wait before a batch is sent.")


class TelemetryCloud(Section):
    """Export to an OpenTelemetry collector."""

    enabled: StrictBool | None = Field(default=None, description="Export to the collector.")
    endpoint: StrictStr | None = Field(default=None, description="Collector endpoint.")
    protocol: Literal["grpc", "http"] | None = Field(default=None, description="grpc or http.")
    headers: StrMap | None = Field(
        default=None,
        description="Headers sent to the collector. Do not put credentials here: they would be stored in "
        "clear in the settings table.",
    )
    tls: TelemetryTLS | None = Field(default=None, description="TLS settings.")
    batch: TelemetryBatch | None = Field(default=None, description="Batching settings.")
    provider: StrictStr | None = Field(
        default=None, description="Cloud telemetry provider (e.g. gcp for GCP-native export)." + NEWER
    )
    gcp_project_id: StrictStr | None = Field(
        default=None,
        description="GCP project ID for telemetry (Cloud Monitoring); overrides auto-detection." + NEWER,
    )
    cloud_logging: StrictBool | None = Field(
        default=None,
        description="Write structured logs to Cloud Logging (SCION_CLOUD_LOGGING on the pod wins)." + NEWER,
    )


class TelemetryHub(Section):
    """Telemetry reported to the Hub itself."""

    enabled: StrictBool | None = Field(default=None, description="Report to the Hub.")
    report_interval: Duration | None = Field(default=None, description="How often to report.")


class TelemetryLocal(Section):
    """Local (debug) telemetry output."""

    enabled: StrictBool | None = Field(default=None, description="Write telemetry locally.")
    file: StrictStr | None = Field(default=None, description="File to write to.")
    console: StrictBool | None = Field(default=None, description="Write to the console.")


class TelemetryFilterEvents(Section):
    """Event name filters."""

    include: list[StrictStr] | None = Field(default=None, description="Event names to keep.")
    exclude: list[StrictStr] | None = Field(default=None, description="Event names to drop.")


class TelemetryFilterAttributes(Section):
    """Attribute filters."""

    redact: list[StrictStr] | None = Field(default=None, description="Attributes to redact.")
    hash: list[StrictStr] | None = Field(default=None, description="Attributes to hash.")


class TelemetrySampling(Section):
    """Sampling rates."""

    default: Fraction | None = Field(default=None, description="Default sampling rate, 0 to 1.")
    rates: dict[str, Fraction] | None = Field(
        default=None, description="Sampling rate per event name, 0 to 1."
    )


class TelemetryFilter(Section):
    """What telemetry is kept."""

    enabled: StrictBool | None = Field(default=None, description="Apply the filters.")
    respect_debug_mode: StrictBool | None = Field(default=None, description="Honour agents' debug mode.")
    events: TelemetryFilterEvents | None = Field(default=None, description="Event filters.")
    attributes: TelemetryFilterAttributes | None = Field(default=None, description="Attribute filters.")
    sampling: TelemetrySampling | None = Field(default=None, description="Sampling.")


class TelemetrySettings(Section):
    """Telemetry and observability (section `telemetry`, the Hub's telemetryConfig)."""

    hub_defaults: ClassVar[dict[str, Any]] = {
        "enabled": True,
        "cloud": {
            "enabled": True,
            "protocol": "grpc",
            "tls": {"enabled": True, "insecure_skip_verify": False},
            "batch": {"max_size": 512, "timeout": "5s"},
        },
        "hub": {"enabled": True, "report_interval": "30s"},
        "local": {"enabled": False, "console": False},
        "filter": {"enabled": True, "respect_debug_mode": True, "sampling": {"default": 1.0}},
    }

    enabled: StrictBool | None = Field(default=None, description="Enable telemetry collection.")
    cloud: TelemetryCloud | None = Field(default=None, description="Export to an OpenTelemetry collector.")
    hub: TelemetryHub | None = Field(default=None, description="Reporting to the Hub.")
    local: TelemetryLocal | None = Field(default=None, description="Local output.")
    filter: TelemetryFilter | None = Field(default=None, description="Filters and sampling.")
    resource: StrMap | None = Field(
        default=None, description="Resource attributes added to every event (e.g. service.name)."
    )


class AutoExposePortsSettings(Section):
    """Hub-wide default for exposing agent container ports (section `auto_expose_ports`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    enabled: StrictBool | None = Field(
        default=None,
        description="Expose ports in agent containers when no project or agent setting decides." + NEWER,
    )


class QuotaSettings(Section):
    """Quota enforcement (section `quotas`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {"enforce_broker_quotas": True}

    enforce_broker_quotas: StrictBool | None = Field(
        default=None,
        description="Enforce the per-broker agent cap (max_agents_per_broker) on create; when false, creates "
        "beyond the cap succeed but usage is still counted. The Hub's default: true." + NEWER,
    )


class AgentSecretsSettings(Section):
    """Policy for secrets written by agents (section `agent_secrets`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {"user_scope_only": False}

    user_scope_only: StrictBool | None = Field(
        default=None,
        description="Agents may only write user (profile) scope secrets; agent writes at project scope, "
        "including harness auth capture, are refused. The Hub's default: false." + NEWER,
    )


class ResourceQuantities(Section):
    """CPU and memory quantities (Kubernetes notation)."""

    model_config = ConfigDict(extra="allow")

    cpu: StrictStr | None = Field(default=None, description="CPU, e.g. 500m.")
    memory: StrictStr | None = Field(default=None, description="Memory, e.g. 1Gi.")


class ResourceSpec(Section):
    """Resource requests and limits of an agent."""

    model_config = ConfigDict(extra="allow")

    requests: ResourceQuantities | None = Field(default=None, description="Requests.")
    limits: ResourceQuantities | None = Field(default=None, description="Limits.")
    disk: StrictStr | None = Field(default=None, description="Disk size, e.g. 10Gi.")


class AgentDefaultsSettings(Section):
    """Defaults for new agents (section `agent_defaults`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    default_template: StrictStr | None = Field(default=None, description="Default template.")
    default_harness_config: StrictStr | None = Field(
        default=None, description="Default harness-config name, the last resort of resolution."
    )
    default_max_turns: GoInt | None = Field(default=None, ge=1, description="Default max turns per agent.")
    default_max_model_calls: GoInt | None = Field(
        default=None, ge=1, description="Default max model calls per agent."
    )
    default_max_duration: Duration | None = Field(
        default=None, description="Default max run time per agent (Go duration, e.g. 2h)."
    )
    default_resources: ResourceSpec | None = Field(
        default=None, description="Default resource requests and limits."
    )
    default_model: StrictStr | None = Field(
        default=None,
        description="Default model alias or ID for new agents (e.g. small, large)." + NEWER,
    )
    default_thinking_level: GoInt | None = Field(
        default=None,
        description="Default thinking level for new agents (newest Hubs: 1-100; the Hub that first had it takes "
        "any integer)." + NEWER,
    )
    default_max_agent_role: AgentRole | None = Field(
        default=None,
        description="Refused (operator rule not-applied): the Hub never applies it from a table row; set it per "
        "project in the Hub.",
    )
    default_agent_role: AgentRole | None = Field(
        default=None,
        description="Refused (operator rule not-applied): the Hub never applies it from a table row; set it on "
        "the agent create request or the project.",
    )
    default_runtime_broker: StrictStr | None = Field(
        default=None, description="Default runtime broker for new agents." + NEWER
    )
    default_timezone: StrictStr | None = Field(
        default=None,
        description="IANA timezone (e.g. America/Los_Angeles) set as TZ in agent containers that have none."
        + NEWER,
    )
    default_gcp_identity_mode: Literal["", "block", "passthrough", "assign"] | None = Field(
        default=None,
        description="Fallback GCP metadata mode for new agents when neither the request nor the project "
        "names one." + NEWER,
    )
    default_gcp_identity_service_account_id: StrictStr | None = Field(
        default=None, description="Service account used when default_gcp_identity_mode is assign." + NEWER
    )


class EndpointsSettings(Section):
    """Where the Hub and its images are (section `endpoints`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    public_url: HttpURL | None = Field(
        default=None,
        description="Public URL of the Hub, passed to agents (http:// or https://; the Hub's schema says "
        "format uri).",
    )
    image_registry: StrictStr | None = Field(
        default=None, description="Registry prefix replacing the registry of scion-* images."
    )
    hub_name: StrictStr | None = Field(
        default=None,
        pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="Display name of the Hub, shared by all its nodes (default: the host name)." + NEWER,
    )
    monitoring_dashboard_url: DashboardURL | None = Field(
        default=None,
        description="Link to an external monitoring dashboard on the Hub's Health page: an absolute http(s) URL "
        "with a host and no user info, at most 2048 characters (empty: none)." + NEWER,
    )


class GitHubAppSettings(Section):
    """The GitHub App (section `github_app`). The private key and webhook secret stay in the secret backend."""

    hub_defaults: ClassVar[dict[str, Any]] = {"webhooks_enabled": False}

    app_id: GoInt | None = Field(default=None, description="GitHub App ID.")
    api_base_url: StrictStr | None = Field(default=None, description="GitHub API base URL.")
    webhooks_enabled: StrictBool | None = Field(default=None, description="Accept GitHub webhooks.")
    installation_url: StrictStr | None = Field(default=None, description="Installation URL.")
    private_key_path: StrictStr | None = Field(
        default=None,
        description="Path of the private key file inside the Hub container (the key itself is a secret).",
    )


class NotificationChannel(Section):
    """One notification channel."""

    type: StrictStr = Field(description="Channel type, e.g. slack or webhook.")
    params: StrMap | None = Field(
        default=None, description="Channel parameters. Webhook URLs with tokens are secrets: prefer a path."
    )
    filter_types: list[StrictStr] | None = Field(default=None, description="Only these notification types.")
    filter_urgent_only: StrictBool | None = Field(default=None, description="Only urgent notifications.")


class NotificationsSettings(Section):
    """Notification channels (section `notifications`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {"notification_channels": []}

    notification_channels: list[NotificationChannel] | None = Field(
        default=None, description="Channels notified of Hub events."
    )


class ProjectDefaultsSettings(Section):
    """Defaults for new projects (section `project_defaults`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {"default_scratchpad": True}

    default_scratchpad: StrictBool | None = Field(
        default=None,
        description="Give new projects the default scratchpad shared directory (the Hub's default: true)."
        + NEWER,
    )


class TrustedIssuer(Section):
    """A token issuer this Hub trusts."""

    issuer_url: StrictStr = Field(min_length=1, description="Issuer URL (the iss claim).")
    jwks_url: StrictStr | None = Field(default=None, description="JWKS URL; default: discovered.")
    expected_audience: StrictStr | None = Field(default=None, description="Required aud claim.")
    allowed_projects: list[StrictStr] | None = Field(default=None, description="Projects it may act on.")
    allowed_root_users: list[StrictStr] | None = Field(default=None, description="Root users it may assert.")
    default_scopes: list[StrictStr] | None = Field(default=None, description="Scopes granted by default.")
    issuer_type: Literal["", "hub", "service_account", "user"] | None = Field(
        default=None, description="Claims extraction mode; empty means hub."
    )
    default_role: StrictStr | None = Field(default=None, description="Role granted by default.")
    allowed_emails: list[StrictStr] | None = Field(default=None, description="Emails it may assert.")
    allowed_gcp_projects: list[StrictStr] | None = Field(default=None, description="GCP projects allowed.")
    allowed_domains: list[StrictStr] | None = Field(default=None, description="Email domains allowed.")


class FederationSettings(Section):
    """Hub-to-hub federation authentication (section `federation`)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    enabled: StrictBool | None = Field(default=None, description="Accept federated tokens." + NEWER)
    trusted_issuers: list[TrustedIssuer] | None = Field(
        default=None, description="Issuers whose tokens are accepted." + NEWER
    )
    algorithms: list[Literal["RS256", "ES256"]] | None = Field(
        default=None, description="Accepted signing algorithms." + NEWER
    )
    refresh_interval: StrictStr | None = Field(
        default=None,
        pattern=FEDERATION_DURATION,
        description="JWKS refresh interval (Go duration, e.g. 1h; empty means the default). A string: the "
        "section document is decoded strictly, so an unquoted 0 is refused." + NEWER,
    )
    debounce_interval: StrictStr | None = Field(
        default=None,
        pattern=FEDERATION_DURATION,
        description="JWKS refresh debounce (Go duration, e.g. 30s; empty means the default)." + NEWER,
    )


class VolumeMount(Section):
    """A volume mounted into agent containers."""

    source: StrictStr | None = Field(default=None, description="Source path (local) or object path.")
    target: StrictStr = Field(min_length=1, description="Mount path inside the container.")
    read_only: StrictBool | None = Field(default=None, description="Mount read-only (default false).")
    type: Literal["local", "gcs"] | None = Field(default=None, description="local (default) or gcs.")
    bucket: StrictStr | None = Field(default=None, description="GCS bucket (type gcs).")
    prefix: StrictStr | None = Field(default=None, description="Object prefix inside the bucket.")
    mode: StrictStr | None = Field(default=None, description="Mount mode.")


class RequiredSecret(Section):
    """A secret agents need; only its name and projection, never its value."""

    key: StrictStr = Field(min_length=1, description="Secret key name.")
    description: StrictStr | None = Field(default=None, description="Human-readable description.")
    type: Literal["environment", "variable", "file"] | None = Field(
        default=None, description="Projection type (default environment)."
    )
    target: StrictStr | None = Field(default=None, description="Projection target (default: the key).")
    alternative_env_keys: list[StrictStr] | None = Field(
        default=None, description="Env var names that satisfy this requirement instead."
    )


class CloudRunRuntime(Section):
    """Cloud Run settings (runtime type cloudrun)."""

    project_id: StrictStr | None = Field(default=None, description="GCP project ID.")
    location: StrictStr | None = Field(default=None, description="Region.")
    service_account: StrictStr | None = Field(default=None, description="Service account of the agents.")
    network: StrictStr | None = Field(default=None, description="VPC network.")
    subnetwork: StrictStr | None = Field(default=None, description="VPC subnetwork.")
    nfs_server: StrictStr | None = Field(default=None, description="NFS server for workspaces.")
    nfs_export: StrictStr | None = Field(default=None, description="NFS export path.")


class CloudRunInstancesRuntime(Section):
    """Cloud Run Instances settings (runtime type cloudrun-instances, one instance per agent)."""

    project_id: StrictStr | None = Field(default=None, description="GCP project ID.")
    region: StrictStr | None = Field(default=None, description="GCP region, e.g. us-central1.")


class CloudRunSandboxRuntime(Section):
    """Cloud Run Sandbox settings (runtime type cloudrun-sandbox)."""

    sandbox_bin: StrictStr | None = Field(default=None, description="Path of the sandbox CLI binary.")


class SubstrateRuntime(Section):
    """Substrate settings (runtime type substrate)."""

    api_endpoint: StrictStr | None = Field(default=None, description="ateapi Control gRPC endpoint.")
    router_endpoint: StrictStr | None = Field(default=None, description="atenet-router inbound endpoint.")
    token_audience: StrictStr | None = Field(default=None, description="TokenRequest audience for ateapi.")
    ca_file: StrictStr | None = Field(default=None, description="PEM CA bundle verifying the ateapi dial.")
    cluster_trust_bundle: StrictStr | None = Field(
        default=None, description="ClusterTrustBundle verifying the ateapi dial (wins over ca_file)."
    )
    sandbox_class: Literal["gvisor", "microvm"] | None = Field(
        default=None, description="Sandbox class (default gvisor)."
    )
    sandbox_config_name: StrictStr | None = Field(
        default=None, description="SandboxConfig used by templates."
    )
    worker_selector: StrMap | None = Field(default=None, description="matchLabels of the workerSelector.")
    snapshot_storage: StrictStr | None = Field(default=None, description="Object-storage URI for snapshots.")
    egress_allow: list[StrictStr] | None = Field(
        default=None, description="Extra public host names allowed through the egress policy."
    )
    egress_trust_bundle: Literal["", "egress-mitm.ate.dev"] | None = Field(
        default=None, description="Trust bundle of the egress gateway (empty: off)."
    )
    template_ready_timeout: Duration | None = Field(
        default=None, description="How long to wait for a new template's snapshot (default 10m)."
    )


class StorageOverrides(Section):
    """Storage and scheduling fields shared by runtime entries and profiles."""

    shared_dir_storage_class: StrictStr | None = Field(
        default=None, description="Kubernetes only: storage class of shared-dir PVCs (ReadWriteMany)."
    )
    shared_dir_size: StrictStr | None = Field(
        default=None, description="Kubernetes only: size of each shared-dir PVC (e.g. 10Gi)."
    )
    safe_to_evict: StrictBool | None = Field(
        default=None, description='Kubernetes only: false adds the safe-to-evict: "false" annotation.'
    )
    shared_dir_storage_backend: StorageBackend | None = Field(
        default=None, description="Shared-dir storage backend: local or nfs (empty: the server's)."
    )
    shared_dir_storage_backends: (
        dict[Annotated[str, Field(pattern=SHARED_DIR_NAME)], Literal["local", "nfs"]] | None
    ) = Field(default=None, description="Shared-dir storage backend per shared dir name.")
    home_storage_backend: StorageBackend | None = Field(
        default=None, description="Kubernetes only: agent home storage backend."
    )
    home_storage_leaf: HomeLeaf | None = Field(
        default=None, description="Kubernetes only: how the home is created on the export (pod or broker)."
    )
    kubernetes_service_account_mappings: (
        dict[
            Annotated[str, Field(pattern=GSA_EMAIL)],
            Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253, strict=True)],
        ]
        | None
    ) = Field(
        default=None,
        description="GCP service account email -> Kubernetes ServiceAccount name bound to it by Workload "
        "Identity (GCP identity mode assign).",
    )


class RuntimeEntry(StorageOverrides):
    """One named container runtime."""

    type: (
        Literal[
            "docker",
            "podman",
            "container",
            "kubernetes",
            "cloudrun",
            "cloudrun-instances",
            "cloudrun-sandbox",
            "substrate",
        ]
        | None
    ) = Field(default=None, description="Runtime type (default: the entry's name).")
    host: StrictStr | None = Field(default=None, description="Runtime host (e.g. a Docker socket URL).")
    context: StrictStr | None = Field(default=None, description="Kubernetes context.")
    namespace: StrictStr | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL_OR_EMPTY,
        description="Kubernetes namespace of the agents (DNS-1123 label; empty: the runtime's default).",
    )
    env: StrMap | None = Field(default=None, description="Environment of agents using this runtime.")
    sync: StrictStr | None = Field(default=None, description="Workspace sync mode.")
    gke: StrictBool | None = Field(default=None, description="Enable GKE features (e.g. Workload Identity).")
    list_all_namespaces: StrictBool | None = Field(
        default=None, description="Kubernetes only: list agents across all namespaces."
    )
    priority_class_name: StrictStr | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_OR_EMPTY,
        description="Kubernetes only: PriorityClass of agent pods (must exist; empty: unset).",
    )
    cloudrun: CloudRunRuntime | None = Field(default=None, description="Cloud Run settings.")
    cloudrun_instances: CloudRunInstancesRuntime | None = Field(
        default=None, description="Cloud Run Instances settings."
    )
    cloudrun_sandbox: CloudRunSandboxRuntime | None = Field(
        default=None, description="Cloud Run Sandbox settings."
    )
    substrate: SubstrateRuntime | None = Field(default=None, description="Substrate settings.")


class HarnessOverride(Section):
    """Per-harness-config overrides inside a profile."""

    image: StrictStr | None = Field(default=None, description="Container image.")
    image_pull_policy: PullPolicy | None = Field(default=None, description="Kubernetes image pull policy.")
    user: StrictStr | None = Field(default=None, description="Unix user inside the container.")
    env: StrMap | None = Field(default=None, description="Environment.")
    volumes: list[VolumeMount] | None = Field(default=None, description="Volumes.")
    resources: ResourceSpec | None = Field(default=None, description="Resource requests and limits.")
    auth_selected_type: AuthType | None = Field(default=None, description="Authentication mechanism.")


class ProfileEntry(StorageOverrides):
    """One named environment profile."""

    runtime: StrictStr | None = Field(default=None, description="Name of the runtime (a key of runtimes).")
    default_template: StrictStr | None = Field(default=None, description="Default template.")
    default_harness_config: StrictStr | None = Field(default=None, description="Default harness config.")
    image_registry: StrictStr | None = Field(default=None, description="Registry prefix for this profile.")
    env: StrMap | None = Field(default=None, description="Environment of agents under this profile.")
    volumes: list[VolumeMount] | None = Field(default=None, description="Volumes.")
    resources: ResourceSpec | None = Field(default=None, description="Resource requests and limits.")
    harness_overrides: dict[str, HarnessOverride] | None = Field(
        default=None, description="Overrides by harness-config name."
    )
    secrets: list[RequiredSecret] | None = Field(default=None, description="Secrets agents need.")
    clone_depth: GoInt | None = Field(
        default=None, ge=0, description="Git clone depth of agent workspaces (0: full history)." + NEWER
    )


class CapabilityField(Section):
    """Whether a harness supports a capability."""

    support: Literal["yes", "no", "partial"] = Field(description="yes, no or partial.")
    reason: StrictStr | None = Field(default=None, description="Why.")


class CapabilityLimits(Section):
    """Limit capabilities."""

    max_turns: CapabilityField | None = Field(default=None, description="max_turns.")
    max_model_calls: CapabilityField | None = Field(default=None, description="max_model_calls.")
    max_duration: CapabilityField | None = Field(default=None, description="max_duration.")


class CapabilityTelemetry(Section):
    """Telemetry capabilities."""

    enabled: CapabilityField | None = Field(default=None, description="Telemetry.")
    native_emitter: CapabilityField | None = Field(default=None, description="Native emitter.")


class CapabilityPrompts(Section):
    """Prompt capabilities."""

    system_prompt: CapabilityField | None = Field(default=None, description="System prompt.")
    agent_instructions: CapabilityField | None = Field(default=None, description="Agent instructions.")


class CapabilityAuth(Section):
    """Authentication capabilities."""

    api_key: CapabilityField | None = Field(default=None, description="api-key.")
    auth_file: CapabilityField | None = Field(default=None, description="auth-file.")
    oauth_token: CapabilityField | None = Field(default=None, description="oauth-token.")
    vertex_ai: CapabilityField | None = Field(default=None, description="vertex-ai.")


class CapabilityMCP(Section):
    """MCP capabilities."""

    stdio: CapabilityField | None = Field(default=None, description="stdio transport.")
    sse: CapabilityField | None = Field(default=None, description="sse transport.")
    streamable_http: CapabilityField | None = Field(default=None, description="streamable-http transport.")
    project_scope: CapabilityField | None = Field(default=None, description="Project-scope servers.")


class HarnessCapabilities(Section):
    """Capabilities a harness config advertises."""

    harness: StrictStr | None = Field(default=None, description="Harness.")
    limits: CapabilityLimits | None = Field(default=None, description="Limits.")
    telemetry: CapabilityTelemetry | None = Field(default=None, description="Telemetry.")
    prompts: CapabilityPrompts | None = Field(default=None, description="Prompts.")
    auth: CapabilityAuth | None = Field(default=None, description="Authentication.")
    mcp: CapabilityMCP | None = Field(default=None, description="MCP.")
    resume: CapabilityField | None = Field(default=None, description="Resume.")


class HarnessProvisioner(Section):
    """Provisioning implementation metadata."""

    type: StrictStr | None = Field(default=None, description="Provisioner type.")
    interface_version: GoInt | None = Field(default=None, ge=1, description="Interface version.")
    lib: Literal["vendored", "injected"] | None = Field(default=None, description="vendored or injected.")
    command: list[StrictStr] | None = Field(default=None, description="Command.")
    timeout: StrictStr | None = Field(default=None, description="Timeout (Go duration).")
    lifecycle_events: list[StrictStr] | None = Field(default=None, description="Lifecycle events handled.")
    required_image_tools: list[StrictStr] | None = Field(default=None, description="Tools the image needs.")


class HarnessCommand(Section):
    """Declarative command construction."""

    base: list[StrictStr] | None = Field(default=None, description="Base command.")
    resume_flag: StrictStr | None = Field(default=None, description="Resume flag.")
    task_flag: StrictStr | None = Field(default=None, description="Task flag.")
    task_position: Literal["after_base_args", "before_base_args", "positional"] | None = Field(
        default=None, description="Where the task goes."
    )
    system_prompt_flag: StrictStr | None = Field(default=None, description="System prompt flag.")


class HarnessAuthEnvRequirement(Section):
    """Env vars of which one must be set."""

    any_of: list[StrictStr] | None = Field(default=None, min_length=1, description="Env var names.")


class HarnessAuthFileRequirement(Section):
    """A file an auth type needs."""

    name: StrictStr | None = Field(default=None, description="Name.")
    type: StrictStr | None = Field(default=None, description="Type.")
    description: StrictStr | None = Field(default=None, description="Description.")
    target_suffix: StrictStr | None = Field(default=None, description="Target suffix.")
    alternative_env_keys: list[StrictStr] | None = Field(default=None, description="Alternative env vars.")
    skipped_when_gcp_service_account_assigned: StrictBool | None = Field(
        default=None, description="Not needed when a GCP service account is assigned."
    )
    required: StrictBool | None = Field(default=None, description="Required.")
    field: StrictStr | None = Field(default=None, description="Field.")


class HarnessAuthType(Section):
    """Requirements of one auth type."""

    required_env: list[HarnessAuthEnvRequirement] | None = Field(default=None, description="Env vars.")
    required_files: list[HarnessAuthFileRequirement] | None = Field(default=None, description="Files.")


AutodetectType = Literal["api-key", "oauth-token", "auth-file", "vertex-ai"]


class HarnessAuthAutodetect(Section):
    """How the auth type is detected."""

    env: dict[str, AutodetectType] | None = Field(default=None, description="Env var -> auth type.")
    files: dict[str, AutodetectType] | None = Field(default=None, description="File -> auth type.")


class HarnessAuthMetadata(Section):
    """Auth preflight metadata."""

    default_type: AutodetectType | None = Field(default=None, description="Default auth type.")
    types: dict[str, HarnessAuthType] | None = Field(default=None, description="Requirements by auth type.")
    autodetect: HarnessAuthAutodetect | None = Field(default=None, description="Auto-detection.")


class HarnessMCPMapping(Section):
    """Mapping of universal MCP servers into the harness's native config."""

    global_config_file: StrictStr | None = Field(default=None, description="Global-scope config file.")
    global_config_path: StrictStr | None = Field(default=None, description="JSON path of the server map.")
    project_config_file: StrictStr | None = Field(default=None, description="Project-scope config file.")
    project_config_path: StrictStr | None = Field(default=None, description="JSON path for project scope.")
    transport_field: StrictStr | None = Field(default=None, description="Transport field name.")
    transport_map: StrMap | None = Field(default=None, description="Universal -> native transport names.")


class HarnessNoAuth(Section):
    """Behaviour without credentials."""

    behavior: Literal["drop-to-shell", "show-setup-instructions", "run-setup-wizard"] | None = Field(
        default=None, description="What the harness does."
    )
    message: StrictStr | None = Field(default=None, description="Message shown.")
    command: StrictStr | None = Field(default=None, description="Command run in drop-to-shell mode.")


class ThinkingLevel(Section):
    """One step of the thinking-level mapping."""

    max: GoInt = Field(ge=0, le=100, description="Inclusive upper bound of the level range.")
    value: StrictStr = Field(min_length=1, description="Harness-native value (e.g. low, high).")


class HarnessThinking(Section):
    """Mapping of the 0-100 thinking level to harness values."""

    levels: list[ThinkingLevel] = Field(
        min_length=1, description="Levels by ascending max; the last max is 100."
    )
    default: StrictStr | None = Field(default=None, min_length=1, description="Value when no level is set.")


class HarnessConfigEntry(Section):
    """One named harness configuration."""

    name: StrictStr | None = Field(default=None, description="Override name of the config.")
    harness: StrictStr = Field(description="Harness type this config applies to (required).")
    image: StrictStr | None = Field(default=None, description="Container image.")
    image_pull_policy: PullPolicy | None = Field(default=None, description="Kubernetes image pull policy.")
    user: StrictStr | None = Field(default=None, description="Unix user inside the container.")
    model: StrictStr | None = Field(default=None, description="Model identifier.")
    task_flag: StrictStr | None = Field(default=None, description="CLI flag passing the task.")
    args: list[StrictStr] | None = Field(default=None, description="Extra harness CLI arguments.")
    env: StrMap | None = Field(default=None, description="Environment.")
    volumes: list[VolumeMount] | None = Field(default=None, description="Volumes.")
    auth_selected_type: AuthType | None = Field(default=None, description="Authentication mechanism.")
    secrets: list[RequiredSecret] | None = Field(default=None, description="Secrets the config needs.")
    model_aliases: StrMap | None = Field(default=None, description="Model size alias -> model name.")
    provisioner: HarnessProvisioner | None = Field(default=None, description="Provisioning metadata.")
    config_dir: StrictStr | None = Field(
        default=None, description="Harness config directory (home-relative)."
    )
    skills_dir: StrictStr | None = Field(
        default=None, description="Harness skills directory (home-relative)."
    )
    interrupt_key: StrictStr | None = Field(default=None, description="Key interrupting the harness.")
    interrupt_sequence: list[StrictStr] | None = Field(
        default=None, description="Keys interrupting it, in order."
    )
    interrupt_signal: Literal["key", "sequence"] | None = Field(default=None, description="key or sequence.")
    instructions_file: StrictStr | None = Field(default=None, description="File receiving instructions.")
    system_prompt_file: StrictStr | None = Field(
        default=None, description="File receiving the system prompt."
    )
    system_prompt_mode: Literal["native", "prepend_to_instructions", "none"] | None = Field(
        default=None, description="How the harness consumes a system prompt."
    )
    command: HarnessCommand | None = Field(default=None, description="Command construction.")
    env_template: StrMap | None = Field(default=None, description="Environment defaults with templates.")
    capabilities: HarnessCapabilities | None = Field(default=None, description="Advertised capabilities.")
    auth: HarnessAuthMetadata | None = Field(default=None, description="Auth preflight metadata.")
    mcp: HarnessMCPMapping | None = Field(default=None, description="MCP mapping.")
    no_auth: HarnessNoAuth | None = Field(default=None, description="Behaviour without credentials.")
    thinking: HarnessThinking | None = Field(default=None, description="Thinking-level mapping.")
    dialect: dict[str, Any] | None = Field(default=None, description="Hook dialect metadata (free-form).")


class RuntimesSettings(MapSection):
    """Named container runtimes (section `runtimes`: one row holds the whole map)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    __pydantic_extra__: dict[str, RuntimeEntry] = Field(init=False)


class ProfilesSettings(MapSection):
    """Named environment profiles (section `profiles`: one row holds the whole map)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    __pydantic_extra__: dict[str, ProfileEntry] = Field(init=False)


class HarnessConfigsSettings(MapSection):
    """Named harness configurations (section `harness_configs`: one row holds the whole map)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    __pydantic_extra__: dict[str, HarnessConfigEntry] = Field(init=False)


class ExperimentsSettings(Section):
    """Experiment (feature flag) overrides (section `experiments`; database only)."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    overrides: dict[Annotated[str, Field(pattern=EXPERIMENT_NAME)], StrictBool] | None = Field(
        default=None,
        description="On/off by experiment name (e.g. hub.artifacts: true); names are dotted lower-case "
        "words. Experiments not listed keep their compiled default." + NEWER,
    )


# ArtifactsSettings.Resolve's defaults (DefaultArtifactsConfig).
ARTIFACTS_HUB_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "max_file_bytes": 32 << 20,
    "max_bundle_bytes": 256 << 20,
    "max_files": 200,
    "default_retention_days": 0,
    "link_default_ttl_hours": 168,
    "link_max_ttl_hours": 720,
}


class ArtifactsSettings(Section):
    """The artifact service (section `artifacts`; database only). The Hub's cross-field rules (file limit <=
    bundle limit, default link TTL <= max TTL, remote image limits) are checked by spec/hub_model.py."""

    hub_defaults: ClassVar[dict[str, Any]] = dict(ARTIFACTS_HUB_DEFAULTS)

    enabled: StrictBool | None = Field(default=None, description="Serve artifacts (default true)." + NEWER)
    max_file_bytes: GoInt | None = Field(
        default=None, ge=1, description="Largest file, in bytes (default 32 MiB)." + NEWER
    )
    max_bundle_bytes: GoInt | None = Field(
        default=None, ge=1, description="Largest bundle, in bytes (default 256 MiB)." + NEWER
    )
    max_files: GoInt | None = Field(
        default=None, ge=1, description="Most files in a bundle (default 200)." + NEWER
    )
    default_retention_days: GoInt | None = Field(
        default=None, ge=0, description="Days artifacts are kept; 0 (default) keeps them." + NEWER
    )
    link_default_ttl_hours: GoInt | None = Field(
        default=None, ge=1, description="Default lifetime of a share link, in hours (default 168)." + NEWER
    )
    link_max_ttl_hours: GoInt | None = Field(
        default=None, ge=1, description="Longest lifetime of a share link, in hours (default 720)." + NEWER
    )
    gc_grace_hours: GoInt | None = Field(
        default=None,
        description="Hours an unreferenced blob is kept before the sweep deletes it (default 168, "
        "at least 24)." + NEWER,
    )
    remote_images_enabled: StrictBool | None = Field(
        default=None,
        description="Fetch the remote images a markdown artifact references (default true)." + NEWER,
    )
    remote_image_max_count: GoInt | None = Field(
        default=None,
        description="Most remote images fetched per version (default 32, at most max_files)." + NEWER,
    )
    remote_image_max_bytes: GoInt | None = Field(
        default=None, description="Largest fetched image (default 5 MiB, at most max_file_bytes)." + NEWER
    )
    remote_image_fetch_timeout_s: GoInt | None = Field(
        default=None, description="Timeout of one image fetch, in seconds (default 10, 1 to 60)." + NEWER
    )
    remote_image_total_budget_s: GoInt | None = Field(
        default=None,
        description="Time for all image fetches of a version, in seconds (default 30, from the "
        "fetch timeout to 60)." + NEWER,
    )


class GCPIAMSettings(Section):
    """GCP service-account permission checks (section `gcp_iam`). A change that makes either key less strict is
    applied by the Hub only when its admin API made it (see docs/sections.md): write loosening changes there."""

    hub_defaults: ClassVar[dict[str, Any]] = {}

    gcp_iam_check_mode: Literal["off", "enforce"] | None = Field(
        default=None,
        description="Check the caller's permission on a service account it assigns: off or enforce." + NEWER,
    )
    gcp_iam_deny_unknown_policy: Literal["fail-open", "fail-closed"] | None = Field(
        default=None,
        description="When the permission cannot be determined: fail-open or fail-closed." + NEWER,
    )


class ProfilingSettings(Section):
    """In-app profiling switches (section `profiling`; database only, absent row = everything off)."""

    hub_defaults: ClassVar[dict[str, Any]] = {"readiness_marks": False}

    readiness_marks: StrictBool | None = Field(
        default=None, description="Turn on the web client's readiness marks (performance timings)." + NEWER
    )


# The first nine in the order of earlier releases of this operator (plans list sections in this order), then
# the sections newer Hubs added.
SECTION_MODELS: dict[str, type[Section]] = {
    "access": AccessSettings,
    "lifecycle": LifecycleSettings,
    "maintenance": MaintenanceSettings,
    "telemetry": TelemetrySettings,
    "agent_defaults": AgentDefaultsSettings,
    "endpoints": EndpointsSettings,
    "github_app": GitHubAppSettings,
    "notifications": NotificationsSettings,
    "project_defaults": ProjectDefaultsSettings,
    "messaging": MessagingSettings,
    "auto_expose_ports": AutoExposePortsSettings,
    "quotas": QuotaSettings,
    "agent_secrets": AgentSecretsSettings,
    "federation": FederationSettings,
    "runtimes": RuntimesSettings,
    "profiles": ProfilesSettings,
    "harness_configs": HarnessConfigsSettings,
    "experiments": ExperimentsSettings,
    "artifacts": ArtifactsSettings,
    "gcp_iam": GCPIAMSettings,
    "profiling": ProfilingSettings,
}
MAP_SECTIONS = frozenset(name for name, model in SECTION_MODELS.items() if issubclass(model, MapSection))


class SettingsBase(BaseModel):
    """Layer 1 settings by section. A listed section is owned whole by this HubSettings."""

    model_config = ConfigDict(extra="forbid")

    def listed(self) -> dict[str, Section]:
        """Sections the HubSettings lists (present, even if empty), in SECTION_MODELS order."""
        return {name: getattr(self, name) for name in SECTION_MODELS if getattr(self, name) is not None}


def _settings_model() -> type[SettingsBase]:
    """spec.settings: one optional field per section of SECTION_MODELS (so a new section is one line there)."""
    fields: dict[str, Any] = {
        name: (model | None, Field(default=None, description=model.__doc__))
        for name, model in SECTION_MODELS.items()
    }
    built: type[SettingsBase] = create_model(
        "Settings", __base__=SettingsBase, __module__=__name__, __doc__=SettingsBase.__doc__, **fields
    )
    return built


if TYPE_CHECKING:
    Settings = SettingsBase
else:
    Settings = _settings_model()

"""The Hub's Layer 1 sections as pydantic models, typed like the Hub's own section schemas.

The shipped Hub validates every section document against a JSON Schema with `additionalProperties: false`,
built in `pkg/config/opsettings/registry.go` from `pkg/config/schemas/settings-v1.schema.json`. These
models mirror those schemas field by field (unknown fields are rejected, as the Hub rejects them), so a
document the operator writes is one the Hub accepts.

Every field defaults to `None`, meaning "not set in the HubSettings": the catalog fills the Hub's default
when a complete section document is written (scion profile), and the proposal profile writes only the
fields that are set. The Hub's defaults live in `catalog.py`, not here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

# Go's time.ParseDuration grammar (what the Hub parses these strings with).
GO_DURATION = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URL = r"^https?://[^\s]+$"

Duration = Annotated[str, Field(pattern=GO_DURATION, max_length=64, strict=True)]
Email = Annotated[str, Field(pattern=EMAIL, max_length=254, strict=True)]
Fraction = Annotated[float, Field(ge=0, le=1)]
NEWER = (
    " Newer Hub versions only: an older Hub rejects a section document holding it, so the operator writes it "
    "only when it is set."
)


class Section(BaseModel):
    """Base of every section: unknown fields rejected, as the Hub's schemas do."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AccessSettings(Section):
    """Who may use the Hub (section `access`)."""

    admin_emails: list[Email] | None = Field(
        default=None,
        max_length=1000,
        description="Email addresses promoted to the admin role at sign-in. The Hub lowercases and trims them; "
        "so does the operator, so the stored value is what the Hub compares.",
    )
    user_access_mode: StrictStr | None = Field(
        default=None,
        pattern=r"^(open|invite_only|domain_restricted)$",
        description="How sign-in is granted: open (default), invite_only (an admin must invite), "
        "domain_restricted (only authorized_domains).",
    )
    authorized_domains: list[Annotated[str, Field(max_length=253, strict=True)]] | None = Field(
        default=None, max_length=1000, description="Email domains allowed to sign in."
    )
    default_user_role: StrictStr | None = Field(
        default=None,
        pattern=r"^(member|viewer)$",
        description="Role given to new users: member or viewer." + NEWER,
    )

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _normalize_emails(cls, value: object) -> object:
        if isinstance(value, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in value]
        return value


class LifecycleSettings(Section):
    """Agent lifecycle (section `lifecycle`)."""

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


class MaintenanceSettings(Section):
    """Maintenance mode (section `maintenance`; database only, no settings.yaml form)."""

    admin_mode: StrictBool | None = Field(
        default=None, description="Admin-only mode: only admins may use the Hub while true."
    )
    maintenance_message: StrictStr | None = Field(
        default=None, max_length=4096, description="Message shown to users while in maintenance."
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

    max_size: StrictInt | None = Field(default=None, ge=1, description="Maximum events per batch.")
    timeout: Duration | None = Field(default=None, description="Maximum wait before a batch is sent.")


class TelemetryCloud(Section):
    """Export to an OpenTelemetry collector."""

    enabled: StrictBool | None = Field(default=None, description="Export to the collector.")
    endpoint: StrictStr | None = Field(default=None, max_length=2048, description="Collector endpoint.")
    protocol: StrictStr | None = Field(default=None, pattern=r"^(grpc|http)$", description="grpc or http.")
    headers: dict[str, StrictStr] | None = Field(
        default=None,
        description="Headers sent to the collector. Do not put credentials here: they would be stored in "
        "clear in the settings table.",
    )
    tls: TelemetryTLS | None = Field(default=None, description="TLS settings.")
    batch: TelemetryBatch | None = Field(default=None, description="Batching settings.")


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

    enabled: StrictBool | None = Field(default=None, description="Enable telemetry collection.")
    cloud: TelemetryCloud | None = Field(default=None, description="Export to an OpenTelemetry collector.")
    hub: TelemetryHub | None = Field(default=None, description="Reporting to the Hub.")
    local: TelemetryLocal | None = Field(default=None, description="Local output.")
    filter: TelemetryFilter | None = Field(default=None, description="Filters and sampling.")
    resource: dict[str, StrictStr] | None = Field(
        default=None, description="Resource attributes added to every event (e.g. service.name)."
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

    default_template: StrictStr | None = Field(default=None, max_length=253, description="Default template.")
    default_harness_config: StrictStr | None = Field(
        default=None,
        max_length=253,
        description="Default harness-config name, the last resort of resolution.",
    )
    default_max_turns: StrictInt | None = Field(
        default=None, ge=1, description="Default max turns per agent."
    )
    default_max_model_calls: StrictInt | None = Field(
        default=None, ge=1, description="Default max model calls per agent."
    )
    default_max_duration: Duration | None = Field(
        default=None, description="Default max run time per agent (Go duration, e.g. 2h)."
    )
    default_resources: ResourceSpec | None = Field(
        default=None, description="Default resource requests and limits."
    )
    default_model: StrictStr | None = Field(
        default=None, max_length=253, description="Default model for new agents." + NEWER
    )
    default_thinking_level: StrictInt | None = Field(
        default=None, ge=1, le=100, description="Default thinking level for new agents (1-100)." + NEWER
    )


class EndpointsSettings(Section):
    """Where the Hub and its images are (section `endpoints`)."""

    public_url: StrictStr | None = Field(
        default=None, pattern=URL, max_length=2048, description="Public URL of the Hub, passed to agents."
    )
    image_registry: StrictStr | None = Field(
        default=None, max_length=512, description="Registry prefix replacing the registry of scion-* images."
    )
    hub_name: StrictStr | None = Field(
        default=None,
        pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="Display name of the Hub (default: the host name)." + NEWER,
    )


class GitHubAppSettings(Section):
    """The GitHub App (section `github_app`). The private key and webhook secret stay in the secret backend."""

    app_id: StrictInt | None = Field(default=None, ge=0, description="GitHub App ID.")
    api_base_url: StrictStr | None = Field(default=None, max_length=2048, description="GitHub API base URL.")
    webhooks_enabled: StrictBool | None = Field(default=None, description="Accept GitHub webhooks.")
    installation_url: StrictStr | None = Field(default=None, max_length=2048, description="Installation URL.")
    private_key_path: StrictStr | None = Field(
        default=None,
        max_length=4096,
        description="Path of the private key file inside the Hub container (the key itself is a secret).",
    )


class NotificationChannel(Section):
    """One notification channel."""

    type: StrictStr = Field(min_length=1, max_length=64, description="Channel type, e.g. slack or webhook.")
    params: dict[str, StrictStr] | None = Field(
        default=None, description="Channel parameters. Webhook URLs with tokens are secrets: prefer a path."
    )
    filter_types: list[StrictStr] | None = Field(default=None, description="Only these notification types.")
    filter_urgent_only: StrictBool | None = Field(default=None, description="Only urgent notifications.")


class NotificationsSettings(Section):
    """Notification channels (section `notifications`)."""

    notification_channels: list[NotificationChannel] | None = Field(
        default=None, max_length=100, description="Channels notified of Hub events."
    )


class ProjectDefaultsSettings(Section):
    """Defaults for new projects (section `project_defaults`; database only)."""

    default_scratchpad: StrictBool | None = Field(
        default=None, description="Give new projects a scratchpad (the Hub's default: true)." + NEWER
    )


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
}


class Settings(BaseModel):
    """Layer 1 settings by section. A listed section is owned whole by this HubSettings."""

    model_config = ConfigDict(extra="forbid")

    access: AccessSettings | None = Field(default=None, description=AccessSettings.__doc__)
    lifecycle: LifecycleSettings | None = Field(default=None, description=LifecycleSettings.__doc__)
    maintenance: MaintenanceSettings | None = Field(default=None, description=MaintenanceSettings.__doc__)
    telemetry: TelemetrySettings | None = Field(default=None, description=TelemetrySettings.__doc__)
    agent_defaults: AgentDefaultsSettings | None = Field(
        default=None, description=AgentDefaultsSettings.__doc__
    )
    endpoints: EndpointsSettings | None = Field(default=None, description=EndpointsSettings.__doc__)
    github_app: GitHubAppSettings | None = Field(default=None, description=GitHubAppSettings.__doc__)
    notifications: NotificationsSettings | None = Field(
        default=None, description=NotificationsSettings.__doc__
    )
    project_defaults: ProjectDefaultsSettings | None = Field(
        default=None, description=ProjectDefaultsSettings.__doc__
    )

    def listed(self) -> dict[str, Section]:
        """Sections the HubSettings lists (present, even if empty)."""
        return {name: getattr(self, name) for name in SECTION_MODELS if getattr(self, name) is not None}

"""The daemon's settings: one frozen value, built once from a TOML file and the environment.

Every key of the TOML file can be overridden by an environment variable named
``BEDROCK_GW_<SECTION>__<KEY>`` (``BEDROCK_GW_SERVER__PORT=8001``); the environment wins.
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "AuthSettings",
    "AwsSettings",
    "ChatSettings",
    "ConfigError",
    "CredentialSource",
    "EmbeddingsSettings",
    "KeyPolicy",
    "LimitsSettings",
    "LoggingSettings",
    "MetricsSettings",
    "ModelsSettings",
    "Network",
    "PassthroughSettings",
    "Price",
    "RolesAnywhereSettings",
    "ServerSettings",
    "Settings",
    "StaticCredentialSettings",
    "TlsSettings",
    "UsageSettings",
    "load_settings",
]

MiB = 1024 * 1024
PositiveSeconds = Annotated[float, Field(gt=0)]
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"
_ARN_PARTITION = r"^arn:aws(-[a-z]+)*:"
CredentialSource = Literal["default", "static", "roles-anywhere", "roles-anywhere-inprocess"]
"""Where AWS credentials come from; see the README, "AWS credentials and API keys"."""


def _network(value: Any) -> Any:
    # "192.168.1.10/24" means that LAN: host bits are allowed and dropped.
    return ipaddress.ip_network(value, strict=False) if isinstance(value, str) else value


Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_network)]
PRIVATE_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)
"""Loopback and the private LAN ranges (RFC 1918, RFC 4193 unique local, link-local IPv6)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    """Address to listen on; the default keeps the daemon private to this host."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    max_body_bytes: Annotated[int, Field(ge=1024)] = 20 * MiB
    """Largest request body accepted; larger bodies get 413."""
    shutdown_timeout: PositiveSeconds = 30.0
    """How long in-flight requests and streams may run on after SIGTERM."""
    stream_keepalive: Annotated[float, Field(ge=0)] = 15.0
    """Seconds of silence after which an SSE comment keeps proxies from timing out (0: off)."""
    allow_cidrs: tuple[Network, ...] = PRIVATE_NETWORKS
    """Client networks that may connect; a connection from elsewhere is closed unread."""
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    """Longest request line or header field accepted; a longer one gets 400."""
    idle_timeout: PositiveSeconds = 75.0
    """Seconds a keep-alive connection may sit idle between requests before it is closed."""
    max_streams: Annotated[int, Field(ge=0)] = 0
    """Streamed responses served at once at most (chat streams and Bedrock event streams);
    a request over the cap gets 429. 0: no cap."""


class TlsSettings(_Section):
    """HTTPS on the listening socket: both files, or neither (plain HTTP)."""

    certificate: Path | None = None
    """PEM file: the server certificate, then any intermediates."""
    private_key: Path | None = None
    """PEM file of the certificate's private key; keep it mode 0600."""

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsSettings:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("tls needs both certificate and private_key, or neither")
        return self

    @property
    def enabled(self) -> bool:
        return self.certificate is not None


class StaticCredentialSettings(_Section):
    """An IAM user's access key, for ``credentials = "static"``.

    Each value is taken from this section, else from the systemd credential named below
    (``$CREDENTIALS_DIRECTORY/<name>``, loaded with ``LoadCredential=``), else from the
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` variables.
    """

    access_key_id: str | None = Field(default=None, pattern=r"^\w+$")
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    access_key_id_credential: str = "aws-access-key-id"
    """Name of the systemd credential holding the access key id."""
    secret_access_key_credential: str = "aws-secret-access-key"  # noqa: S105 (a file name)
    """Name of the systemd credential holding the secret access key."""
    session_token_credential: str = "aws-session-token"  # noqa: S105 (a file name)
    """Name of the systemd credential holding a session token (rarely needed)."""


class RolesAnywhereSettings(_Section):
    """IAM Roles Anywhere: ``credentials = "roles-anywhere"`` or ``"roles-anywhere-inprocess"``.

    Both read the certificate, key and ARNs from here; only the first runs ``helper``.
    """

    helper: str = "aws_signing_helper"
    """Path to AWS's credential helper (or a name looked up in PATH); helper source only."""
    certificate: Path | None = None
    """PEM file of the X.509 end-entity certificate."""
    private_key: Path | None = None
    """PEM file of the certificate's private key (RSA or EC); keep it mode 0600."""
    certificate_chain: Path | None = None
    """Optional PEM file of intermediate CA certificates."""
    trust_anchor_arn: str | None = Field(
        default=None, pattern=_ARN_PARTITION + r"rolesanywhere:[a-z0-9-]+:\d{12}:trust-anchor/.+$"
    )
    profile_arn: str | None = Field(
        default=None, pattern=_ARN_PARTITION + r"rolesanywhere:[a-z0-9-]+:\d{12}:profile/.+$"
    )
    role_arn: str | None = Field(default=None, pattern=_ARN_PARTITION + r"iam::\d{12}:role/.+$")
    session_duration: Annotated[int, Field(ge=900, le=43200)] | None = None
    """Seconds the session lasts; by default the service's (one hour)."""
    region: str | None = Field(default=None, pattern=_REGION)
    """Region of the Roles Anywhere endpoint; by default the trust anchor's region."""
    endpoint: str | None = None
    """CreateSession URL; else AWS_ENDPOINT_URL_ROLESANYWHERE, AWS_ENDPOINT_URL, or AWS's."""
    timeout: PositiveSeconds = 30.0
    """Longest wait for one credential request; a hung helper is killed after it."""

    def missing(self) -> list[str]:
        """The keys both Roles Anywhere sources need that are not set."""
        required = ("certificate", "private_key", "trust_anchor_arn", "profile_arn", "role_arn")
        return [name for name in required if getattr(self, name) is None]

    def effective_region(self) -> str | None:
        if self.region is not None:
            return self.region
        if self.trust_anchor_arn is not None:
            return self.trust_anchor_arn.split(":")[3]
        return None


class AwsSettings(_Section):
    region: str = Field(default="us-east-1", pattern=_REGION)
    runtime_endpoint: str | None = None
    """Bedrock runtime URL; else AWS_ENDPOINT_URL_BEDROCK_RUNTIME, AWS_ENDPOINT_URL, or AWS's."""
    control_endpoint: str | None = None
    """Bedrock control-plane URL; else AWS_ENDPOINT_URL_BEDROCK, AWS_ENDPOINT_URL, or AWS's."""
    connect_timeout: PositiveSeconds = 10.0
    first_byte_timeout: PositiveSeconds = 300.0
    """Longest wait for Bedrock's response headers (a plain Converse answers only when done)."""
    stream_idle_timeout: PositiveSeconds = 60.0
    """Longest silence between two events of a stream."""
    max_connections: Annotated[int, Field(ge=1)] = 1024
    """Connections to Bedrock at most; each open stream holds one."""
    credentials: CredentialSource = "default"
    """Where AWS credentials come from: botocore's chain, static keys, or Roles Anywhere."""
    static: StaticCredentialSettings = StaticCredentialSettings()
    roles_anywhere: RolesAnywhereSettings = RolesAnywhereSettings()
    credentials_refresh_margin: PositiveSeconds = 900.0
    """Refresh expiring credentials this long before they expire."""

    @model_validator(mode="after")
    def _credential_source_complete(self) -> AwsSettings:
        if self.credentials.startswith("roles-anywhere"):
            missing = self.roles_anywhere.missing()
            if missing:
                raise ValueError(
                    f'credentials = "{self.credentials}" needs these keys in '
                    f"[aws.roles_anywhere]: {', '.join(missing)}"
                )
        if (
            self.credentials == "static"
            and self.static.secret_access_key is not None
            and not self.static.secret_access_key.get_secret_value()
        ):
            raise ValueError("aws.static.secret_access_key is empty")
        return self


class AuthSettings(_Section):
    api_keys: tuple[SecretStr, ...] = ()
    """Inline API keys accepted as ``Authorization: Bearer <key>``."""
    key_file: Path | None = None
    """File of keys, one per line: ``[name] <key>`` or ``[name] sha256:<hex digest>``."""
    ssm_parameter: str | None = Field(default=None, pattern=r"^(/[\w.\-/]+|[\w.\-]+|arn:.+)$")
    """SSM parameter whose value is the ARN of the Secrets Manager secret holding the keys."""
    ssm_region: str | None = Field(default=None, pattern=_REGION)
    """Region of the SSM parameter; by default its ARN's region, else ``aws.region``."""
    refresh_interval: PositiveSeconds = 300.0
    """How often the key file and the secret are read again (SIGHUP also does it)."""
    rotation_grace_period: Annotated[float, Field(ge=0)] = 3600.0
    """Seconds the previous secret version (AWSPREVIOUS) stays valid after a rotation."""
    aws_timeout: PositiveSeconds = 10.0
    """Longest wait for one SSM or Secrets Manager call."""


class ModelsSettings(_Section):
    allow: tuple[str, ...] = ("*",)
    """Glob patterns of model ids to offer; a model must match one."""
    deny: tuple[str, ...] = ()
    """Glob patterns of model ids to hide, applied after ``allow``."""
    refresh_interval: PositiveSeconds = 3600.0
    """How often the model list is fetched again in the background."""
    aliases: dict[str, str] = {}
    """Extra names for models, e.g. ``"gpt-4o" = "us.anthropic.claude-sonnet-4-..."``; listed in
    /v1/models and accepted everywhere a model id is."""


class ChatSettings(_Section):
    prompt_caching: bool = False
    """Add cache points after the system prompt and the last user turn (families that cache)."""
    reasoning_output: Literal["reasoning_content", "think_tags"] = "reasoning_content"
    """Where reasoning goes: its own field, or ``<think>`` tags in content for older clients."""
    reasoning_budget_low: Annotated[int, Field(ge=1024)] = 1024
    reasoning_budget_medium: Annotated[int, Field(ge=1024)] = 4096
    reasoning_budget_high: Annotated[int, Field(ge=1024)] = 16384
    """Claude thinking budgets for ``reasoning_effort`` low / medium / high."""
    max_image_bytes: Annotated[int, Field(ge=1024)] = 3_932_160
    """Largest image accepted (Bedrock's own limit is 3.75 MB)."""
    max_document_bytes: Annotated[int, Field(ge=1024)] = 4_718_592
    """Largest document accepted (Bedrock's own limit is 4.5 MB)."""
    fetch_remote_images: bool = False
    """Fetch ``http(s)`` image URLs for clients. Off: a LAN daemon must not fetch arbitrary URLs."""
    remote_image_timeout: PositiveSeconds = 10.0


class EmbeddingsSettings(_Section):
    max_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    """Upstream calls in flight at once for one request that embeds a list of inputs."""


class MetricsSettings(_Section):
    access: Literal["off", "lan", "token"] = "off"
    """Who may read ``GET /metrics``: nobody, clients in the private LAN ranges, or clients that
    send ``Authorization: Bearer <token>``."""
    token: SecretStr | None = None
    """The bearer token for ``access = "token"`` (not an API key: it grants metrics only)."""

    @model_validator(mode="after")
    def _token_given(self) -> MetricsSettings:
        if self.access == "token" and (self.token is None or not self.token.get_secret_value()):
            raise ValueError('metrics.access = "token" needs metrics.token')
        return self


class Price(_Section):
    """US dollars per million tokens."""

    input: Annotated[float, Field(ge=0)]
    output: Annotated[float, Field(ge=0)]
    cache_read: Annotated[float, Field(ge=0)] | None = None
    """Default: the input price."""
    cache_write: Annotated[float, Field(ge=0)] | None = None
    """Default: the input price."""


class UsageSettings(_Section):
    directory: Path | None = None
    """Where ``usage.sqlite3`` lives; default ``$STATE_DIRECTORY`` (systemd's StateDirectory=),
    else usage is kept in memory only and budgets start afresh on every restart."""
    flush_interval: PositiveSeconds = 5.0
    """Seconds between writes of the usage counters to disk (and once more at stop)."""
    prices: dict[str, Price] = {}
    """Model id glob -> price; the first pattern that matches the model (as the client named
    it, or its base model id) prices it. Models without a price cost 0."""


class KeyPolicy(_Section):
    """What one API key may do. Unset limits are unlimited."""

    models: tuple[str, ...] = ("*",)
    """Glob patterns of the model ids the key may use."""
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    daily_tokens: Annotated[int, Field(ge=0)] | None = None
    monthly_tokens: Annotated[int, Field(ge=0)] | None = None
    daily_cost: Annotated[float, Field(ge=0)] | None = None
    """US dollars per UTC day, from ``usage.prices``."""
    monthly_cost: Annotated[float, Field(ge=0)] | None = None
    """US dollars per UTC calendar month, from ``usage.prices``."""


class LimitsSettings(_Section):
    default: KeyPolicy = KeyPolicy()
    """The policy of every key that has no entry in ``keys``."""
    keys: dict[str, KeyPolicy] = {}
    """Policies by key name; a key's own entry replaces ``default`` whole."""
    reservation_tokens: Annotated[int, Field(ge=0)] = 1024
    """Output tokens a request is assumed to use while in flight when it sets no max_tokens."""

    def policy(self, key_name: str) -> KeyPolicy:
        return self.keys.get(key_name, self.default)


class PassthroughSettings(_Section):
    enabled: bool = True
    """Serve Bedrock's own runtime API under ``/bedrock/...`` to clients with a gateway key."""


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    log_bodies: bool = False
    """Debug switch: log request bodies (prompts!) as ``bedrock_gw.bodies``. Never in production."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="BEDROCK_GW_",
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    server: ServerSettings = ServerSettings()
    aws: AwsSettings = AwsSettings()
    auth: AuthSettings = AuthSettings()
    models: ModelsSettings = ModelsSettings()
    embeddings: EmbeddingsSettings = EmbeddingsSettings()
    chat: ChatSettings = ChatSettings()
    logging: LoggingSettings = LoggingSettings()
    tls: TlsSettings = TlsSettings()
    metrics: MetricsSettings = MetricsSettings()
    usage: UsageSettings = UsageSettings()
    limits: LimitsSettings = LimitsSettings()
    passthrough: PassthroughSettings = PassthroughSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values; the environment overrides it, key by key.
        return (env_settings, init_settings)


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` holds one line per fault."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def load_settings(path: Path | None) -> Settings:
    """Read ``path`` (or no file) plus the environment into a validated ``Settings``."""
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(source, [f"cannot read file: {exc.strerror or exc}"]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(err) for err in exc.errors()]) from exc


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "<top>"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    return f"{where}: {error['msg']}"

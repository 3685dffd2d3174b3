"""The daemon's settings: one frozen value, built once from a TOML file and the environment.

Every key of the TOML file can be overridden by an environment variable named
``BEDROCK_GW_<SECTION>__<KEY>`` (``BEDROCK_GW_SERVER__PORT=8001``); the environment wins.
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "AuthSettings",
    "AwsSettings",
    "ConfigError",
    "EmbeddingsSettings",
    "LoggingSettings",
    "ModelsSettings",
    "ServerSettings",
    "Settings",
    "load_settings",
]

MiB = 1024 * 1024
PositiveSeconds = Annotated[float, Field(gt=0)]


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


class AwsSettings(_Section):
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    runtime_endpoint: str | None = None
    """Bedrock runtime URL; else AWS_ENDPOINT_URL_BEDROCK_RUNTIME, AWS_ENDPOINT_URL, or AWS's."""
    control_endpoint: str | None = None
    """Bedrock control-plane URL; else AWS_ENDPOINT_URL_BEDROCK, AWS_ENDPOINT_URL, or AWS's."""
    connect_timeout: PositiveSeconds = 10.0
    first_byte_timeout: PositiveSeconds = 300.0
    """Longest wait for Bedrock's response headers (a plain Converse answers only when done)."""
    stream_idle_timeout: PositiveSeconds = 60.0
    """Longest silence between two events of a stream."""
    max_connections: Annotated[int, Field(ge=1)] = 256
    credentials_refresh_margin: PositiveSeconds = 900.0
    """Refresh expiring credentials this long before they expire."""


class AuthSettings(_Section):
    api_keys: tuple[SecretStr, ...] = ()
    """Inline API keys accepted as ``Authorization: Bearer <key>``."""


class ModelsSettings(_Section):
    allow: tuple[str, ...] = ("*",)
    """Glob patterns of model ids to offer; a model must match one."""
    deny: tuple[str, ...] = ()
    """Glob patterns of model ids to hide, applied after ``allow``."""
    refresh_interval: PositiveSeconds = 3600.0
    """How often the model list is fetched again in the background."""


class EmbeddingsSettings(_Section):
    max_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    """Upstream calls in flight at once for one request that embeds a list of inputs."""


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    log_bodies: bool = False
    """Debug switch: log request and response bodies (prompts!). Never on in production."""


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
    logging: LoggingSettings = LoggingSettings()

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

"""The one typed settings object, read once and validated at start.

Values come, highest priority first, from keyword arguments, ``MONITOR_*`` environment variables, and
a TOML config file (``MONITOR_CONFIG``, default ``$MONITOR_HOME/config.toml``) holding the same keys
without the prefix, e.g. ``database_url = "postgresql+psycopg://..."``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from monitor.exceptions import ConfigurationError

DEFAULT_HOME = Path.home() / ".monitor"


def _config_file() -> Path:
    """Where the TOML config file is looked for (the only place that reads the environment raw)."""
    explicit = os.environ.get("MONITOR_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("MONITOR_HOME", DEFAULT_HOME)) / "config.toml"


class Settings(BaseSettings):
    """Everything monitor can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore", frozen=True)

    home: Path = Field(DEFAULT_HOME, description="Folder for the embedded database and models.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in home (the embedded default)."
    )
    broker_url: str | None = Field(
        None, description="Celery broker (redis://...); unset: work runs in-process."
    )
    model_dir: Path | None = Field(None, description="Model directory used for classification.")
    backbone_weights: str = Field(
        "imagenet", description="'imagenet' (Keras cache/download) or a path to an .h5 file."
    )

    allow_private_image_hosts: bool = Field(
        False, description="Allow image/feed URLs on loopback or private networks (tests, LAN)."
    )
    allow_file_urls: bool = Field(
        True, description="Allow file:// image URLs (local folder and export sources)."
    )
    http_timeout_seconds: float = Field(10.0, gt=0)
    http_user_agent: str = "monitor/0.1 (+https://github.com/monitor/monitor)"
    max_image_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(50_000_000, gt=0)
    max_posts_per_run: int = Field(200, gt=0)

    image_bytes_retention_seconds: int = Field(
        0,
        ge=0,
        description="Keep an image's full bytes this long after it is classified (0: drop them "
        "at once; a newer model then fetches the image again).",
    )
    thumbnail_pixels: int = Field(
        160, ge=0, description="Side of the evidence thumbnail kept per image (0: none)."
    )

    classify_batch_size: int = Field(16, gt=0)
    fetch_batch_size: int = Field(16, gt=0)
    task_max_retries: int = Field(5, ge=0)
    broker_visibility_timeout_seconds: int = Field(3600, gt=0)
    requeue_after_seconds: int = Field(1800, gt=0)
    collect_lock_seconds: int = Field(900, gt=0)
    beat_interval_seconds: float = Field(60.0, gt=0)
    unhealthy_after_failures: int = Field(3, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str | None) -> str | None:
        if value in ("", None):
            return None
        if not value.startswith(("redis://", "rediss://", "amqp://", "memory://")):
            raise ValueError("must be a redis:// (or amqp://) URL")
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if self.database_url is None:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'monitor.db'}")
        return self

    @property
    def database(self) -> str:
        """The database URL, always set after validation."""
        assert self.database_url is not None  # set by the validator
        return self.database_url

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: work runs in the calling process."""
        return self.broker_url is None

    @property
    def default_model_dir(self) -> Path:
        """The model used when none is configured: the newest one trained into home."""
        return self.model_dir or self.home / "models" / "current"


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings, turning validation errors into one clear message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"MONITOR_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()

"""The one typed settings object, read once and validated at start.

Values come, highest priority first, from keyword arguments, ``MONITOR_*`` environment variables, and
a TOML config file (``MONITOR_CONFIG``, default ``$MONITOR_HOME/config.toml``) holding the same keys
without the prefix, e.g. ``database_url = "postgresql+psycopg://..."``. A ``MONITOR_*`` variable or
a config-file key that is not a setting stops the program, naming the closest known setting
(``MONITOR_CONFIG``, ``MONITOR_REQUIRE_SERVICES`` and ``MONITOR_TEST_*`` are not settings: the first
names the file, the others belong to the test suite).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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
    model_runtime: Literal["auto", "keras", "litert"] = Field(
        "auto",
        description="How a detector model runs: 'litert' its int8 file (CPU workers), 'keras' the "
        "float model, 'auto' the int8 file when the model has one and TensorFlow sees no GPU.",
    )
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
    decode_max_side: int = Field(
        1024,
        ge=224,
        description="Images are decoded at most this many pixels on their longer side for the "
        "model (its 4x4 grid of windows needs no more); JPEG decodes at that scale directly.",
    )
    classify_pixel_budget: int = Field(
        32_000_000,
        gt=0,
        description="Decoded pixels one classification step holds at once, however many images.",
    )

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
    broker_visibility_timeout_seconds: int = Field(
        300,
        gt=0,
        description="A task a worker took and never acknowledged (the worker was killed) is "
        "delivered again after this; it must exceed the longest task (a fetch batch takes at most "
        "fetch_batch_size x http_timeout_seconds) and the longest retry wait (120 s).",
    )
    requeue_after_seconds: int = Field(1800, gt=0)
    requeue_check_seconds: float = Field(
        60.0,
        gt=0,
        description="How often beat looks for lost work (a broker that restarted empty, images "
        "waiting longer than requeue_after_seconds).",
    )
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


RESERVED_ENVIRONMENT = frozenset({"MONITOR_CONFIG", "MONITOR_REQUIRE_SERVICES"})
"""``MONITOR_*`` variables that are not settings: the config file's path, and the test suite's."""
RESERVED_ENVIRONMENT_PREFIXES = ("MONITOR_TEST_",)
"""The test suite's own variables (where its PostgreSQL and Redis are)."""


def check_setting_names(
    environment: Mapping[str, str], config_keys: Iterable[str], *, config_file: Path | None = None
) -> None:
    """Refuse ``MONITOR_*`` variables and config-file keys that are not settings.

    A misspelt setting (``MONITOR_ALLOW_PRIVATE_URLS``) silently ignored leaves the program doing
    the opposite of what its operator believes; stopping with the closest known name is kinder.
    """
    known = sorted(Settings.model_fields)
    for name in sorted(environment):
        if not name.upper().startswith("MONITOR_") or _reserved(name.upper()):
            continue
        key = name[len("MONITOR_") :].lower()
        if key not in known:
            closest = _closest(key, known)
            raise ConfigurationError(
                f"unknown setting {name} in the environment; "
                f"the closest known one is MONITOR_{closest.upper()}"
            )
    for key in config_keys:
        if key not in known:
            raise ConfigurationError(
                f"unknown setting {key!r} in {config_file or 'the config file'}; "
                f"the closest known one is {_closest(key, known)!r}"
            )


def _reserved(name: str) -> bool:
    return name in RESERVED_ENVIRONMENT or name.startswith(RESERVED_ENVIRONMENT_PREFIXES)


def _closest(key: str, known: Sequence[str]) -> str:
    """The known setting most like ``key``: most leading words alike, then most words, then spelling.

    Words first, because settings are named by what they govern (``allow_private_urls`` means
    ``allow_private_image_hosts``, though ``allow_file_urls`` is spelt more alike).
    """
    words = key.lower().split("_")

    def likeness(candidate: str) -> tuple[int, int, float]:
        candidate_words = candidate.split("_")
        leading = 0
        for mine, theirs in zip(words, candidate_words, strict=False):
            if mine != theirs:
                break
            leading += 1
        shared = len(set(words) & set(candidate_words))
        return leading, shared, difflib.SequenceMatcher(None, key.lower(), candidate).ratio()

    return max(known, key=likeness)


def _config_file_keys(path: Path) -> list[str]:
    """The top-level keys of the TOML config file (none when there is no file)."""
    if not path.is_file():
        return []
    try:
        with path.open("rb") as handle:
            return list(tomllib.load(handle))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read the config file {path}: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings, turning validation errors into one clear message."""
    config_file = _config_file()
    check_setting_names(os.environ, _config_file_keys(config_file), config_file=config_file)
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

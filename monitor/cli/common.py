"""What every command shares: settings, services, the console, and parsing of flag values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from rich.console import Console

from monitor.exceptions import ConfigurationError

if TYPE_CHECKING:
    from monitor.config import Settings

console = Console()
error_console = Console(stderr=True)


@dataclass
class CliState:
    """Options of the top-level callback (``--debug``)."""

    debug: bool = False


state = CliState()


def settings() -> Settings:
    """The settings, read once; a ConfigurationError names the bad key."""
    from monitor.config import get_settings

    return get_settings()


def services() -> Any:
    """Pipeline services for the configured database, schema checked (SQLite is migrated in place)."""
    from monitor.pipeline import Services
    from monitor.storage.db import ensure_schema

    current = settings()
    ensure_schema(current.database, auto_upgrade=current.database.startswith("sqlite"))
    return Services.from_settings(current)


def checked_database() -> str:
    """The configured database's URL, schema checked, without the pipeline's imports."""
    from monitor.storage.db import ensure_schema

    current = settings()
    ensure_schema(current.database, auto_upgrade=current.database.startswith("sqlite"))
    return current.database


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``15m`` -> 900 seconds; units s, m, h, d."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ConfigurationError(
            f"invalid interval {text!r}: use a number and a unit, like 30s, 15m, 2h or 1d"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 10:
        raise ConfigurationError(f"interval {text!r} is too short: at least 10s")
    return seconds


def parse_day(text: str | None, *, flag: str) -> date | None:
    """An ISO date (``2026-11-01``) from a flag, or a clear error."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(f"{flag}: {text!r} is not a date like 2026-11-01") from exc


def parse_key_values(pairs: list[str]) -> dict[str, Any]:
    """``--option key=value`` pairs; values that look like JSON numbers/booleans stay typed as text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ConfigurationError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


def format_seconds(seconds: int | None) -> str:
    """900 -> ``15m``."""
    if not seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

"""Helpers every collector shares: dates, image URL hygiene, option checks, the date watermark.

Platforms disagree on date formats and on what an image URL is; collectors agree on what they hand
to the pipeline (UTC-aware datetimes, absolute http(s) or file:// URLs). Doing the conversions here
once keeps each platform module about its platform.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel

logger = logging.getLogger("monitor.collectors")

OptionsT = TypeVar("OptionsT", bound=BaseModel)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"})


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_datetime(value: Any) -> datetime | None:
    """A UTC datetime from ISO 8601, RFC 822 (RSS) or epoch seconds; None when unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return as_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def format_datetime(moment: datetime) -> str:
    """The cursor form of a datetime: ISO 8601 in UTC with microseconds, so it round-trips."""
    return as_utc(moment).isoformat(timespec="microseconds")


def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def web_image_urls(candidates: Iterable[str | None], *, post: str) -> tuple[str, ...]:
    """The http(s) image URLs among ``candidates``, deduplicated in order.

    Anything else (data:, javascript:, relative leftovers) is dropped with a warning naming the
    post, so a reader of the logs can tell why an image never showed up.
    """
    kept: list[str] = []
    for candidate in candidates:
        if not candidate:
            continue
        url = candidate.strip()
        if not is_web_url(url):
            logger.warning("dropped image URL %r of %s: not an http(s) URL", url[:200], post)
        elif url not in kept:
            kept.append(url)
    return tuple(kept)


def absolute_url(reference: str | None, base: str | None) -> str | None:
    """``reference`` resolved against ``base`` (when there is one); None for an empty reference."""
    if reference is None or not reference.strip():
        return None
    reference = reference.strip()
    return urljoin(base, reference) if base else reference


def has_image_extension(url: str) -> bool:
    """True when the URL's path ends like an image file (.jpg, .png...)."""
    path = urlsplit(url).path.lower()
    return any(path.endswith(extension) for extension in IMAGE_EXTENSIONS)


def check_http_url(value: str) -> str:
    """Validate an option that must be an absolute http(s) URL; returns it stripped."""
    text = value.strip()
    if not is_web_url(text):
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    return text


def check_base_url(value: str) -> str:
    """Validate an API base URL option; returns it without a trailing slash, ready to extend."""
    return check_http_url(value).rstrip("/")


def text_or_none(value: Any) -> str | None:
    """A stripped non-empty string, or None (for fields platforms leave empty or omit)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def mapping_at(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` when it is an object, else an empty one (platforms omit or null fields)."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def int_or_none(value: Any) -> int | None:
    """An integer count, or None when missing or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class Watermark:
    """The newest timestamp already reported, and the ids reported at exactly that timestamp.

    Timestamps tie (several posts in one second, files copied together); remembering which ids
    sat at the newest timestamp lets the next run take the tied ones it has not seen, and nothing
    older.
    """

    newest: datetime | None = None
    seen_at_newest: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_cursor(cls, cursor: Mapping[str, Any] | None) -> Watermark:
        """Read the watermark back from a cursor (an unreadable one starts from scratch)."""
        if not cursor or cursor.get("newest") is None:
            return cls()
        newest = parse_datetime(cursor.get("newest"))
        seen = cursor.get("seen_at_newest")
        if newest is None or not isinstance(seen, list):
            logger.warning("ignoring an unreadable cursor %r: collecting from scratch", cursor)
            return cls()
        return cls(newest, frozenset(str(item) for item in seen))

    def is_new(self, moment: datetime, item_id: str) -> bool:
        """True when an item at ``moment`` has not been reported yet."""
        if self.newest is None or moment > self.newest:
            return True
        return moment == self.newest and item_id not in self.seen_at_newest

    def is_older(self, moment: datetime) -> bool:
        """True when ``moment`` is before the watermark (newest-first listings can stop there)."""
        return self.newest is not None and moment < self.newest

    def advanced(self, reported: Iterable[tuple[datetime, str]]) -> Watermark:
        """The watermark after reporting ``reported`` (moment, id) pairs."""
        newest, seen = self.newest, set(self.seen_at_newest)
        for moment, item_id in reported:
            if newest is None or moment > newest:
                newest, seen = moment, {item_id}
            elif moment == newest:
                seen.add(item_id)
        return Watermark(newest, frozenset(seen))

    def to_cursor(self) -> dict[str, object] | None:
        """The JSON-serialisable cursor, or None when nothing was ever reported."""
        if self.newest is None:
            return None
        return {
            "newest": format_datetime(self.newest),
            "seen_at_newest": sorted(self.seen_at_newest),
        }


def expect_options(options: BaseModel, model: type[OptionsT]) -> OptionsT:
    """``options`` as the kind's own options model (the registry validated them with it)."""
    if not isinstance(options, model):
        raise TypeError(f"expected {model.__name__}, got {type(options).__name__}")
    return options

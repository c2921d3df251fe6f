"""The HTTP client collectors use: timeouts, a URL guard, patient retries and mapped errors.

Every platform a collector talks to can be slow, rate limit us, or fail for a moment. The requests
go through :class:`monitor.transport.HttpTransport`, the transport images use too (the URL guard on
every redirect hop, connections pinned to checked addresses, a total deadline, the size cap); this
client adds what collectors need on top: it honours ``Retry-After`` on HTTP 429, retries server
errors and broken connections with exponential backoff, and turns every failure into the exception
tree of :mod:`monitor.exceptions`::

    connection refused, reset, timeout, 5xx  ->  SourceUnavailableError (a deadline is not retried)
    429 still there after the retries        ->  RateLimitedError(retry_after_seconds=...)
    other 4xx                                ->  SourceHTTPError (a SourceError)
    URL refused by the guard                 ->  SourceURLRefusedError (a SourceError)
    body not JSON, or over the size cap      ->  MalformedSourceError

The session, the sleep function and the clock are injected so tests run against a local server
without waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links

from monitor.config import Settings
from monitor.exceptions import (
    MalformedSourceError,
    RateLimitedError,
    ResponseCutOffError,
    ResponseTooLargeError,
    SourceError,
    SourceHTTPError,
    SourceUnavailableError,
    SourceURLRefusedError,
    TransportConnectError,
    TransportError,
    TransportTimeoutError,
    URLNotAllowedError,
)
from monitor.net import AddressPolicy, Resolver, is_public_address, resolve_host
from monitor.transport import Exchange, HttpTransport

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HttpClient",
    "HttpResponse",
    "RetryPolicy",
    "SourceHTTPError",
    "SourceURLRefusedError",
    "parse_retry_after",
]

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""Feeds and API pages are small; anything bigger is a mistake or an attack, not a listing."""

DEFAULT_USER_AGENT = Settings.model_fields["http_user_agent"].default


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets and how long to wait between them."""

    max_attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    """A server asking us to wait longer than this gets a RateLimitedError at once instead."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("backoff times cannot be negative")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based): doubling, capped."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class HttpResponse:
    """A successful (2xx) response, read completely within the size cap."""

    url: str
    status_code: int
    headers: Mapping[str, str]
    """Case-insensitive, as HTTP header names are."""
    content: bytes = field(repr=False)

    @property
    def links(self) -> dict[str, str]:
        """The ``Link`` header as ``{rel: absolute url}`` (how Mastodon announces its pages)."""
        header = self.headers.get("Link")
        if not header:
            return {}
        links: dict[str, str] = {}
        for link in parse_header_links(header):
            target, rel = link.get("url"), link.get("rel")
            if target and rel:
                for name in rel.split():
                    links.setdefault(name, urljoin(self.url, target))
        return links

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of the Content-Type header, if the server sent one."""
        content_type = self.headers.get("Content-Type") or ""
        for parameter in content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'").lower()
        return None

    def json(self) -> Any:
        """The body parsed as JSON, or MalformedSourceError saying what the server sent instead."""
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            preview = self.content[:80].decode("utf-8", "replace")
            raise MalformedSourceError(
                f"{self.url} did not answer with JSON ({exc}); it began with {preview!r}"
            ) from exc


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (delay seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class _RetryableFailure(Exception):
    """Internal: an attempt failed in a way another attempt may fix."""

    def __init__(self, error: SourceUnavailableError, wait_seconds: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_seconds = wait_seconds


class HttpClient:
    """GET requests for collectors, with the guard, retries and error mapping described above."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout_seconds: float = 10.0,
        user_agent: str = DEFAULT_USER_AGENT,
        allow_private_hosts: bool = False,
        retry: RetryPolicy | None = None,
        max_redirects: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = resolve_host,
        address_allowed: AddressPolicy = is_public_address,
    ) -> None:
        self.transport = HttpTransport(
            session,
            timeout_seconds=timeout_seconds,
            allow_private_hosts=allow_private_hosts,
            max_redirects=max_redirects,
            resolver=resolver,
            address_allowed=address_allowed,
        )
        self.session = self.transport.session
        self.timeout_seconds = timeout_seconds
        self.user_agent = user_agent
        self.allow_private_hosts = allow_private_hosts
        self.retry = retry or RetryPolicy()
        self.max_redirects = max_redirects
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, *, session: requests.Session | None = None, **overrides: Any
    ) -> HttpClient:
        """A client configured from the settings (timeout, User-Agent, private hosts)."""
        options: dict[str, Any] = {
            "timeout_seconds": settings.http_timeout_seconds,
            "user_agent": settings.http_user_agent,
            "allow_private_hosts": settings.allow_private_image_hosts,
        }
        options.update(overrides)
        return cls(session, **options)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session if this client created it (an injected one belongs to the caller)."""
        self.transport.close()

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET a JSON document and return it parsed."""
        accept_json = _with_accept(headers, "application/json")
        return self.get(url, params=params, headers=accept_json).json()

    def get_bytes(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> bytes:
        """GET a body as raw bytes (feeds decode their own: they often lie about encodings)."""
        return self.get(url, params=params, headers=headers, max_bytes=max_bytes).content

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> HttpResponse:
        """GET ``url``, retrying transient failures; the response headers come back too."""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return self._attempt(url, params=params, headers=headers, max_bytes=max_bytes)
            except _RetryableFailure as failure:
                if attempt == self.retry.max_attempts:
                    raise failure.error from failure.__cause__
                self._sleep(self._wait_before_retry(failure, attempt))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _wait_before_retry(self, failure: _RetryableFailure, attempt: int) -> float:
        """The server's Retry-After when it gave one (unless too long), else our backoff."""
        wait = failure.wait_seconds
        if wait is None:
            return self.retry.backoff(attempt)
        if wait > self.retry.max_retry_after_seconds:
            raise failure.error from failure.__cause__
        return wait

    def _attempt(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        max_bytes: int,
    ) -> HttpResponse:
        """One attempt through the guarded transport, then the answer judged and read."""
        request_headers = {"User-Agent": self.user_agent, **(headers or {})}
        try:
            with self.transport.open(url, params=params, headers=request_headers) as exchange:
                self._judge(exchange)
                content = exchange.read(max_bytes)
                return HttpResponse(
                    url=exchange.url,
                    status_code=exchange.status_code,
                    headers=CaseInsensitiveDict(exchange.headers),
                    content=content,
                )
        except TransportError as exc:
            raise _source_error(url, exc, max_bytes) from exc

    def _judge(self, exchange: Exchange) -> None:
        """Raise the error a non-2xx final answer stands for."""
        status, url = exchange.status_code, exchange.url
        if status == 429:
            wait = parse_retry_after(exchange.headers.get("Retry-After"), now=self._clock())
            message = f"{url}: rate limited (HTTP 429)"
            if wait is not None:
                message += f"; the server asks to retry after {wait:g} seconds"
            raise _RetryableFailure(RateLimitedError(message, retry_after_seconds=wait), wait)
        if status >= 500:
            reason = exchange.reason or "server error"
            raise _RetryableFailure(SourceUnavailableError(f"{url}: HTTP {status} {reason}"))
        if status >= 300:
            reason = exchange.reason or "client error"
            raise SourceHTTPError(f"{url}: HTTP {status} {reason}", status_code=status, url=url)


def _source_error(url: str, exc: TransportError, max_bytes: int) -> Exception:
    """The collector's error for a transport failure (``_RetryableFailure`` when worth a retry).

    A read timeout is not retried: a server that stopped answering would hold the worker for the
    full timeout on every attempt, and the next scheduled run tries again anyway.
    """
    if isinstance(exc, URLNotAllowedError):
        return SourceURLRefusedError(f"refused to fetch {url[:200]}: {exc.reason}")
    if isinstance(exc, TransportConnectError | ResponseCutOffError):
        return _RetryableFailure(SourceUnavailableError(str(exc)))
    if isinstance(exc, TransportTimeoutError):
        return SourceUnavailableError(str(exc))
    if isinstance(exc, ResponseTooLargeError):
        return MalformedSourceError(f"{url}: response exceeds {max_bytes} bytes ({exc.reason})")
    return SourceError(str(exc))


def _with_accept(headers: Mapping[str, str] | None, accept: str) -> dict[str, str]:
    merged = {"Accept": accept}
    merged.update(headers or {})
    return merged

"""The HTTP client collectors use: timeouts, a URL guard, patient retries and mapped errors.

Every platform a collector talks to can be slow, rate limit us, or fail for a moment. This module is
the one place that knows ``requests``: it refuses URLs the configuration does not allow (also after
each redirect, so a public feed cannot bounce us onto a private host), honours ``Retry-After`` on
HTTP 429, retries server errors with exponential backoff, caps response sizes, and turns every
failure into the exception tree of :mod:`monitor.exceptions`::

    connection refused, reset, timeout, 5xx  ->  SourceUnavailableError
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
    ImageURLRefusedError,
    MalformedSourceError,
    RateLimitedError,
    SourceError,
    SourceHTTPError,
    SourceUnavailableError,
    SourceURLRefusedError,
)
from monitor.net import Resolver, check_url_allowed, resolve_host

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
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024


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
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.timeout_seconds = timeout_seconds
        self.user_agent = user_agent
        self.allow_private_hosts = allow_private_hosts
        self.retry = retry or RetryPolicy()
        self.max_redirects = max_redirects
        self._sleep = sleep
        self._clock = clock
        self._resolver = resolver

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
        if self._owns_session:
            self.session.close()

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
        """One attempt: follow redirects (each target checked), then read and judge the answer."""
        request_headers = {"User-Agent": self.user_agent, **(headers or {})}
        current_url, current_params = url, params
        for _ in range(self.max_redirects + 1):
            self._check_allowed(current_url)
            with self._send(current_url, current_params, request_headers) as response:
                location = response.headers.get("Location")
                if response.status_code in REDIRECT_STATUSES and location:
                    current_url, current_params = urljoin(response.url, location), None
                    continue
                return self._judge(response, max_bytes)
        raise SourceUnavailableError(f"{url}: more than {self.max_redirects} redirects")

    def _check_allowed(self, url: str) -> None:
        try:
            check_url_allowed(url, allow_private=self.allow_private_hosts, resolver=self._resolver)
        except ImageURLRefusedError as exc:
            raise SourceURLRefusedError(f"refused to fetch {url[:200]}: {exc}") from exc

    def _send(
        self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str]
    ) -> requests.Response:
        """Send the request; connection problems become retryable, a stalled server does not.

        A read timeout is not retried: a server that stopped answering would hold the worker for
        the full timeout on every attempt, and the next scheduled run tries again anyway.
        """
        try:
            return self.session.get(
                url,
                params=dict(params) if params else None,
                headers=dict(headers),
                timeout=self.timeout_seconds,
                allow_redirects=False,
                stream=True,
            )
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout):
                error = SourceUnavailableError(f"{url}: timed out connecting: {exc}")
            else:
                error = SourceUnavailableError(f"{url}: could not connect: {exc}")
            raise _RetryableFailure(error) from exc
        except requests.Timeout as exc:
            raise SourceUnavailableError(
                f"{url}: no answer within {self.timeout_seconds:g} seconds"
            ) from exc
        except requests.RequestException as exc:
            raise SourceError(f"{url}: the request could not be made: {exc}") from exc

    def _judge(self, response: requests.Response, max_bytes: int) -> HttpResponse:
        """Turn a final response into an HttpResponse or the matching error."""
        status, url = response.status_code, response.url
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
            message = f"{url}: rate limited (HTTP 429)"
            if wait is not None:
                message += f"; the server asks to retry after {wait:g} seconds"
            raise _RetryableFailure(RateLimitedError(message, retry_after_seconds=wait), wait)
        if status >= 500:
            reason = response.reason or "server error"
            raise _RetryableFailure(SourceUnavailableError(f"{url}: HTTP {status} {reason}"))
        if status >= 300:
            reason = response.reason or "client error"
            raise SourceHTTPError(f"{url}: HTTP {status} {reason}", status_code=status, url=url)
        content = self._read_body(response, max_bytes)
        return HttpResponse(
            url=url,
            status_code=status,
            headers=CaseInsensitiveDict(response.headers),
            content=content,
        )

    def _read_body(self, response: requests.Response, max_bytes: int) -> bytes:
        """Read the body, stopping as soon as it exceeds ``max_bytes``."""
        url = response.url
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise MalformedSourceError(f"{url}: response of {declared} bytes exceeds {max_bytes}")
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise MalformedSourceError(f"{url}: response exceeds {max_bytes} bytes")
                chunks.append(chunk)
        except requests.Timeout as exc:
            raise SourceUnavailableError(f"{url}: the server stopped sending: {exc}") from exc
        except requests.RequestException as exc:
            error = SourceUnavailableError(f"{url}: the response was cut off: {exc}")
            raise _RetryableFailure(error) from exc
        return b"".join(chunks)


def _with_accept(headers: Mapping[str, str] | None, accept: str) -> dict[str, str]:
    merged = {"Accept": accept}
    merged.update(headers or {})
    return merged

"""The one exception tree of monitor.

Library errors (requests, PIL, SQLAlchemy, XML parsers, TensorFlow) are translated at the boundary
where they happen (``raise X(...) from exc``) so callers deal with these types only::

    MonitorError
    ├── ConfigurationError          bad settings, bad flag values, unknown names
    │   ├── UnknownSourceError
    │   └── UnknownBrandError
    ├── SourceError                 a source could not be collected
    │   ├── SourceUnavailableError  transient: connection refused, timeout, HTTP 5xx/429 (retried)
    │   │   └── RateLimitedError    HTTP 429 with the server's Retry-After
    │   ├── SourceHTTPError         HTTP 4xx other than 429: retrying will not help
    │   ├── SourceURLRefusedError   not http(s), or a private host not allowed
    │   └── MalformedSourceError    the server answered, but not with a feed/listing we can read
    ├── TransportError              an HTTP exchange failed (callers map it to a SourceError/ImageError)
    │   ├── URLNotAllowedError      scheme, host or address not allowed; a name that does not resolve
    │   ├── TransportConnectError   transient: could not connect, connection reset
    │   ├── TransportTimeoutError   no answer within the read timeout or the total deadline
    │   ├── ResponseTooLargeError   the body is over its cap
    │   └── ResponseCutOffError     transient: the body ended before it was complete
    ├── ImageError                  one image could not be used; stored as failed with the reason
    │   ├── ImageFetchError         network, HTTP status, size cap, content type
    │   │   ├── TransientImageFetchError  timeouts, 5xx: worth one more try
    │   │   └── ImageURLRefusedError      not http(s)/file, or a private address not allowed
    │   └── ImageDecodeError        not an image, truncated, too many pixels
    ├── ModelError                  a model directory is missing, incomplete or incompatible
    ├── DatasetError                a training/evaluation dataset cannot be read
    ├── StorageError                the database is unreachable or not migrated
    └── QueueError                  the broker is unreachable (the work stays stored)
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""


class ConfigurationError(MonitorError):
    """A setting, option or name given by the user is not valid."""


class UnknownSourceError(ConfigurationError):
    """No source has the given name."""


class UnknownBrandError(ConfigurationError):
    """The brand is not one the model knows or the database holds."""

    def __init__(self, brand: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) if known else "none yet"
        super().__init__(f"unknown brand {brand!r}; known brands: {listing}")
        self.brand = brand
        self.known = known


class SourceError(MonitorError):
    """A source could not be collected; the reason is recorded on the source."""


class SourceUnavailableError(SourceError):
    """The source is unreachable or answered with a server error; trying later may work."""


class RateLimitedError(SourceUnavailableError):
    """The server asked us to slow down (HTTP 429)."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class SourceHTTPError(SourceError):
    """The server refused the request with a client error (404, 403...): retrying will not help."""

    def __init__(self, message: str, *, status_code: int, url: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url


class SourceURLRefusedError(SourceError):
    """The URL is not one monitor may fetch (not http(s), or a private host not allowed)."""


class MalformedSourceError(SourceError):
    """The source answered with something that is not a feed or listing we can read."""


class TransportError(MonitorError):
    """An HTTP exchange failed; feeds turn it into a SourceError, images into an ImageFetchError.

    ``reason`` says what went wrong without the URL, for callers that name the URL their own way.
    """

    def __init__(self, reason: str, *, url: str | None = None) -> None:
        super().__init__(f"{url[:200]}: {reason}" if url else reason)
        self.reason = reason
        self.url = url


class URLNotAllowedError(TransportError):
    """The URL may not be fetched: its scheme, its host, or an address its name resolves to.

    A name that does not resolve is refused too (failing closed): a guard that lets unknown names
    through cannot know where the connection would go.
    """


class TransportConnectError(TransportError):
    """The connection could not be made or broke before an answer; another try may work."""


class TransportTimeoutError(TransportError):
    """No (complete) answer within the read timeout or the exchange's total deadline."""


class ResponseTooLargeError(TransportError):
    """The body is larger than the caller's cap (declared or as it arrived)."""


class ResponseCutOffError(TransportError):
    """The body ended before it was complete (a connection cut mid-answer); worth another try."""


class ImageError(MonitorError):
    """One image could not be fetched or decoded."""


class ImageFetchError(ImageError):
    """The image bytes could not be fetched within the limits."""


class TransientImageFetchError(ImageFetchError):
    """A timeout or server error while fetching; another try may succeed."""


class ImageURLRefusedError(ImageFetchError):
    """The URL's scheme or address is not allowed by the configuration."""


class ImageDecodeError(ImageError):
    """The bytes are not a usable image (corrupt, truncated, too large, wrong type)."""


class ModelError(MonitorError):
    """A model directory is missing, incomplete or incompatible."""


class DatasetError(MonitorError):
    """A dataset for training or evaluation cannot be read."""


class StorageError(MonitorError):
    """The database is unreachable or its schema is not at the expected revision."""


class QueueError(MonitorError):
    """The broker cannot be reached; stored work is re-queued later by ``monitor requeue``."""

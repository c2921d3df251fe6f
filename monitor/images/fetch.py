"""Fetching image bytes from http(s) and file URLs, within the configured limits.

Every URL comes from a stranger's post. HTTP goes through the one guarded transport
(:mod:`monitor.transport`: the address checked on every redirect hop and the connection pinned to
it, a total deadline, the byte cap); this module adds what images need: it refuses answers that say
they are not an image, reads ``file://`` URLs of local sources, and turns every failure into one of
monitor's image errors with a one-line message naming the URL.

Timeouts, broken connections and server errors (5xx, 429) raise ``TransientImageFetchError`` (worth
another try later);
other refusals raise ``ImageFetchError`` or ``ImageURLRefusedError`` (trying again will not help).
"""

from __future__ import annotations

import mimetypes
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests

from monitor.exceptions import (
    ImageFetchError,
    ImageURLRefusedError,
    ResponseCutOffError,
    TransientImageFetchError,
    TransportConnectError,
    TransportError,
    TransportTimeoutError,
    URLNotAllowedError,
)
from monitor.images.limits import ImageLimits
from monitor.net import AddressPolicy, Resolver, check_scheme, is_public_address, resolve_host
from monitor.transport import Exchange, HttpTransport

MAX_REDIRECTS = 5
GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
ACCEPT_HEADER = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"


@dataclass(frozen=True)
class FetchedImage:
    """The raw bytes of one image, not yet decoded.

    ``content_type`` is the media type the server declared (lower case, no parameters), or for a
    file the type guessed from its name; ``None`` when unknown. ``url`` is the URL asked for (not
    where redirects led).
    """

    data: bytes
    content_type: str | None
    url: str


class ImageFetcher:
    """Fetches images with limits on time, size and destination.

    HTTP goes through :class:`monitor.transport.HttpTransport` (the guard on every hop, pinned
    connections, a total deadline of ``timeout_seconds`` per image, the byte cap); the ``session``
    carries connection pooling and headers, the ``resolver`` and ``address_allowed`` decide which
    addresses a host name stands for and which of them may be reached.
    """

    def __init__(
        self,
        *,
        limits: ImageLimits,
        session: requests.Session | None = None,
        resolver: Resolver = resolve_host,
        address_allowed: AddressPolicy = is_public_address,
    ) -> None:
        self._limits = limits
        self._transport = HttpTransport(
            session,
            timeout_seconds=limits.timeout_seconds,
            allow_private_hosts=limits.allow_private_hosts,
            max_redirects=MAX_REDIRECTS,
            resolver=resolver,
            address_allowed=address_allowed,
        )

    def fetch(self, url: str) -> FetchedImage:
        """The bytes behind ``url``, or an ``ImageFetchError`` (or subclass) saying why not."""
        try:
            scheme, _ = check_scheme(url, allow_file=self._limits.allow_file_urls)
        except URLNotAllowedError as exc:
            raise ImageURLRefusedError(f"cannot fetch {_short(url)}: {exc.reason}") from exc
        if scheme == "file":
            return self._read_file(url)
        try:
            return self._fetch_http(url)
        except TransportError as exc:
            raise _image_error(url, exc) from exc

    def _read_file(self, url: str) -> FetchedImage:
        """Read a ``file://`` URL's regular file, refusing it up front when it is over the cap."""
        path = _file_url_path(url)
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise ImageFetchError(f"cannot read {_short(url)}: not a regular file")
            _check_size(url, info.st_size, self._limits.max_bytes, "file is")
            with path.open("rb") as handle:
                data = handle.read(self._limits.max_bytes + 1)
        except FileNotFoundError as exc:
            raise ImageFetchError(f"cannot read {_short(url)}: no such file") from exc
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ImageFetchError(f"cannot read {_short(url)}: {reason}") from exc
        # The file may have grown between stat and read.
        _check_size(url, len(data), self._limits.max_bytes, "file is")
        content_type, _ = mimetypes.guess_type(path.name)
        return FetchedImage(data=data, content_type=content_type, url=url)

    def _fetch_http(self, url: str) -> FetchedImage:
        """One guarded GET: status and content type judged before the body is read."""
        with self._transport.open(url, headers={"Accept": ACCEPT_HEADER}) as exchange:
            _check_status(url, exchange)
            content_type = _check_content_type(url, exchange)
            data = exchange.read(self._limits.max_bytes)
        return FetchedImage(data=data, content_type=content_type, url=url)


def _image_error(url: str, exc: TransportError) -> ImageFetchError:
    """The image error for a transport failure: timeouts and broken connections are transient."""
    reason = exc.reason
    if isinstance(exc, URLNotAllowedError):
        return ImageURLRefusedError(f"cannot fetch {_short(url)}: {reason}")
    if isinstance(exc, TransportConnectError | TransportTimeoutError | ResponseCutOffError):
        return TransientImageFetchError(f"cannot fetch {_short(url)}: {reason}")
    return ImageFetchError(f"cannot fetch {_short(url)}: {reason}")


def _file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL; only this machine's files (no host or localhost)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ImageURLRefusedError(f"cannot read {_short(url)}: file URL names another host")
    path = Path(url2pathname(parts.path))
    if not path.is_absolute():
        raise ImageURLRefusedError(f"cannot read {_short(url)}: file URL path is not absolute")
    return path


def _check_size(url: str, size: int, limit: int, what: str) -> None:
    """Refuse a size over the cap; ``what`` says where the size came from."""
    if size > limit:
        raise ImageFetchError(
            f"cannot fetch {_short(url)}: {what} {size} bytes, over the limit of {limit} bytes"
        )


def _check_status(url: str, response: Exchange) -> None:
    """Server errors and 429 may pass; other non-2xx answers will not."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"cannot fetch {_short(url)}: HTTP {status} {response.reason or ''}".rstrip()
    if status == 429 or status >= 500:
        raise TransientImageFetchError(message)
    raise ImageFetchError(message)


def _check_content_type(url: str, response: Exchange) -> str | None:
    """The declared media type, refusing ones that are not images (a missing type is fine)."""
    header = response.headers.get("Content-Type", "")
    media_type = header.split(";", 1)[0].strip().lower()
    if not media_type:
        return None
    if media_type.startswith("image/") or media_type in GENERIC_CONTENT_TYPES:
        return media_type
    raise ImageFetchError(f"cannot fetch {_short(url)}: the server sent {media_type}, not an image")


def _short(url: str) -> str:
    """A URL shortened for messages (data: URLs and query strings can be very long)."""
    return url if len(url) <= 200 else url[:197] + "..."

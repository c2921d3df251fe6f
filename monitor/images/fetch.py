"""Fetching image bytes from http(s) and file URLs, within the configured limits.

Every URL comes from a stranger's post, so the fetcher checks the address before the request and
on every redirect hop (redirects are followed by hand for that reason), streams the body and stops
as soon as it exceeds the byte cap, refuses answers that say they are not an image, and turns every
``requests`` error into one of monitor's image errors with a one-line message naming the URL.

Timeouts and server errors (5xx, 429) raise ``TransientImageFetchError`` (worth another try later);
other refusals raise ``ImageFetchError`` or ``ImageURLRefusedError`` (trying again will not help).
"""

from __future__ import annotations

import mimetypes
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import requests

from monitor.exceptions import (
    ImageFetchError,
    ImageURLRefusedError,
    TransientImageFetchError,
)
from monitor.images.limits import ImageLimits
from monitor.net import Resolver, check_url_allowed, resolve_host

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
GENERIC_CONTENT_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
ACCEPT_HEADER = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
_ERRNO_PATTERN = re.compile(r"\[Errno -?\d+\] [^'\")]+")


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

    The ``session`` carries connection pooling and headers (a user agent, say); the ``resolver``
    decides which addresses a host name stands for when private hosts are refused.
    """

    def __init__(
        self,
        *,
        limits: ImageLimits,
        session: requests.Session | None = None,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._limits = limits
        self._session = session if session is not None else requests.Session()
        self._resolver = resolver

    def fetch(self, url: str) -> FetchedImage:
        """The bytes behind ``url``, or an ``ImageFetchError`` (or subclass) saying why not."""
        scheme = self._check_allowed(url, allow_file=self._limits.allow_file_urls)
        if scheme == "file":
            return self._read_file(url)
        return self._fetch_http(url)

    def _check_allowed(self, url: str, *, allow_file: bool) -> str:
        """The URL's scheme if it may be fetched; unparseable URLs are refused like bad schemes."""
        try:
            return check_url_allowed(
                url,
                allow_private=self._limits.allow_private_hosts,
                allow_file=allow_file,
                resolver=self._resolver,
            )
        except ValueError as exc:
            message = f"cannot fetch {_short(url)}: malformed URL ({exc})"
            raise ImageURLRefusedError(message) from exc

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
        """Follow at most ``MAX_REDIRECTS`` redirects by hand, checking each hop's address."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            with self._request(url, current) as response:
                if response.status_code in REDIRECT_STATUSES:
                    current = self._next_hop(url, current, response)
                    continue
                _check_status(url, response)
                content_type = _check_content_type(url, response)
                data = self._read_body(url, response)
                return FetchedImage(data=data, content_type=content_type, url=url)
        raise ImageFetchError(f"cannot fetch {_short(url)}: more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, current: str) -> requests.Response:
        """Send one GET without following redirects; the body is streamed, not read yet."""
        timeout = self._limits.timeout_seconds
        try:
            return self._session.get(
                current,
                stream=True,
                allow_redirects=False,
                timeout=(timeout, timeout),
                headers={"Accept": ACCEPT_HEADER},
            )
        except requests.RequestException as exc:
            raise _translate(url, exc, timeout) from exc

    def _next_hop(self, url: str, current: str, response: requests.Response) -> str:
        """Where a redirect points, if that address may be fetched (never a file URL)."""
        location = response.headers.get("Location")
        if not location:
            raise ImageFetchError(
                f"cannot fetch {_short(url)}: HTTP {response.status_code} redirect without Location"
            )
        target = urljoin(current, location)
        try:
            self._check_allowed(target, allow_file=False)
        except ImageURLRefusedError as exc:
            raise ImageURLRefusedError(
                f"cannot fetch {_short(url)}: redirected to a refused URL ({exc})"
            ) from exc
        return target

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        """The body, read in chunks and abandoned as soon as it exceeds the byte cap."""
        limit = self._limits.max_bytes
        declared = _content_length(response)
        if declared is not None:
            _check_size(url, declared, limit, "Content-Length says")
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                received += len(chunk)
                _check_size(url, received, limit, "body reached")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise _translate(url, exc, self._limits.timeout_seconds) from exc
        return b"".join(chunks)


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


def _check_status(url: str, response: requests.Response) -> None:
    """Server errors and 429 may pass; other non-2xx answers will not."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"cannot fetch {_short(url)}: HTTP {status} {response.reason or ''}".rstrip()
    if status == 429 or status >= 500:
        raise TransientImageFetchError(message)
    raise ImageFetchError(message)


def _check_content_type(url: str, response: requests.Response) -> str | None:
    """The declared media type, refusing ones that are not images (a missing type is fine)."""
    header = response.headers.get("Content-Type", "")
    media_type = header.split(";", 1)[0].strip().lower()
    if not media_type:
        return None
    if media_type.startswith("image/") or media_type in GENERIC_CONTENT_TYPES:
        return media_type
    raise ImageFetchError(f"cannot fetch {_short(url)}: the server sent {media_type}, not an image")


def _content_length(response: requests.Response) -> int | None:
    """The declared body length, or ``None`` when absent or not a number."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _translate(url: str, exc: requests.RequestException, timeout: float) -> ImageFetchError:
    """Map a ``requests`` error to monitor's image error with a one-line reason."""
    text = str(exc)
    if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
        message = f"cannot fetch {_short(url)}: timed out after {timeout:g} s"
        return TransientImageFetchError(message)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return ImageURLRefusedError(f"cannot fetch {_short(url)}: invalid URL")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        match = _ERRNO_PATTERN.search(text)
        reason = match.group(0).strip() if match else type(exc).__name__
        return TransientImageFetchError(f"cannot fetch {_short(url)}: connection failed ({reason})")
    return ImageFetchError(f"cannot fetch {_short(url)}: {type(exc).__name__}")


def _short(url: str) -> str:
    """A URL shortened for messages (data: URLs and query strings can be very long)."""
    return url if len(url) <= 200 else url[:197] + "..."

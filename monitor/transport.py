"""The one HTTP transport feeds and images go through: guarded, pinned, capped and time-boxed.

Every URL monitor fetches comes from a stranger, so one place does what each fetch needs:

- **the guard**, before every hop (the first request and each redirect, followed by hand): the
  URL's scheme and host, and every address its name resolves to (:mod:`monitor.net`); a name that
  does not resolve is refused, not retried;
- **pinning**: the connection goes to an address the guard checked, not to whatever a second DNS
  lookup answers (the socket is opened by this module's own urllib3 connection classes, which
  refuse to connect anywhere they were not told; TLS still checks the certificate for the name);
- **a total deadline** per exchange (connect, redirects, headers and body together): a server
  dripping one byte a second stays within every per-read timeout, so a watchdog shuts the socket
  when the deadline passes;
- **a body cap**, declared or as it arrives.

Failures are :class:`~monitor.exceptions.TransportError` subclasses; the feed client
(:mod:`monitor.http`) and the image fetcher (:mod:`monitor.images.fetch`) turn them into their own
errors. Tests inject a ``requests`` session with their own adapter, or a resolver and an address
policy that let a local test server pass for a public host.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from monitor.exceptions import (
    ResponseCutOffError,
    ResponseTooLargeError,
    TransportConnectError,
    TransportError,
    TransportTimeoutError,
    URLNotAllowedError,
)
from monitor.net import (
    AddressPolicy,
    CheckedURL,
    Resolver,
    check_url,
    is_public_address,
    normalise_host,
    resolve_host,
)

__all__ = ["Exchange", "HttpTransport", "guarded_session"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024


# --- where a connection may go, and until when: per exchange, per thread -------------------------


class _Deadline:
    """Shuts every socket of one exchange when its time is up, however the server trickles."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Put a socket under this deadline (shut at once if the deadline has already passed)."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake a blocked read on ``sock`` (its owner closes it)."""
    # Already closed or never connected: then nothing is blocked on it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _ExchangeState(threading.local):
    """The addresses the guard approved and the deadline of this thread's current exchange."""

    def __init__(self) -> None:
        self.pins: dict[str, tuple[str, ...]] = {}
        self.deadline: _Deadline | None = None


_current = _ExchangeState()


class _PinnedConnectionMixin:
    """Opens sockets only to the addresses the guard approved for the host, under the deadline."""

    _dns_host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        host = normalise_host(self._dns_host)
        addresses = _current.pins.get(host)
        if not addresses:
            raise URLNotAllowedError(f"refused {host}: no checked address to connect to")
        error: Exception | None = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"connecting to {host} ({address}) timed out")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(
                    self,  # type: ignore[arg-type]  # the mixin is only used on HTTPConnection
                    f"cannot connect to {host} ({address}): {exc}",
                )
                error.__cause__ = exc
            else:
                _watch(sock)
                return sock
        assert error is not None
        raise error

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a pooled connection reused: it also answers to this deadline
            _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _watch(sock: socket.socket) -> None:
    if _current.deadline is not None:
        _current.deadline.watch(sock)


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A ``requests`` adapter whose connections go only to addresses the guard checked."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PinnedHTTPConnectionPool,
            "https": _PinnedHTTPSConnectionPool,
        }


def guarded_session(user_agent: str | None = None) -> requests.Session:
    """A ``requests`` session with pinned connections and no proxies from the environment.

    A proxy would make the connection to the proxy's address and leave the real destination to it,
    out of the guard's sight, so environment proxies are not used.
    """
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", PinnedAdapter())
    session.mount("https://", PinnedAdapter())
    if user_agent:
        session.headers["User-Agent"] = user_agent
    return session


# --- the exchange ---------------------------------------------------------------------------------


@dataclass
class Exchange:
    """The final (non-redirect) answer of one GET, its body not read yet."""

    url: str
    """Where the redirects led."""
    response: requests.Response
    deadline: _Deadline
    timeout_seconds: float

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def reason(self) -> str:
        return self.response.reason or ""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    def read(self, max_bytes: int) -> bytes:
        """The body, abandoned as soon as it exceeds ``max_bytes`` or the deadline passes."""
        declared = self.response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLargeError(
                f"Content-Length says {declared} bytes, over the limit of {max_bytes} bytes",
                url=self.url,
            )
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in self.response.iter_content(CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise ResponseTooLargeError(
                        f"the body reached {received} bytes, over the limit of {max_bytes} bytes",
                        url=self.url,
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise self._read_error(exc) from exc
        self._check_deadline()  # a socket shut by the watchdog looks like a body that ended
        return b"".join(chunks)

    def _read_error(self, exc: requests.RequestException) -> TransportError:
        if self.deadline.expired:
            return self._deadline_error()
        if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
            return TransportTimeoutError(
                f"the server stopped sending for {self.timeout_seconds:g} seconds", url=self.url
            )
        return ResponseCutOffError(f"the response was cut off ({_reason(exc)})", url=self.url)

    def _check_deadline(self) -> None:
        if self.deadline.expired:
            raise self._deadline_error()

    def _deadline_error(self) -> TransportTimeoutError:
        return TransportTimeoutError(
            f"no complete answer within {self.deadline.seconds:g} seconds", url=self.url
        )


class HttpTransport:
    """GET with the guard on every hop, pinned connections, a total deadline and a body cap."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout_seconds: float = 10.0,
        deadline_seconds: float | None = None,
        allow_private_hosts: bool = False,
        max_redirects: int = 5,
        resolver: Resolver = resolve_host,
        address_allowed: AddressPolicy = is_public_address,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._owns_session = session is None
        self.session = session if session is not None else guarded_session()
        self.timeout_seconds = timeout_seconds
        self.deadline_seconds = deadline_seconds or timeout_seconds
        self.allow_private_hosts = allow_private_hosts
        self.max_redirects = max_redirects
        self._resolver = resolver
        self._address_allowed = address_allowed

    def close(self) -> None:
        """Close the session if this transport created it (an injected one is the caller's)."""
        if self._owns_session:
            self.session.close()

    def check(self, url: str, *, allow_file: bool = False) -> CheckedURL:
        """The guard's verdict on ``url`` (``URLNotAllowedError`` when refused)."""
        return check_url(
            url,
            allow_private=self.allow_private_hosts,
            allow_file=allow_file,
            resolver=self._resolver,
            address_allowed=self._address_allowed,
        )

    @contextmanager
    def open(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[Exchange]:
        """Follow redirects by hand, checking each hop, and yield the final answer to read."""
        deadline = _Deadline(self.deadline_seconds)
        _current.deadline, _current.pins = deadline, {}
        try:
            current, current_params = url, params
            for hop in range(self.max_redirects + 1):
                self._pin(current, redirected_from=url if hop else None)
                response = self._send(current, current_params, headers, deadline)
                location = response.headers.get("Location")
                if response.status_code in REDIRECT_STATUSES and location:
                    response.close()
                    current, current_params = urljoin(response.url or current, location), None
                    continue
                try:
                    yield Exchange(
                        url=response.url or current,
                        response=response,
                        deadline=deadline,
                        timeout_seconds=self.timeout_seconds,
                    )
                finally:
                    response.close()
                return
            raise TransportError(f"more than {self.max_redirects} redirects", url=url)
        finally:
            deadline.cancel()
            _current.deadline, _current.pins = None, {}

    def _pin(self, url: str, *, redirected_from: str | None) -> None:
        """Check ``url`` and remember the approved addresses its connection may use."""
        try:
            checked = self.check(url)
        except URLNotAllowedError as exc:
            if redirected_from is None:
                raise
            raise URLNotAllowedError(
                f"redirected to a refused URL {url[:200]} ({exc})", url=redirected_from
            ) from exc
        _current.pins[checked.host] = checked.addresses

    def _send(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        deadline: _Deadline,
    ) -> requests.Response:
        """One GET, redirects not followed, the body streamed (not read yet)."""
        try:
            return self.session.get(
                url,
                params=dict(params) if params else None,
                headers=dict(headers or {}),
                timeout=(self.timeout_seconds, self.timeout_seconds),
                allow_redirects=False,
                stream=True,
            )
        except URLNotAllowedError:
            raise
        except requests.RequestException as exc:
            raise _request_error(url, exc, self.timeout_seconds, deadline) from exc


def _request_error(
    url: str, exc: requests.RequestException, timeout: float, deadline: _Deadline
) -> TransportError:
    """Map a ``requests`` error raised before the body to a transport error."""
    if deadline.expired:
        return TransportTimeoutError(
            f"no complete answer within {deadline.seconds:g} seconds", url=url
        )
    if isinstance(exc, requests.ConnectTimeout):
        return TransportConnectError(f"timed out connecting after {timeout:g} seconds", url=url)
    if isinstance(exc, requests.Timeout):
        return TransportTimeoutError(f"no answer within {timeout:g} seconds", url=url)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return URLNotAllowedError(f"invalid URL ({exc})", url=url)
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return TransportConnectError(f"connection failed ({_reason(exc)})", url=url)
    return TransportError(f"the request could not be made ({_reason(exc)})", url=url)


def _reason(exc: BaseException) -> str:
    """The innermost useful words of a ``requests``/urllib3 error chain, on one line."""
    text = str(exc)
    for marker in ("[Errno", "Connection refused", "Connection reset", "Read timed out"):
        index = text.find(marker)
        if index >= 0:
            return text[index:].split("'")[0].split('"')[0].rstrip(")").strip()
    return type(exc).__name__

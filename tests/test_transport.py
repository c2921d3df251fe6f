"""HttpTransport against real local servers: the guard fails closed, pins, and keeps its deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from monitor.exceptions import (
    ImageURLRefusedError,
    TransientImageFetchError,
    TransportConnectError,
    TransportTimeoutError,
    URLNotAllowedError,
)
from monitor.images import ImageFetcher, ImageLimits
from monitor.net import is_public_address
from monitor.transport import HttpTransport, guarded_session


@dataclass
class DripServer:
    """A raw TCP server answering every connection from a script, one byte at a time.

    ``header_bytes`` go out at once; then ``drip_bytes`` bytes, one every ``interval`` seconds.
    ``sent`` counts the dripped bytes that reached the socket before the client hung up.
    """

    header_bytes: bytes
    drip_bytes: bytes
    interval: float
    port: int = 0
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def drip_server() -> Iterator[DripServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    server = DripServer(
        header_bytes=b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 400\r\n\r\n",
        drip_bytes=b"x" * 400,
        interval=0.05,
        port=listener.getsockname()[1],
    )

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(server.header_bytes)
                for byte in server.drip_bytes:
                    connection.sendall(bytes([byte]))
                    server.sent += 1
                    time.sleep(server.interval)  # the drip itself: what is tested
            except OSError:
                pass  # the client hung up: what the test waits for
            finally:
                server.done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server
    listener.close()
    thread.join(timeout=30)


def local_transport(**options: object) -> HttpTransport:
    return HttpTransport(allow_private_hosts=True, **options)  # type: ignore[arg-type]


def test_a_slow_drip_body_is_cut_at_the_total_deadline(drip_server: DripServer) -> None:
    transport = local_transport(timeout_seconds=1.0)
    url = f"http://127.0.0.1:{drip_server.port}/drip.jpg"
    with (
        pytest.raises(TransportTimeoutError, match=r"no complete answer within 1 seconds"),
        transport.open(url) as exchange,
    ):
        exchange.read(10_000)
    assert drip_server.done.wait(timeout=30)
    # Every byte came well within the per-read timeout; only the deadline stopped the download.
    assert drip_server.sent < len(drip_server.drip_bytes)


def test_slow_drip_headers_are_cut_at_the_total_deadline(drip_server: DripServer) -> None:
    drip_server.drip_bytes, drip_server.header_bytes = drip_server.header_bytes * 10, b""
    fetcher = ImageFetcher(limits=ImageLimits(allow_private_hosts=True, timeout_seconds=1.0))
    with pytest.raises(TransientImageFetchError, match="no complete answer within 1 seconds"):
        fetcher.fetch(f"http://127.0.0.1:{drip_server.port}/drip.jpg")
    assert drip_server.done.wait(timeout=30)
    assert drip_server.sent < len(drip_server.drip_bytes)


@pytest.fixture
def redirect_server() -> Iterator[tuple[int, list[str]]]:
    """Answers /to-NAME with a redirect to http://NAME:PORT/image.jpg, and /image.jpg with bytes."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            if self.path.startswith("/to-"):
                self.send_response(302)
                target = self.path.removeprefix("/to-")
                self.send_header("Location", f"http://{target}:{self.server.server_port}/image.jpg")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"bytes")

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, paths
    server.shutdown()
    server.server_close()


def server_passes_for_public(address: str) -> bool:
    """The test server's 127.0.0.1 passes for public; every other address is judged for real."""
    return address == "127.0.0.1" or is_public_address(address)


NAMES = {
    "public.test": ["127.0.0.1"],
    "inside.test": ["127.0.0.2"],
    "mixed.test": ["127.0.0.1", "10.0.0.7"],
}


@pytest.mark.parametrize("target", ["inside.test", "mixed.test", "nowhere.test", "localhost."])
def test_a_redirect_to_a_name_leading_inside_is_refused(
    redirect_server: tuple[int, list[str]], target: str
) -> None:
    port, paths = redirect_server
    transport = HttpTransport(
        resolver=lambda host: NAMES.get(host, []), address_allowed=server_passes_for_public
    )
    with (
        pytest.raises(URLNotAllowedError, match="redirected to a refused URL"),
        transport.open(f"http://public.test:{port}/to-{target}"),
    ):
        pass
    assert paths == [f"/to-{target}"]  # the redirect target was never asked


def test_the_connection_goes_to_the_checked_address(redirect_server: tuple[int, list[str]]) -> None:
    """``public.test`` exists only in the guard's resolver: reaching the server proves the pin."""
    port, paths = redirect_server
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding DNS: the second answer is private
    lookups: list[str] = []

    def rebinding(host: str) -> list[str]:
        lookups.append(host)
        return next(answers)

    transport = HttpTransport(resolver=rebinding, address_allowed=server_passes_for_public)
    with transport.open(f"http://public.test:{port}/image.jpg") as exchange:
        assert exchange.read(100) == b"bytes"
    assert lookups == ["public.test"]  # resolved once, for the guard and the connection
    assert paths == ["/image.jpg"]


def test_the_pinned_adapter_connects_nowhere_unchecked(
    redirect_server: tuple[int, list[str]],
) -> None:
    port, paths = redirect_server
    with guarded_session() as session, pytest.raises(URLNotAllowedError, match="no checked"):
        session.get(f"http://127.0.0.1:{port}/image.jpg", timeout=5)
    assert paths == []


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost./a.jpg",
        "http://LOCALHOST/a.jpg",
        "http://169.254.169.254./latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://ip6-localhost/a.jpg",
        "http://[::1]/a.jpg",
        "http://[fe80::1%25eth0]/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://0x7f.0.0.1/a.jpg",
        "http://2130706433/a.jpg",
        "http://0.0.0.0/a.jpg",
        "http://name-that-does-not-resolve.invalid/a.jpg",
    ],
)
def test_inside_and_unresolvable_hosts_are_refused_not_retried(url: str) -> None:
    """With the real resolver: each is refused as not allowed (never a transient error)."""
    fetcher = ImageFetcher(limits=ImageLimits(timeout_seconds=2.0))
    with pytest.raises(ImageURLRefusedError, match="refused"):
        fetcher.fetch(url)


def test_an_unresolvable_feed_host_is_refused() -> None:
    from monitor.exceptions import SourceURLRefusedError
    from monitor.http import HttpClient

    with (
        HttpClient(sleep=lambda _: None) as client,
        pytest.raises(SourceURLRefusedError, match="does not resolve"),
    ):
        client.get_bytes("https://feeds.name-that-does-not-resolve.invalid/rss")


def test_environment_proxies_are_not_used() -> None:
    """A proxy would connect on our behalf, out of the guard's sight."""
    assert guarded_session().trust_env is False


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for ``public.test``."""
    import shutil
    import ssl
    import subprocess
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=public.test"),
            *("-addext", "subjectAltName=DNS:public.test"),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def test_https_to_the_pinned_address_still_checks_the_certificate_for_the_name(
    tls_server: tuple[int, Path],
) -> None:
    port, cert = tls_server
    session = guarded_session()
    session.verify = str(cert)
    transport = HttpTransport(
        session, resolver=lambda host: ["127.0.0.1"], address_allowed=server_passes_for_public
    )
    with transport.open(f"https://public.test:{port}/") as exchange:
        assert exchange.read(10) == b"ok"
    with (
        pytest.raises(TransportConnectError, match="SSLError"),
        transport.open(f"https://other.test:{port}/"),
    ):
        pass  # same address, but the certificate is not for this name


def _lookup_failing_with(error_number: int) -> Callable[..., Any]:
    def lookup(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(error_number, "resolver says no")

    return lookup


def test_a_resolver_outage_is_transient_and_an_unknown_name_is_refused() -> None:
    from monitor.net import resolve_host

    with pytest.raises(TransportConnectError, match="another try may work"):
        resolve_host("images.example.com", lookup=_lookup_failing_with(socket.EAI_AGAIN))
    assert resolve_host("nowhere.invalid", lookup=_lookup_failing_with(socket.EAI_NONAME)) == []

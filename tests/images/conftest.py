"""Fixtures for the image tests: images made on the spot, and a local HTTP server serving them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image

from monitor.transport import guarded_session

from .factories import encode, huge_blank_png, two_colour_image

# --- images --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    return encode(two_colour_image(), "JPEG", quality=95)


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return encode(two_colour_image(), "PNG")


@pytest.fixture(scope="session")
def truncated_jpeg_bytes() -> bytes:
    """A photo-sized JPEG cut in half: the header is fine, the pixels run out."""
    noisy = Image.effect_noise((256, 256), 64).convert("RGB")
    data = encode(noisy, "JPEG", quality=90)
    return data[: len(data) // 2]


@pytest.fixture(scope="session")
def huge_png_bytes() -> bytes:
    """20000 x 20000 pixels (400 million) in a few tens of kilobytes."""
    return huge_blank_png(20_000, 20_000)


# --- a local HTTP server -------------------------------------------------------------------------


@dataclass
class Route:
    """What the test server answers on one path.

    ``body`` is bytes or a function giving chunks (for bodies too big to hold). A Content-Length is
    sent unless ``send_length`` is false (the body then ends when the connection closes); it is
    ``claimed_length`` when given (a server that lies), else the body's true length. ``finished`` is set when the server is done with the answer
    and ``bytes_sent`` says how much of the body it managed to write.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Callable[[], Iterable[bytes]] = b""
    send_length: bool = True
    claimed_length: int | None = None
    bytes_sent: int = 0
    finished: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    """Answers GETs from the server's route table; unknown paths get a 404."""

    server: _RoutingServer

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path) or Route(status=404, body=b"not found")
        try:
            self._answer(route)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading on purpose (size cap, timeout): what is tested
        finally:
            route.finished.set()

    def _answer(self, route: Route) -> None:
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value.replace("{port}", str(self.server.server_port)))
        if route.send_length:
            length = route.claimed_length
            if length is None:
                assert isinstance(route.body, bytes), "give a claimed_length for streamed bodies"
                length = len(route.body)
            self.send_header("Content-Length", str(length))
        self.end_headers()
        chunks = [route.body] if isinstance(route.body, bytes) else route.body()
        for chunk in chunks:
            self.wfile.write(chunk)
            route.bytes_sent += len(chunk)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


class _RoutingServer(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]


@dataclass
class ImageServer:
    """A running local server: add routes, then ask for their URLs."""

    routes: dict[str, Route]
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def image_server(
    jpeg_bytes: bytes, png_bytes: bytes, truncated_jpeg_bytes: bytes, huge_png_bytes: bytes
) -> Iterator[ImageServer]:
    """A ThreadingHTTPServer on 127.0.0.1 serving the usual good and bad answers."""
    html = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    routes = {
        "/good.jpg": Route(headers={"Content-Type": "image/jpeg"}, body=jpeg_bytes),
        "/good.png": Route(headers={"Content-Type": "image/png"}, body=png_bytes),
        "/untyped.png": Route(body=png_bytes),
        "/octet.jpg": Route(headers={"Content-Type": "application/octet-stream"}, body=jpeg_bytes),
        "/truncated.jpg": Route(headers={"Content-Type": "image/jpeg"}, body=truncated_jpeg_bytes),
        "/corrupt.jpg": Route(
            headers={"Content-Type": "image/jpeg"}, body=b"\xff\xd8" + b"x" * 500
        ),
        "/page-as-jpeg.jpg": Route(headers={"Content-Type": "image/jpeg"}, body=html),
        "/page.html": Route(headers={"Content-Type": "text/html; charset=utf-8"}, body=html),
        "/empty.jpg": Route(headers={"Content-Type": "image/jpeg"}, body=b""),
        "/huge.png": Route(headers={"Content-Type": "image/png"}, body=huge_png_bytes),
        "/missing.jpg": Route(status=404, body=b"gone"),
        "/unavailable.jpg": Route(status=503, body=b"try later"),
        "/busy.jpg": Route(status=429, headers={"Retry-After": "5"}, body=b"slow down"),
        "/redirect-good": Route(status=302, headers={"Location": "/good.jpg"}),
        "/redirect-private": Route(
            status=302, headers={"Location": "http://localhost:{port}/good.jpg"}
        ),
        "/redirect-file": Route(status=301, headers={"Location": "file:///etc/hostname"}),
        "/redirect-loop": Route(status=307, headers={"Location": "/redirect-loop"}),
    }
    server = _RoutingServer(("127.0.0.1", 0), _Handler)
    server.routes = routes
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield ImageServer(routes=routes, port=server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A URL whose server accepts the connection (the kernel does) but never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.jpg"
    finally:
        listener.close()


@pytest.fixture
def refused_url() -> str:
    """A URL on a port where nothing listens."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/gone.jpg"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with guarded_session() as http_session:
        yield http_session

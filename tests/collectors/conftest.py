"""A local HTTP server that answers like a platform, from recorded responses in ``data/``.

Collectors are tested through the real ``HttpClient`` and ``requests`` against 127.0.0.1, so the
whole path (query strings, headers, retries, decoding) is exercised without the internet.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from monitor.http import HttpClient, RetryPolicy

DATA = Path(__file__).parent / "data"
NOW = 1_717_200_000.0
"""The injected clock's time (2024-06-01T00:00:00Z), for Retry-After dates."""


@dataclass(frozen=True)
class Reply:
    """One recorded response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def file(cls, name: str, content_type: str, **headers: str) -> Reply:
        """A 200 response whose body is ``data/<name>``."""
        return cls(200, (DATA / name).read_bytes(), {"Content-Type": content_type, **headers})

    @classmethod
    def json_file(cls, name: str, **headers: str) -> Reply:
        """A 200 JSON response whose body is ``data/<name>``."""
        return cls.file(name, "application/json; charset=utf-8", **headers)

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> Reply:
        """A JSON response built from ``data``."""
        body = json.dumps(data).encode()
        return cls(status, body, {"Content-Type": "application/json", **headers})


@dataclass(frozen=True)
class SeenRequest:
    """A request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Route:
    """Replies for one path (and optionally required query values), served in order."""

    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0

    def matches(self, path: str, query: dict[str, str]) -> bool:
        return path == self.path and all(query.get(k) == v for k, v in self.query.items())

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class PlatformServer:
    """Routes requests to recorded replies and remembers what was asked."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, path: str, *replies: Reply, query: dict[str, str] | None = None) -> None:
        """Answer ``path`` (when the query has these values) with ``replies``, the last repeating.

        Routes with more required query values win over less specific ones.
        """
        self.routes.append(Route(path, dict(query or {}), list(replies)))
        self.routes.sort(key=lambda route: -len(route.query))

    def requests_to(self, path: str) -> list[SeenRequest]:
        return [request for request in self.requests if request.path == path]

    def answer(self, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(SeenRequest(parts.path, query, headers))
            for route in self.routes:
                if route.matches(parts.path, query):
                    return route.next_reply()
        return Reply(404, b"no recorded response", {"Content-Type": "text/plain"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply = platform.answer(self.path, dict(self.headers.items()))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        return Handler


@pytest.fixture
def server() -> Iterator[PlatformServer]:
    platform = PlatformServer()
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the client asked for (it never really sleeps in tests)."""
    return []


@pytest.fixture
def http(sleeps: list[float]) -> Iterator[HttpClient]:
    client = HttpClient(
        requests.Session(),
        timeout_seconds=2.0,
        allow_private_hosts=True,
        retry=RetryPolicy(max_attempts=3, backoff_seconds=0.5),
        sleep=sleeps.append,
        clock=lambda: NOW,
    )
    yield client
    client.session.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers; yields its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()

"""HttpClient: retries, Retry-After, the URL guard, size caps and error mapping.

Requests go through a recorded transport adapter mounted on a real ``requests.Session``, so the
client's own code runs unchanged while the tests decide what the "server" answers.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from monitor.config import load_settings
from monitor.exceptions import MalformedSourceError, RateLimitedError, SourceUnavailableError
from monitor.http import (
    HttpClient,
    HttpResponse,
    RetryPolicy,
    SourceHTTPError,
    SourceURLRefusedError,
    parse_retry_after,
)

NOW = 1_717_200_000.0  # 2024-06-01T00:00:00Z
PUBLIC_ADDRESS = "93.184.215.14"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


class RecordedAdapter(BaseAdapter):
    """Answers each request with the next recorded reply (or raises the recorded error)."""

    def __init__(self, *replies: Reply | Exception) -> None:
        super().__init__()
        self.replies = list(replies)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        response.raw = io.BytesIO(reply.body)
        response.url = request.url or ""
        response.request = request
        response.reason = "Recorded"
        return response

    def close(self) -> None:
        """Nothing to release."""


def client_for(
    adapter: RecordedAdapter,
    sleeps: list[float] | None = None,
    resolver: Mapping[str, list[str]] | None = None,
    **options: Any,
) -> HttpClient:
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    addresses = dict(resolver or {})
    return HttpClient(
        session,
        sleep=(sleeps if sleeps is not None else []).append,
        clock=lambda: NOW,
        resolver=lambda host: addresses.get(host, [PUBLIC_ADDRESS]),
        **options,
    )


def test_get_json_sends_user_agent_params_and_timeout() -> None:
    adapter = RecordedAdapter(Reply(body=b'{"ok": true}'))
    client = client_for(adapter, user_agent="monitor-test/1", timeout_seconds=4.5)

    data = client.get_json("https://api.example.com/items", params={"limit": 5})

    assert data == {"ok": True}
    (request,) = adapter.sent
    assert request.url == "https://api.example.com/items?limit=5"
    assert request.headers["User-Agent"] == "monitor-test/1"
    assert request.headers["Accept"] == "application/json"
    assert adapter.timeouts == [(4.5, 4.5)]  # (connect, read)


def test_429_waits_for_retry_after_seconds_then_succeeds() -> None:
    sleeps: list[float] = []
    adapter = RecordedAdapter(Reply(429, b"slow down", {"Retry-After": "7"}), Reply())

    client_for(adapter, sleeps).get_json("https://api.example.com/")

    assert sleeps == [7.0]
    assert len(adapter.sent) == 2


def test_429_with_an_http_date_waits_until_then() -> None:
    sleeps: list[float] = []
    later = "Sat, 01 Jun 2024 00:00:42 GMT"
    adapter = RecordedAdapter(Reply(429, b"", {"Retry-After": later}), Reply())

    client_for(adapter, sleeps).get_json("https://api.example.com/")

    assert sleeps == [42.0]


def test_429_that_persists_becomes_rate_limited_with_the_delay() -> None:
    sleeps: list[float] = []
    adapter = RecordedAdapter(*[Reply(429, b"", {"Retry-After": "3"})] * 3)
    client = client_for(adapter, sleeps, retry=RetryPolicy(max_attempts=3))

    with pytest.raises(RateLimitedError, match="429") as caught:
        client.get_json("https://api.example.com/")

    assert caught.value.retry_after_seconds == 3.0
    assert sleeps == [3.0, 3.0]


def test_429_asking_for_too_long_a_wait_fails_at_once() -> None:
    sleeps: list[float] = []
    adapter = RecordedAdapter(Reply(429, b"", {"Retry-After": "3600"}))
    client = client_for(adapter, sleeps, retry=RetryPolicy(max_retry_after_seconds=60))

    with pytest.raises(RateLimitedError) as caught:
        client.get_json("https://api.example.com/")

    assert caught.value.retry_after_seconds == 3600.0
    assert sleeps == []


def test_429_without_retry_after_backs_off() -> None:
    sleeps: list[float] = []
    adapter = RecordedAdapter(Reply(429), Reply())

    client_for(adapter, sleeps, retry=RetryPolicy(backoff_seconds=2)).get_json("https://a.example/")

    assert sleeps == [2.0]


def test_server_errors_back_off_exponentially_then_fail() -> None:
    sleeps: list[float] = []
    adapter = RecordedAdapter(Reply(500), Reply(502), Reply(503), Reply(504))
    client = client_for(adapter, sleeps, retry=RetryPolicy(max_attempts=4, backoff_seconds=1))

    with pytest.raises(SourceUnavailableError, match="HTTP 504"):
        client.get_json("https://api.example.com/")

    assert sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff_seconds=10, max_backoff_seconds=25)

    assert [policy.backoff(attempt) for attempt in (1, 2, 3, 4)] == [10, 20, 25, 25]


def test_connection_errors_are_retried() -> None:
    sleeps: list[float] = []
    adapter = RecordedAdapter(requests.ConnectionError("refused"), Reply(body=b"[1]"))

    assert client_for(adapter, sleeps).get_json("https://api.example.com/") == [1]
    assert sleeps == [1.0]


def test_connection_errors_that_persist_are_unavailable() -> None:
    adapter = RecordedAdapter(*[requests.ConnectionError("refused")] * 2)
    client = client_for(adapter, retry=RetryPolicy(max_attempts=2))

    with pytest.raises(SourceUnavailableError, match="connection failed"):
        client.get_json("https://api.example.com/")


def test_a_read_timeout_is_unavailable_without_retrying() -> None:
    adapter = RecordedAdapter(requests.ReadTimeout("read timed out"))
    client = client_for(adapter, timeout_seconds=2)

    with pytest.raises(SourceUnavailableError, match="no answer within 2 seconds"):
        client.get_json("https://api.example.com/")
    assert len(adapter.sent) == 1


def test_client_errors_are_not_retried() -> None:
    adapter = RecordedAdapter(Reply(404, b"not found"))

    with pytest.raises(SourceHTTPError, match="HTTP 404") as caught:
        client_for(adapter).get_json("https://api.example.com/missing")

    assert caught.value.status_code == 404
    assert len(adapter.sent) == 1


def test_bad_json_is_malformed() -> None:
    adapter = RecordedAdapter(Reply(body=b"<html>maintenance</html>"))

    with pytest.raises(MalformedSourceError, match=r"did not answer with JSON.*maintenance"):
        client_for(adapter).get_json("https://api.example.com/")


def test_bodies_over_the_cap_are_refused() -> None:
    adapter = RecordedAdapter(Reply(body=b"x" * 2000), Reply(body=b"x" * 2000))
    client = client_for(adapter)

    with pytest.raises(MalformedSourceError, match="exceeds 1000 bytes"):
        client.get_bytes("https://feeds.example.com/", max_bytes=1000)
    assert client.get_bytes("https://feeds.example.com/", max_bytes=2000) == b"x" * 2000


def test_private_hosts_are_refused_unless_allowed() -> None:
    adapter = RecordedAdapter(Reply())
    private = {"intranet.example": ["10.1.2.3"]}

    with pytest.raises(SourceURLRefusedError, match=r"non-public address 10\.1\.2\.3"):
        client_for(adapter, resolver=private).get_json("http://intranet.example/feed")
    assert adapter.sent == []
    allowed = client_for(adapter, resolver=private, allow_private_hosts=True)
    assert allowed.get_json("http://intranet.example/feed") == {}


def test_non_http_urls_are_refused() -> None:
    client = client_for(RecordedAdapter())

    with pytest.raises(SourceURLRefusedError, match="file URLs are not allowed"):
        client.get_bytes("file:///etc/passwd")
    with pytest.raises(SourceURLRefusedError, match="not an http"):
        client.get_bytes("gopher://example.com/feed")


def test_redirects_are_followed_and_each_target_checked() -> None:
    adapter = RecordedAdapter(
        Reply(301, b"", {"Location": "/moved/feed.xml"}),
        Reply(body=b"<rss/>"),
        Reply(302, b"", {"Location": "http://metadata.internal/latest"}),
    )
    client = client_for(adapter, resolver={"metadata.internal": ["169.254.169.254"]})

    assert client.get_bytes("https://feeds.example.com/feed.xml") == b"<rss/>"
    assert adapter.sent[1].url == "https://feeds.example.com/moved/feed.xml"
    with pytest.raises(SourceURLRefusedError, match=r"169\.254\.169\.254"):
        client.get_bytes("https://feeds.example.com/other.xml")


def test_response_exposes_links_charset_and_headers() -> None:
    link = (
        '<https://social.example/api/v1/timelines/tag/bmw?max_id=100>; rel="next", '
        '</api/v1/timelines/tag/bmw?min_id=200>; rel="prev"'
    )
    headers = {"Link": link, "Content-Type": 'application/xml; charset="ISO-8859-1"'}
    adapter = RecordedAdapter(Reply(body=b"", headers=headers))

    response = client_for(adapter).get("https://social.example/api/v1/timelines/tag/bmw")

    assert isinstance(response, HttpResponse)
    assert response.links == {
        "next": "https://social.example/api/v1/timelines/tag/bmw?max_id=100",
        "prev": "https://social.example/api/v1/timelines/tag/bmw?min_id=200",
    }
    assert response.charset == "iso-8859-1"
    assert response.headers["content-type"].startswith("application/xml")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("Sat, 01 Jun 2024 00:01:00 GMT", 60.0),
        ("Fri, 31 May 2024 23:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_from_settings_uses_timeout_user_agent_and_private_hosts() -> None:
    settings = load_settings(
        http_timeout_seconds=3.0, http_user_agent="ua/2", allow_private_image_hosts=True
    )

    client = HttpClient.from_settings(settings, session=requests.Session())

    assert (client.timeout_seconds, client.user_agent, client.allow_private_hosts) == (
        3.0,
        "ua/2",
        True,
    )
    client.session.close()


def test_bad_retry_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)

"""ImageFetcher against a real local HTTP server and real files: limits, redirects, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from monitor.exceptions import (
    ImageDecodeError,
    ImageFetchError,
    ImageURLRefusedError,
    TransientImageFetchError,
)
from monitor.images import FetchedImage, ImageFetcher, ImageLimits, decode_image
from monitor.net import is_public_address

from .conftest import ImageServer, Route

LOCAL = ImageLimits(allow_private_hosts=True, timeout_seconds=5.0)


def fetcher(session: requests.Session, **limits: object) -> ImageFetcher:
    """A fetcher allowed to reach the local test server, with some limits changed."""
    options: dict[str, object] = {"allow_private_hosts": True, "timeout_seconds": 5.0, **limits}
    return ImageFetcher(limits=ImageLimits(**options), session=session)  # type: ignore[arg-type]


def server_address_counts_as_public(address: str) -> bool:
    """An address policy under which the test server's own address, 127.0.0.1, passes for public.

    It lets the first hop to the local test server pass the private-address guard, so that the
    guard's verdict on the redirect hop alone is tested; every other address is judged for real.
    """
    return address == "127.0.0.1" or is_public_address(address)


def loopback_names(host: str) -> list[str]:
    """A resolver where ``localhost`` stands for another loopback address (127.0.0.2)."""
    return {"localhost": ["127.0.0.2"]}.get(host, [])


# --- good answers --------------------------------------------------------------------------------


def test_fetches_jpeg_with_its_content_type(
    image_server: ImageServer, session: requests.Session, jpeg_bytes: bytes
) -> None:
    url = image_server.url("/good.jpg")
    fetched = fetcher(session).fetch(url)
    assert fetched == FetchedImage(data=jpeg_bytes, content_type="image/jpeg", url=url)


def test_fetched_png_decodes(image_server: ImageServer, session: requests.Session) -> None:
    fetched = fetcher(session).fetch(image_server.url("/good.png"))
    assert decode_image(fetched.data, max_pixels=LOCAL.max_pixels).size == (64, 48)


@pytest.mark.parametrize(
    ("path", "content_type"), [("/untyped.png", None), ("/octet.jpg", "application/octet-stream")]
)
def test_missing_or_generic_content_type_is_left_to_the_decoder(
    image_server: ImageServer, session: requests.Session, path: str, content_type: str | None
) -> None:
    fetched = fetcher(session).fetch(image_server.url(path))
    assert fetched.content_type == content_type
    assert decode_image(fetched.data, max_pixels=LOCAL.max_pixels).mode == "RGB"


def test_relative_redirect_is_followed(
    image_server: ImageServer, session: requests.Session, jpeg_bytes: bytes
) -> None:
    url = image_server.url("/redirect-good")
    fetched = fetcher(session).fetch(url)
    assert fetched.data == jpeg_bytes
    assert fetched.url == url


# --- bad bytes arrive, the decoder refuses them --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/truncated.jpg", "truncated or corrupt"),
        ("/corrupt.jpg", "not a recognised image: corrupt data"),
        ("/page-as-jpeg.jpg", "HTML page"),
        ("/empty.jpg", "empty file"),
        ("/huge.png", "too many pixels"),
    ],
)
def test_bad_bytes_are_fetched_then_refused_by_the_decoder(
    image_server: ImageServer, session: requests.Session, path: str, reason: str
) -> None:
    fetched = fetcher(session).fetch(image_server.url(path))
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(fetched.data, max_pixels=LOCAL.max_pixels)


# --- refusals ------------------------------------------------------------------------------------


def test_html_content_type_is_refused(image_server: ImageServer, session: requests.Session) -> None:
    url = image_server.url("/page.html")
    with pytest.raises(ImageFetchError, match="text/html, not an image") as caught:
        fetcher(session).fetch(url)
    assert url in str(caught.value)
    assert not isinstance(caught.value, TransientImageFetchError)


def test_not_found_is_a_permanent_error(
    image_server: ImageServer, session: requests.Session
) -> None:
    with pytest.raises(ImageFetchError, match="HTTP 404") as caught:
        fetcher(session).fetch(image_server.url("/missing.jpg"))
    assert not isinstance(caught.value, TransientImageFetchError)


@pytest.mark.parametrize(("path", "status"), [("/unavailable.jpg", 503), ("/busy.jpg", 429)])
def test_server_errors_and_rate_limits_are_transient(
    image_server: ImageServer, session: requests.Session, path: str, status: int
) -> None:
    with pytest.raises(TransientImageFetchError, match=f"HTTP {status}"):
        fetcher(session).fetch(image_server.url(path))


def test_declared_oversize_body_is_refused_before_reading(
    image_server: ImageServer, session: requests.Session
) -> None:
    route = Route(
        headers={"Content-Type": "image/jpeg"},
        body=lambda: iter([b"\xff" * 4096] * 64),
        claimed_length=4096 * 64,
    )
    image_server.routes["/big.jpg"] = route
    with pytest.raises(ImageFetchError, match="Content-Length says 262144 bytes, over the limit"):
        fetcher(session, max_bytes=10_000).fetch(image_server.url("/big.jpg"))


def test_undeclared_oversize_body_is_abandoned_early(
    image_server: ImageServer, session: requests.Session
) -> None:
    total = 256 * 1024 * 1024
    chunk = b"\x00" * (1024 * 1024)
    route = Route(
        headers={"Content-Type": "image/png"},
        body=lambda: iter([chunk] * (total // len(chunk))),
        send_length=False,
    )
    image_server.routes["/endless.png"] = route
    with pytest.raises(ImageFetchError, match=r"body reached .* over the limit of 100000 bytes"):
        fetcher(session, max_bytes=100_000).fetch(image_server.url("/endless.png"))
    assert route.finished.wait(timeout=10), "the server should notice the client hung up"
    assert route.bytes_sent < total


def test_body_longer_than_its_content_length_is_cut_at_the_claim(
    image_server: ImageServer, session: requests.Session
) -> None:
    image_server.routes["/liar.jpg"] = Route(
        headers={"Content-Type": "image/jpeg"}, body=b"a" * 50_000, claimed_length=1_000
    )
    fetched = fetcher(session, max_bytes=10_000).fetch(image_server.url("/liar.jpg"))
    assert fetched.data == b"a" * 1_000


def test_body_shorter_than_its_content_length_is_transient(
    image_server: ImageServer, session: requests.Session
) -> None:
    image_server.routes["/cut.jpg"] = Route(
        headers={"Content-Type": "image/jpeg"}, body=b"a" * 1_000, claimed_length=5_000
    )
    with pytest.raises(TransientImageFetchError, match="cut off"):
        fetcher(session).fetch(image_server.url("/cut.jpg"))


def test_hanging_server_times_out(hanging_url: str, session: requests.Session) -> None:
    with pytest.raises(TransientImageFetchError, match=r"within 0.3 seconds") as caught:
        fetcher(session, timeout_seconds=0.3).fetch(hanging_url)
    assert hanging_url in str(caught.value)


def test_refused_connection_is_transient(refused_url: str, session: requests.Session) -> None:
    with pytest.raises(TransientImageFetchError, match=r"connection failed .*Connection refused"):
        fetcher(session).fetch(refused_url)


# --- where the fetcher may go --------------------------------------------------------------------


def test_private_host_is_refused_by_default(
    image_server: ImageServer, session: requests.Session
) -> None:
    with pytest.raises(ImageURLRefusedError, match=r"non-public address 127\.0\.0\.1"):
        ImageFetcher(limits=ImageLimits(), session=session).fetch(image_server.url("/good.jpg"))


def test_redirect_to_private_host_is_refused(
    image_server: ImageServer, session: requests.Session, jpeg_bytes: bytes
) -> None:
    guarded = ImageFetcher(
        limits=ImageLimits(allow_private_hosts=False),
        session=session,
        resolver=loopback_names,
        address_allowed=server_address_counts_as_public,
    )
    # The first hop passes the guard: the refusal below comes from the redirect hop.
    assert guarded.fetch(image_server.url("/good.jpg")).data == jpeg_bytes
    with pytest.raises(ImageURLRefusedError, match=r"redirected to a refused URL .*127\.0\.0\.2"):
        guarded.fetch(image_server.url("/redirect-private"))
    assert image_server.routes["/good.jpg"].bytes_sent == len(jpeg_bytes)  # only the first fetch


def test_redirect_to_private_host_is_followed_when_allowed(
    image_server: ImageServer, session: requests.Session, jpeg_bytes: bytes
) -> None:
    assert fetcher(session).fetch(image_server.url("/redirect-private")).data == jpeg_bytes


def test_redirect_to_a_file_url_is_refused_even_when_file_urls_are_allowed(
    image_server: ImageServer, session: requests.Session
) -> None:
    with pytest.raises(ImageURLRefusedError, match="file URLs are not allowed"):
        fetcher(session, allow_file_urls=True).fetch(image_server.url("/redirect-file"))


def test_redirect_loop_stops_after_five_hops(
    image_server: ImageServer, session: requests.Session
) -> None:
    with pytest.raises(ImageFetchError, match="more than 5 redirects"):
        fetcher(session).fetch(image_server.url("/redirect-loop"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/logo.png", "not an http"),
        ("javascript:alert(1)", "not an http"),
        ("http:///logo.png", "no host"),
        ("http://[::1/logo.png", "malformed URL"),
    ],
)
def test_unusable_urls_are_refused(session: requests.Session, url: str, reason: str) -> None:
    with pytest.raises(ImageURLRefusedError, match=reason):
        fetcher(session).fetch(url)


# --- file URLs -----------------------------------------------------------------------------------


@pytest.fixture
def jpeg_file(tmp_path: Path, jpeg_bytes: bytes) -> Iterator[Path]:
    path = tmp_path / "logo photo.jpg"
    path.write_bytes(jpeg_bytes)
    yield path


def test_file_url_is_read(jpeg_file: Path, session: requests.Session, jpeg_bytes: bytes) -> None:
    url = jpeg_file.as_uri()
    assert fetcher(session).fetch(url) == FetchedImage(
        data=jpeg_bytes, content_type="image/jpeg", url=url
    )


def test_file_url_with_localhost_is_read(jpeg_file: Path, session: requests.Session) -> None:
    url = jpeg_file.as_uri().replace("file://", "file://localhost")
    assert fetcher(session).fetch(url).data == jpeg_file.read_bytes()


def test_file_url_over_the_cap_is_refused(jpeg_file: Path, session: requests.Session) -> None:
    with pytest.raises(ImageFetchError, match=r"file is .* bytes, over the limit of 100 bytes"):
        fetcher(session, max_bytes=100).fetch(jpeg_file.as_uri())


def test_file_urls_can_be_disallowed(jpeg_file: Path, session: requests.Session) -> None:
    with pytest.raises(ImageURLRefusedError, match="file URLs are not allowed"):
        fetcher(session, allow_file_urls=False).fetch(jpeg_file.as_uri())


def test_missing_file_is_reported(tmp_path: Path, session: requests.Session) -> None:
    with pytest.raises(ImageFetchError, match="no such file"):
        fetcher(session).fetch((tmp_path / "nowhere.jpg").as_uri())


def test_directory_is_not_an_image(tmp_path: Path, session: requests.Session) -> None:
    with pytest.raises(ImageFetchError, match="not a regular file"):
        fetcher(session).fetch(tmp_path.as_uri())


def test_file_url_on_another_host_is_refused(session: requests.Session) -> None:
    with pytest.raises(ImageURLRefusedError, match="another host"):
        fetcher(session).fetch("file://fileserver/share/logo.jpg")

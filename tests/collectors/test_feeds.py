"""Feed decoding: the bytes' real encoding wins over what the feed or server claims."""

from __future__ import annotations

import codecs

import pytest

from monitor.collectors._feeds import decode_feed, html_entities_as_references, parse_feed_xml
from monitor.exceptions import MalformedSourceError

TEXT = "Müller & Söhne \u2013 25 €"


def test_undeclared_legacy_bytes_use_the_server_charset() -> None:
    content = "<rss><title>Müller & Söhne</title></rss>".encode("iso-8859-1")

    assert "Müller & Söhne" in decode_feed(content, http_charset="ISO-8859-1")


def test_byte_order_marks_are_trusted() -> None:
    content = codecs.BOM_UTF16_LE + f"<rss><title>{TEXT}</title></rss>".encode("utf-16-le")

    assert TEXT in decode_feed(content)


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le", "utf-32-le"])
def test_wide_encodings_without_mark_are_recognised(encoding: str) -> None:
    escaped = TEXT.replace("&", "&amp;")
    document = f'<?xml version="1.0" encoding="{encoding}"?><rss><title>{escaped}</title></rss>'

    root = parse_feed_xml(document.encode(encoding))

    assert root.findtext("title") == TEXT


def test_html_entities_become_character_references() -> None:
    assert html_entities_as_references("a&nbsp;b &amp; &eacute; &unknown; &lt;") == (
        "a&#160;b &amp; &#233; &unknown; &lt;"
    )


def test_parsed_feed_keeps_html_entities_meaning() -> None:
    root = parse_feed_xml(b"<rss><channel><title>caf&eacute;&nbsp;bar</title></channel></rss>")

    assert root.findtext("channel/title") == "caf\u00e9\u00a0bar"


def test_empty_body_is_malformed() -> None:
    with pytest.raises(MalformedSourceError, match="is empty"):
        parse_feed_xml(b"  \n", url="https://x.example/feed")

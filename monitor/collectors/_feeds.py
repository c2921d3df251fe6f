"""Feed bytes to an XML tree: honest about encodings, safe against hostile XML.

Feeds in the wild declare one encoding and send another (a ``windows-1252`` CMS behind an
``encoding="utf-8"`` template, or the reverse), use HTML entities such as ``&nbsp;`` that XML does
not define, and occasionally carry entity bombs or external entities. This module picks the
encoding from the evidence (byte-order mark, then whether the bytes are valid UTF-8, then what the
document and the server claim), turns HTML entities into character references, and parses with
``defusedxml`` so that entity declarations are refused instead of expanded.
"""

from __future__ import annotations

import codecs
import html.entities
import logging
import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException, EntitiesForbidden

from monitor.exceptions import MalformedSourceError

logger = logging.getLogger(__name__)

XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
XML_DECLARATION_TEXT = re.compile(r"^\s*<\?xml[^>]*\?>")
NAMED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
WIDE_XML_STARTS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
"""How ``<?`` looks in UTF-16 and UTF-32 without a byte-order mark (XML 1.0, appendix F)."""
FALLBACK_ENCODING = "windows-1252"
"""What a feed that is not UTF-8 and lies about it most likely is (legacy Western CMSs)."""


def declared_encoding(content: bytes) -> str | None:
    """The encoding named in the XML declaration, normalised to Python's codec name."""
    match = XML_DECLARATION.match(content[:512])
    return _codec_name(match.group(1).decode("ascii")) if match else None


def _codec_name(label: str | None) -> str | None:
    """Python's name for an encoding label, or None for a label Python does not know."""
    if not label:
        return None
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _decodes(content: bytes, encoding: str) -> str | None:
    try:
        return content.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_feed(content: bytes, *, http_charset: str | None = None, url: str = "feed") -> str:
    """The feed as text, decoded with the encoding its bytes are really in.

    Valid UTF-8 with non-ASCII characters is almost never anything else, so it wins over any
    declaration; otherwise the declared, then the server's, then windows-1252 encoding is used.
    """
    for mark, encoding in BYTE_ORDER_MARKS:
        if content.startswith(mark):
            return content.decode(encoding, errors="replace")
    for start, encoding in WIDE_XML_STARTS:
        if content.startswith(start):
            return content.decode(encoding, errors="replace")
    declared = declared_encoding(content)
    text = _decodes(content, "utf-8")
    if text is not None:
        if declared not in (None, "utf-8", "ascii") and not content.isascii():
            logger.warning("%s declares %s but is UTF-8; read as UTF-8", url, declared)
        return text
    for candidate in (declared, _codec_name(http_charset), _codec_name(FALLBACK_ENCODING)):
        if candidate and candidate != "utf-8":
            text = _decodes(content, candidate)
            if text is not None:
                if candidate != declared:
                    logger.warning("%s is not %s; read as %s", url, declared or "UTF-8", candidate)
                return text
    logger.warning("%s has undecodable bytes; read as latin-1", url)
    return content.decode("latin-1")


def html_entities_as_references(text: str) -> str:
    """Replace HTML named entities XML does not know (``&nbsp;``) by numeric references."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in XML_ENTITIES:
            return match.group(0)
        characters = html.entities.html5.get(f"{name};")
        if characters is None:
            return match.group(0)
        return "".join(f"&#{ord(character)};" for character in characters)

    return NAMED_ENTITY.sub(replace, text)


def parse_feed_xml(
    content: bytes, *, http_charset: str | None = None, url: str = "feed"
) -> Element:
    """The feed's root element, or MalformedSourceError saying why there is none."""
    if not content.strip():
        raise MalformedSourceError(f"{url} is empty")
    text = decode_feed(content, http_charset=http_charset, url=url)
    text = html_entities_as_references(XML_DECLARATION_TEXT.sub("", text, count=1))
    try:
        return SafeElementTree.fromstring(text)
    except EntitiesForbidden as exc:
        raise MalformedSourceError(
            f"{url} declares XML entities ({exc.name!r}); refused, as entity expansion and "
            "external entities are a known attack"
        ) from exc
    except DefusedXmlException as exc:
        raise MalformedSourceError(f"{url} uses forbidden XML features: {exc}") from exc
    except ParseError as exc:
        raise MalformedSourceError(f"{url} is not XML ({exc})") from exc

"""The ``rss`` kind: RSS 2.0, RSS 1.0 and Atom feeds, with the images their entries carry.

Feeds hide images in many places: enclosures, Media RSS (``media:content``, ``media:thumbnail``,
``media:group``), and ``<img>`` tags in the entry's HTML. All are gathered, made absolute against
the entry's link, and filtered to http(s). A ``media:group`` holds several renditions of the same
media, so only its best one is taken; thumbnails are only used when an entry has no other image,
because they are small copies of it.

Entries are reported oldest first; the cursor is the newest publication date reported plus the
ids reported at that date, so a second run reports only entries that are new since.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from pydantic import field_validator

from monitor.collectors._common import (
    Watermark,
    absolute_url,
    check_http_url,
    expect_options,
    has_image_extension,
    parse_datetime,
    text_or_none,
    web_image_urls,
)
from monitor.collectors._feeds import parse_feed_xml
from monitor.collectors._html import html_image_sources, html_tiny_image_count, html_to_text
from monitor.collectors.base import (
    CollectorContext,
    CollectorKind,
    CollectorOptions,
    register_kind,
)
from monitor.collectors.junk import declares_tiny
from monitor.domain import CollectedPost, CollectionBatch
from monitor.exceptions import MalformedSourceError

logger = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DUBLIN_CORE = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS1 = "{http://purl.org/rss/1.0/}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)


class RssOptions(CollectorOptions):
    """Options of an ``rss`` source: the feed's URL."""

    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)


@dataclass(frozen=True)
class FeedEntry:
    """One entry as read from the feed, before it becomes a post."""

    entry_id: str
    link: str | None
    title: str | None
    text: str | None
    published: datetime | None
    author_handle: str | None
    author_name: str | None
    image_urls: tuple[str, ...]
    language: str | None
    skipped_images: int = 0
    """Images left out because they declare a 1- or 2-pixel side (tracking pixels)."""


def local_name(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


# --- images --------------------------------------------------------------------------------


def is_image_media(element: Element) -> bool:
    """True when an enclosure or ``media:content`` announces an image (not a declared 1x1 one)."""
    if declares_tiny(element.get("width"), element.get("height")):
        return False
    medium = (element.get("medium") or "").lower()
    media_type = (element.get("type") or "").lower()
    if medium or media_type:
        return medium == "image" or media_type.startswith("image/")
    return has_image_extension(element.get("url") or element.get("href") or "")


def best_in_group(group: Element) -> str | None:
    """The one rendition of a ``media:group`` to use: the default, else the largest image."""
    images = [content for content in group.findall(f"{MEDIA}content") if is_image_media(content)]
    for content in images:
        if (content.get("isDefault") or "").lower() == "true":
            return content.get("url")
    if images:
        return max(images, key=_pixel_count).get("url")
    thumbnail = group.find(f"{MEDIA}thumbnail")
    return thumbnail.get("url") if thumbnail is not None else None


def _pixel_count(element: Element) -> int:
    width, height = element.get("width") or "", element.get("height") or ""
    return int(width) * int(height) if width.isdigit() and height.isdigit() else 0


def entry_images(entry: Element, body_images: Iterable[str]) -> list[str]:
    """Every image reference of an entry, as written (relative ones resolved by the caller).

    ``body_images`` are the ``<img>`` sources of the entry's HTML or XHTML body.
    """
    found: list[str | None] = []
    for enclosure in entry.findall("enclosure"):
        if is_image_media(enclosure):
            found.append(enclosure.get("url"))
    for link in entry.findall(f"{ATOM}link"):
        if link.get("rel") == "enclosure" and is_image_media(link):
            found.append(link.get("href"))
    found += [c.get("url") for c in entry.findall(f"{MEDIA}content") if is_image_media(c)]
    found += [best_in_group(group) for group in entry.findall(f"{MEDIA}group")]
    found += body_images
    if not any(found):
        found += [thumbnail.get("url") for thumbnail in entry.findall(f"{MEDIA}thumbnail")]
    return [reference for reference in found if reference]


def tiny_media_count(entry: Element) -> int:
    """How many media elements of an entry declare a 1- or 2-pixel side (left out as pixels)."""
    media = [*entry.findall(f"{MEDIA}content"), *entry.findall(f"{MEDIA}thumbnail")]
    for group in entry.findall(f"{MEDIA}group"):
        media += group.findall(f"{MEDIA}content")
    return sum(1 for element in media if declares_tiny(element.get("width"), element.get("height")))


def resolve_images(references: list[str], base: str | None, *, post: str) -> tuple[str, ...]:
    """Absolute http(s) image URLs; relative references resolve against ``base``."""
    return web_image_urls((absolute_url(reference, base) for reference in references), post=post)


# --- RSS 2.0 and RSS 1.0 -------------------------------------------------------------------


def rss_entries(root: Element, feed_url: str) -> Iterator[FeedEntry]:
    """The items of an RSS 2.0 (``<rss>``) or RSS 1.0 (``<rdf:RDF>``) feed."""
    namespace = RSS1 if root.tag == f"{RDF}RDF" else ""
    channel = root.find(f"{namespace}channel")
    if channel is None:
        channel = Element("channel")
    feed_base = absolute_url(channel.findtext(f"{namespace}link"), feed_url) or feed_url
    language = text_or_none(channel.findtext("language")) or text_or_none(
        channel.findtext(f"{DUBLIN_CORE}language")
    )
    # RSS 2.0 nests items in the channel; RSS 1.0 and some 0.9x feeds put them beside it.
    items = channel.findall(f"{namespace}item") or root.findall(f"{namespace}item")
    for item in items:
        entry = rss_entry(item, namespace, feed_base, language)
        if entry is not None:
            yield entry


def rss_entry(
    item: Element, namespace: str, feed_base: str, language: str | None
) -> FeedEntry | None:
    """One RSS item; None (with a warning) when it has neither a guid nor a link."""
    link = absolute_url(item.findtext(f"{namespace}link"), feed_base)
    guid_element = item.find("guid")
    guid = text_or_none(guid_element.text if guid_element is not None else None)
    guid = guid or text_or_none(item.get(f"{RDF}about"))
    permalink = guid_element is not None and guid_element.get("isPermaLink", "true") == "true"
    if link is None and guid and permalink:
        link = absolute_url(guid, feed_base)
    entry_id = guid or link
    if entry_id is None:
        logger.warning("skipped an item of %s without guid or link", feed_base)
        return None
    description = item.findtext(f"{namespace}description")
    encoded = item.findtext(f"{CONTENT}encoded")
    creator = text_or_none(item.findtext(f"{DUBLIN_CORE}creator"))
    published = item.findtext("pubDate") or item.findtext(f"{DUBLIN_CORE}date")
    base = link or feed_base
    return FeedEntry(
        entry_id=entry_id,
        link=link,
        title=html_to_text(item.findtext(f"{namespace}title")),
        text=html_to_text(description) or html_to_text(encoded),
        published=parse_datetime(published),
        author_handle=text_or_none(item.findtext("author")) or creator,
        author_name=creator,
        image_urls=resolve_images(
            entry_images(item, html_image_sources(description) + html_image_sources(encoded)),
            base,
            post=entry_id,
        ),
        language=language,
        skipped_images=tiny_media_count(item)
        + html_tiny_image_count(description)
        + html_tiny_image_count(encoded),
    )


# --- Atom ----------------------------------------------------------------------------------


def atom_entries(root: Element, feed_url: str) -> Iterator[FeedEntry]:
    """The entries of an Atom feed, honouring ``xml:base``."""
    feed_base = absolute_url(root.get(XML_BASE), feed_url) or feed_url
    language = text_or_none(root.get(XML_LANG))
    for element in root.findall(f"{ATOM}entry"):
        entry = atom_entry(element, feed_base, language)
        if entry is not None:
            yield entry


def atom_link(entry: Element, base: str) -> str | None:
    """The entry's alternate link (a link without ``rel`` is an alternate one)."""
    for link in entry.findall(f"{ATOM}link"):
        if (link.get("rel") or "alternate") == "alternate":
            return absolute_url(link.get("href"), base)
    return None


def atom_text(element: Element | None) -> tuple[str | None, list[str]]:
    """The plain text and image sources of an Atom text construct (text, html or xhtml)."""
    if element is None:
        return None, []
    kind = (element.get("type") or "text").lower()
    if kind == "xhtml":
        sources = [
            node.get("src") or ""
            for node in element.iter()
            if local_name(node.tag) == "img"
            and not declares_tiny(node.get("width"), node.get("height"))
        ]
        return text_or_none(" ".join("".join(element.itertext()).split())), sources
    if kind in ("html", "text/html"):
        return html_to_text(element.text), html_image_sources(element.text)
    return text_or_none(element.text), []


def atom_entry(entry: Element, feed_base: str, language: str | None) -> FeedEntry | None:
    """One Atom entry; None (with a warning) when it has neither an id nor a link."""
    base = absolute_url(entry.get(XML_BASE), feed_base) or feed_base
    link = atom_link(entry, base)
    entry_id = text_or_none(entry.findtext(f"{ATOM}id")) or link
    if entry_id is None:
        logger.warning("skipped an entry of %s without id or link", feed_base)
        return None
    title, _ = atom_text(entry.find(f"{ATOM}title"))
    summary, summary_images = atom_text(entry.find(f"{ATOM}summary"))
    content, content_images = atom_text(entry.find(f"{ATOM}content"))
    author = entry.find(f"{ATOM}author")
    author_name = text_or_none(author.findtext(f"{ATOM}name")) if author is not None else None
    author_uri = text_or_none(author.findtext(f"{ATOM}uri")) if author is not None else None
    published = entry.findtext(f"{ATOM}published") or entry.findtext(f"{ATOM}updated")
    references = entry_images(entry, summary_images + content_images)
    image_base = base if entry.get(XML_BASE) else (link or base)
    return FeedEntry(
        entry_id=entry_id,
        link=link,
        title=title,
        text=summary or content,
        published=parse_datetime(published),
        author_handle=author_uri or author_name,
        author_name=author_name,
        image_urls=resolve_images(references, image_base, post=entry_id),
        language=text_or_none(entry.get(XML_LANG)) or language,
        skipped_images=tiny_media_count(entry) + _tiny_in_text(entry, "summary", "content"),
    )


def _tiny_in_text(entry: Element, *names: str) -> int:
    """Declared tiny images in an Atom entry's text constructs (HTML or XHTML)."""
    count = 0
    for name in names:
        element = entry.find(f"{ATOM}{name}")
        if element is None:
            continue
        if (element.get("type") or "").lower() == "xhtml":
            count += sum(
                1
                for node in element.iter()
                if local_name(node.tag) == "img"
                and declares_tiny(node.get("width"), node.get("height"))
            )
        else:
            count += html_tiny_image_count(element.text)
    return count


# --- the collector -------------------------------------------------------------------------


def read_feed(content: bytes, *, url: str, http_charset: str | None = None) -> list[FeedEntry]:
    """Every entry of an RSS or Atom document, or MalformedSourceError if it is not a feed."""
    root = parse_feed_xml(content, http_charset=http_charset, url=url)
    if local_name(root.tag) == "rss" or root.tag == f"{RDF}RDF":
        entries = list(rss_entries(root, url))
    elif root.tag == f"{ATOM}feed":
        entries = list(atom_entries(root, url))
    else:
        raise MalformedSourceError(f"{url} is XML but not an RSS or Atom feed (<{root.tag}>)")
    unique: dict[str, FeedEntry] = {}
    for entry in entries:
        unique.setdefault(entry.entry_id, entry)  # feeds sometimes list an entry twice
    return list(unique.values())


def post_text(entry: FeedEntry) -> str | None:
    """Title and body as one text, without repeating a body that only restates the title."""
    parts = [entry.title] if entry.title else []
    if entry.text and entry.text != entry.title:
        parts.append(entry.text)
    return "\n\n".join(parts) or None


class RssCollector:
    """Reports a feed's entries that are newer than the cursor, oldest first."""

    def __init__(self, url: str, *, http: Any) -> None:
        self.url = url
        self.http = http
        self.platform = f"rss:{url}"

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """The next ``limit`` new entries of the feed and the cursor after them."""
        response = self.http.get(self.url, headers={"Accept": ACCEPT})
        entries = read_feed(response.content, url=self.url, http_charset=response.charset)
        watermark = Watermark.from_cursor(cursor)
        undated_seen = set((cursor or {}).get("undated_seen") or [])
        undated = [entry for entry in entries if entry.published is None]
        dated = sorted(
            (e for e in entries if e.published and watermark.is_new(e.published, e.entry_id)),
            key=lambda entry: (entry.published, entry.entry_id),
        )
        chosen = ([e for e in undated if e.entry_id not in undated_seen] + dated)[: max(limit, 0)]
        advanced = watermark.advanced(
            (entry.published, entry.entry_id) for entry in chosen if entry.published
        )
        still_listed = {entry.entry_id for entry in undated}
        undated_seen = (undated_seen & still_listed) | {
            entry.entry_id for entry in chosen if entry.published is None
        }
        next_cursor: dict[str, object] = advanced.to_cursor() or {}
        if undated_seen:
            next_cursor["undated_seen"] = sorted(undated_seen)
        return CollectionBatch(
            posts=[self._post(entry) for entry in chosen], cursor=next_cursor or None
        )

    def _post(self, entry: FeedEntry) -> CollectedPost:
        return CollectedPost(
            platform=self.platform,
            external_id=entry.entry_id,
            url=entry.link,
            author_handle=entry.author_handle,
            text=post_text(entry),
            created_at=entry.published,
            image_urls=entry.image_urls,
            author_name=entry.author_name,
            language=entry.language,
            skipped_images=entry.skipped_images,
        )


def build(options: CollectorOptions, context: CollectorContext) -> RssCollector:
    """Build an RSS/Atom collector from validated options."""
    return RssCollector(expect_options(options, RssOptions).url, http=context.http)


register_kind(
    CollectorKind(
        name="rss",
        options_model=RssOptions,
        build=build,
        description="An RSS or Atom feed; images from enclosures, Media RSS and the entry's HTML.",
    )
)

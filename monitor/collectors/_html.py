"""Plain text and image sources out of the HTML that feeds and Mastodon put in their posts.

Posts carry HTML (RSS descriptions, Mastodon ``content``); the pipeline wants readable text and the
``<img src>`` URLs. The standard library's forgiving HTMLParser copes with the broken markup found
in the wild and decodes HTML entities (``&eacute;``, ``&#8217;``) on the way.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from monitor.collectors.junk import declares_tiny

BLOCK_TAGS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
)
INVISIBLE_TAGS = frozenset({"script", "style", "template"})


class _PostHTMLParser(HTMLParser):
    """Collects the visible text and the ``src`` of every ``<img>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.image_sources: list[str] = []
        self.tiny_images = 0
        self._invisible_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in INVISIBLE_TAGS:
            self._invisible_depth += 1
        elif tag in BLOCK_TAGS:
            self.pieces.append("\n")
        if tag == "img":
            attributes = dict(attrs)
            source = attributes.get("src")
            if not source or not source.strip():
                return
            if declares_tiny(attributes.get("width"), attributes.get("height")):
                self.tiny_images += 1  # a tracking pixel or spacer, not a picture
            else:
                self.image_sources.append(source.strip())

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in INVISIBLE_TAGS:
            self._invisible_depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in INVISIBLE_TAGS:
            self._invisible_depth = max(0, self._invisible_depth - 1)
        elif tag in BLOCK_TAGS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._invisible_depth:
            self.pieces.append(data)


def _parse(markup: str) -> _PostHTMLParser:
    parser = _PostHTMLParser()
    parser.feed(markup)
    parser.close()
    return parser


def _tidy(text: str) -> str:
    """Collapse runs of spaces inside lines and blank lines between them."""
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def html_to_text(markup: str | None) -> str | None:
    """The visible text of an HTML fragment (None when there is none)."""
    if not markup:
        return None
    text = _tidy("".join(_parse(markup).pieces))
    return text or None


def html_image_sources(markup: str | None) -> list[str]:
    """The ``src`` of every ``<img>`` in an HTML fragment, in document order, as written.

    Images declaring a width or height of 1 or 2 pixels (tracking pixels) are left out; see
    ``html_tiny_image_count``.
    """
    if not markup:
        return []
    return _parse(markup).image_sources


def html_tiny_image_count(markup: str | None) -> int:
    """How many ``<img>`` of an HTML fragment declare a 1- or 2-pixel side (left out above)."""
    return _parse(markup).tiny_images if markup else 0

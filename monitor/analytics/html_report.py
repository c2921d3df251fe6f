"""The brand report as one self-contained HTML page an analyst can forward.

Pure rendering: figures, chart data and gallery cards in, one HTML string out; no database here.
The page opens from an email attachment with no server and no internet: styles are inline, the chart
is inline SVG, stored photos are ``data:`` URIs (only where the store kept none does a card point
at the photo's original URL).

Safe by construction, because post texts, author names and URLs come from strangers:
- every value is written through ``_text`` or ``_attribute`` (``html.escape`` with quotes), and
  nothing from a post is ever placed in a ``style``, a ``script`` or an event attribute;
- only http(s) URLs become links or image sources (``safe_url``); anything else is shown as text;
- the page carries a Content-Security-Policy that allows no script at all, so even a mistake in
  escaping could not run one.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from monitor.analytics.gallery import Gallery, GalleryItem, account_url
from monitor.analytics.report import BrandReport
from monitor.analytics.trend import Trend

PLATFORM_COLOURS = ("#3b6fb6", "#d9822b", "#4a9a5b", "#a04f9e", "#6b7a8f", "#c8553d")
BOX_COLOUR = "#ffd000"
"""The detection box's colour; nothing else on the page uses it (the browser test looks for it)."""
BOX_BORDER_PIXELS = 3
"""The box's border, inside its edges: the box's outer edge is the detection's edge."""

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

CHART_WIDTH, CHART_HEIGHT = 900, 260
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 52, 12, 14, 34
CHART_LABELS = 12

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;
margin:0;background:#f4f6f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.muted{color:#5b6474}.figures{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.figure{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 16px;min-width:150px}
.figure strong{display:block;font-size:24px}
section{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:4px 18px 16px;
margin:16px 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;
border-bottom:1px solid #e8ebf0}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:6px 0 0}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px;
align-items:start}
.card{margin:0;background:#fafbfc;border:1px solid #dde2ea;border-radius:8px;overflow:hidden}
.photo{position:relative;width:100%;background:#d9dee6}
.photo img{position:absolute;left:0;top:0;width:100%;height:100%;display:block}
.photo .none{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;
color:#5b6474}
figcaption{padding:8px 10px 10px}figcaption p{margin:2px 0;overflow-wrap:anywhere}
.prob{font-variant-numeric:tabular-nums;background:#1d2430;color:#fff;border-radius:4px;
padding:0 5px;margin-left:4px}.excerpt{color:#333b48}.url{color:#5b6474}
a{color:#1f5fbf}
.columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:18px}
"""
BOX_STYLE = (
    f".box{{position:absolute;box-sizing:border-box;border:{BOX_BORDER_PIXELS}px solid "
    f"{BOX_COLOUR};outline:1px solid rgba(0,0,0,.7)}}"
)


def render_report_html(
    *, report: BrandReport, trend: Trend, gallery: Gallery, generated_at: datetime
) -> str:
    """The whole page for one brand report."""
    title = f"{report.brand}: brand report"
    body = [
        f"<h1>{_text(title)}</h1>",
        f'<p class="muted">{_text(_window(report))} · generated '
        f"{_text(generated_at.strftime('%Y-%m-%d %H:%M %Z').strip())}</p>",
        _figures(report, trend),
        _trend_section(trend),
        _accounts_section(report),
        _coendorsed_section(report),
        _sources_section(report),
        _gallery_section(
            "Most confident posts",
            "The posts where the model is surest it sees the brand.",
            gallery.confident,
        ),
        _gallery_section(
            "A random sample of the other posts",
            f"The spot check: posts drawn at random from the rest (seed {gallery.seed}; "
            "the same seed draws the same sample).",
            gallery.sample,
        ),
        _gallery_section(
            "Low-confidence detections",
            f"Doubtful ones for a reviewer, least sure first: {gallery.doubt_rule}.",
            gallery.doubtful,
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_attribute(CONTENT_SECURITY_POLICY)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_text(title)}</title><style>{STYLE}{BOX_STYLE}</style></head>\n"
        f"<body><main>\n{''.join(body)}\n</main></body></html>\n"
    )


# --- escaping and links ------------------------------------------------------------------------


def _text(value: object) -> str:
    """Any value as HTML text."""
    return html.escape("-" if value is None else str(value), quote=True)


def _attribute(value: object) -> str:
    """Any value inside a double-quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host; None for anything a link must not be.

    ``javascript:``, ``data:``, ``file:`` and relative URLs are refused, and so are URLs with
    whitespace or control characters (browsers drop some of those, which can turn a harmless-looking
    scheme into a dangerous one).
    """
    if not url or any(character.isspace() or ord(character) < 32 for character in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _link(url: str | None, label: str) -> str:
    """``label`` linked to ``url`` where that is http(s); the label alone otherwise."""
    href = safe_url(url)
    if href is None:
        return _text(label)
    return (
        f'<a href="{_attribute(href)}" rel="noopener noreferrer nofollow" target="_blank">'
        f"{_text(label)}</a>"
    )


# --- figures and tables ------------------------------------------------------------------------


def _window(report: BrandReport) -> str:
    """The window asked for; where open-ended, the days of the first and last post shown."""
    days = [str(row.get("day")) for row in report.by_day]
    first = report.since.isoformat() if report.since else (days[0] if days else "first post")
    last = report.until.isoformat() if report.until else (days[-1] if days else "last post")
    return f"{first} to {last}"


def _figures(report: BrandReport, trend: Trend) -> str:
    share = "-" if report.image_only_share is None else f"{report.image_only_share:.0%}"
    figures = [
        ("detections", f"{report.detections:,}"),
        ("posts showing the brand", f"{report.posts:,}"),
        ("reach (followers, summed over posts)", f"{trend.reach:,}"),
        (f"image-only posts ({report.image_only_posts:,})", share),
    ]
    cells = "".join(
        f'<div class="figure"><strong>{_text(value)}</strong><span class="muted">{_text(name)}</span></div>'
        for name, value in figures
    )
    return f'<div class="figures">{cells}</div>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """A table whose cells are already HTML (escaped by the caller)."""
    head = "".join(
        f'<th class="n">{_text(h)}</th>' if i in numeric else f"<th>{_text(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value: object) -> str:
    """Counts with thousands separators (PostgreSQL's sums arrive as Decimal)."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    return _text(f"{value:,}" if isinstance(value, int) else value)


def _accounts_section(report: BrandReport) -> str:
    if not report.top_authors:
        return ""
    rows = [
        [
            _link(account_url(row.get("platform"), row.get("author")), str(row.get("author"))),
            _text(row.get("platform")),
            _number(row.get("posts")),
            _number(row.get("followers")),
            _number(row.get("reach")),
        ]
        for row in report.top_authors
    ]
    table = _table(["account", "platform", "posts", "followers", "reach"], rows, {2, 3, 4})
    return f"<section><h2>Top accounts</h2>{table}</section>"


def _coendorsed_section(report: BrandReport) -> str:
    if not report.co_endorsed_brands:
        return (
            "<section><h2>Also shown by the same accounts</h2>"
            '<p class="muted">No other brand in these accounts\' posts.</p></section>'
        )
    rows = [
        [_text(row.get("brand")), _number(row.get("accounts"))] for row in report.co_endorsed_brands
    ]
    table = _table(["brand", "accounts showing both"], rows, {1})
    return f"<section><h2>Also shown by the same accounts</h2>{table}</section>"


def _sources_section(report: BrandReport) -> str:
    """Posts per platform and per source, and how sure the model was, side by side."""
    if not report.platforms and not report.sources:
        return ""
    platforms = _table(
        ["platform", "posts"],
        [[_text(row.get("platform")), _number(row.get("posts"))] for row in report.platforms],
        {1},
    )
    sources = _table(
        ["source", "posts"],
        [[_text(row.get("source")), _number(row.get("posts"))] for row in report.sources],
        {1},
    )
    confidence = _table(
        ["probability", "detections"],
        [
            [
                _text(f"{row.get('from', 0):.1f} to {row.get('to', 1):.1f}"),
                _number(row.get("detections")),
            ]
            for row in report.probability_histogram
        ],
        {1},
    )
    return (
        '<section><h2>Platforms, sources and confidence</h2><div class="columns">'
        f"<div>{platforms}</div><div>{sources}</div><div>{confidence}</div></div></section>"
    )


# --- the chart ---------------------------------------------------------------------------------


def _trend_section(trend: Trend) -> str:
    title = f"Posts per {trend.period}, by platform"
    if not trend.periods:
        return f'<section><h2>{_text(title)}</h2><p class="muted">No posts in this window.</p></section>'
    totals = {name: 0 for name in trend.platforms}
    for period in trend.periods:
        for name, posts in period.posts.items():
            totals[name] = totals.get(name, 0) + posts
    legend = "".join(
        f'<span><span class="swatch" style="background:{_colour(index)}"></span>'
        f"{_text(name)} ({totals[name]:,})</span>"
        for index, name in enumerate(trend.platforms)
    )
    return (
        f"<section><h2>{_text(title)}</h2>{_chart_svg(trend)}"
        f'<div class="legend">{legend}</div></section>'
    )


def _colour(index: int) -> str:
    return PLATFORM_COLOURS[index % len(PLATFORM_COLOURS)]


def _axis_top(highest: int) -> tuple[int, int]:
    """A round top for the y axis and its step (four gridlines)."""
    raw_step = max(highest, 1) / 4
    magnitude = 10 ** math.floor(math.log10(raw_step)) if raw_step >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    step = max(math.ceil(step), 1)
    return step * 4, step


def _chart_svg(trend: Trend) -> str:
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    top, step = _axis_top(max(period.total for period in trend.periods))
    slot = plot_width / len(trend.periods)
    bar = max(slot * 0.8, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="100%" role="img" aria-label="posts per {_attribute(trend.period)}">'
    ]
    for value in range(0, top + 1, step):
        y = CHART_TOP + plot_height * (1 - value / top)
        parts.append(
            f'<line x1="{CHART_LEFT}" x2="{CHART_WIDTH - CHART_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e1e5ec"/><text x="{CHART_LEFT - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#5b6474">{value:,}</text>'
        )
    every = max(1, math.ceil(len(trend.periods) / CHART_LABELS))
    for index, period in enumerate(trend.periods):
        x = CHART_LEFT + index * slot + (slot - bar) / 2
        parts.extend(_stack(trend, period_index=index, x=x, width=bar, top=top))
        if index % every == 0:
            label = f"{period.start:%b} {period.start.day}"
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{CHART_HEIGHT - CHART_BOTTOM + 16}" '
                f'font-size="11" text-anchor="middle" fill="#5b6474">{_text(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _stack(trend: Trend, *, period_index: int, x: float, width: float, top: int) -> list[str]:
    """One period's bar: a rectangle per platform, stacked from the axis up."""
    period = trend.periods[period_index]
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    base = float(CHART_TOP + plot_height)
    shapes = []
    for index, name in enumerate(trend.platforms):
        posts = period.posts.get(name, 0)
        if not posts:
            continue
        height = plot_height * posts / top
        base -= height
        tip = f"{period.start.isoformat()} · {name}: {posts:,} posts"
        shapes.append(
            f'<rect x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{_colour(index)}"><title>{_text(tip)}</title></rect>'
        )
    return shapes


# --- the gallery -------------------------------------------------------------------------------


def _gallery_section(title: str, intro: str, items: Sequence[GalleryItem]) -> str:
    cards = "".join(_card(item) for item in items)
    content = f'<div class="grid">{cards}</div>' if items else '<p class="muted">None.</p>'
    return f'<section><h2>{_text(title)}</h2><p class="muted">{_text(intro)}</p>{content}</section>'


def _card(item: GalleryItem) -> str:
    """One post: the photo with its box, then brand, probability, author, date, text, link."""
    when = item.posted_at.strftime("%Y-%m-%d %H:%M") if item.posted_at else "date unknown"
    excerpt = f'<p class="excerpt">{_text(item.text_excerpt)}</p>' if item.text_excerpt else ""
    return (
        f'<figure class="card" data-detection="{item.detection_id}">{_photo(item)}'
        f"<figcaption><p><strong>{_text(item.brand)}</strong>"
        f'<span class="prob">{item.probability:.2f}</span></p>'
        f'<p>{_author(item)} <span class="muted">· {_text(item.platform)} · {_text(when)}</span>'
        f"</p>{excerpt}<p>{_post_link(item.post_url)}</p></figcaption></figure>"
    )


def _author(item: GalleryItem) -> str:
    """The author's name (linked to the account where known), with the handle when it differs."""
    label = item.author_name or item.author or "unknown author"
    shown = _link(item.author_url, label)
    if item.author_name and item.author and item.author != item.author_name:
        shown += f' <span class="muted">{_text(item.author)}</span>'
    return shown


def _post_link(url: str | None) -> str:
    if not url:
        return '<span class="muted">no link to the post</span>'
    if safe_url(url) is None:
        return f'<span class="url">{_text(url)}</span>'  # shown, not clickable
    return _link(url, "open the post")


def _photo(item: GalleryItem) -> str:
    """The photo with the detection's box laid over it, placed in percent of the photo's size."""
    width, height = item.image_width, item.image_height
    sized = bool(width and height and width > 0 and height > 0)
    ratio = f"aspect-ratio:{width}/{height}" if sized else "aspect-ratio:4/3"
    source = _image_source(item)
    alt = _attribute(f"photo in the post by {item.author or 'unknown author'}")
    if source is None:
        picture = '<div class="none">photo not kept</div>'
    elif source.startswith("data:"):
        picture = f'<img src="{_attribute(source)}" alt="{alt}">'
    else:  # the original URL: the page is opened offline too, so nothing else is sent along
        picture = f'<img referrerpolicy="no-referrer" src="{_attribute(source)}" alt="{alt}">'
    box = _box(item) if sized else ""
    return f'<div class="photo" style="{ratio}">{picture}{box}</div>'


def _image_source(item: GalleryItem) -> str | None:
    if item.image_bytes is not None and item.image_media_type in IMAGE_MEDIA_TYPES:
        encoded = base64.b64encode(item.image_bytes).decode("ascii")
        return f"data:{item.image_media_type};base64,{encoded}"
    return safe_url(item.image_url)


def _box(item: GalleryItem) -> str:
    if item.box is None or not item.image_width or not item.image_height:
        return ""
    x1, y1, x2, y2 = item.box
    left, right = sorted((_percent(x1, item.image_width), _percent(x2, item.image_width)))
    top, bottom = sorted((_percent(y1, item.image_height), _percent(y2, item.image_height)))
    tip = f"{item.brand} {item.probability:.2f}"
    return (
        f'<div class="box" title="{_attribute(tip)}" style="left:{left:.3f}%;top:{top:.3f}%;'
        f'width:{right - left:.3f}%;height:{bottom - top:.3f}%"></div>'
    )


def _percent(value: int, whole: int) -> float:
    return min(max(value / whole * 100.0, 0.0), 100.0)


__all__ = ["render_report_html", "safe_url"]

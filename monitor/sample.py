"""The demo's own sample: invented brand marks placed into generated scenes.

The quick start has to run with nothing from outside (no dataset download, no real brands' logos),
so it renders its data: four invented brands, each a coloured shape with its name, pasted at random
size, place and tilt into "photos" made of gradients, noise, shapes, lines and scraps of text. The
same generator writes a training set (folder per brand, plus logo-free negatives) and an export of
social-media posts that show those brands the way real posts do: mostly in the picture, rarely in the
words, and some authors far more often than others.

Everything is drawn from one ``random.Random`` so a seed always gives the same files.
"""

from __future__ import annotations

import json
import math
import os
import random
import string
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from monitor.domain import Box
from monitor.exceptions import DatasetError

__all__ = [
    "DEMO_BRANDS",
    "compose_post_image",
    "place_mark",
    "plan_sample_posts",
    "render_brand_mark",
    "render_scene",
    "write_sample_posts",
    "write_training_set",
]

DEMO_BRANDS: tuple[str, ...] = ("acme", "globex", "initech", "umbrella")
"""Invented brands: the sample must not show anyone's real trademark."""

MIN_SIDE, MAX_SIDE = 320, 640
"""Width and height of generated images, in pixels."""

MARK_SIDE = 256
"""Side at which marks are rendered before being scaled into a scene."""

MARK_SCALE = (0.10, 0.45)
"""A placed mark's side as a fraction of the scene's shorter side."""

MAX_TILT_DEGREES = 12.0
GRADIENT_GRID = 32
JPEG_QUALITY = 88
POST_WINDOW = timedelta(days=14)
TWO_BRAND_SHARE, NO_BRAND_SHARE = 0.10, 0.20
TEXT_MENTION_SHARE = 0.15
FAVOURITE_SHARE = 0.75

RGB = tuple[int, int, int]


# --- brand marks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkStyle:
    """How one brand's mark looks: a shape drawn in two colours above the brand's name."""

    shape: str
    colour: RGB
    accent: RGB


SHAPES = ("bolt", "globe", "stripes", "segments")
DEMO_STYLES: dict[str, MarkStyle] = {
    "acme": MarkStyle("bolt", (214, 40, 40), (252, 191, 73)),
    "globex": MarkStyle("globe", (29, 78, 216), (147, 197, 253)),
    "initech": MarkStyle("stripes", (21, 128, 61), (255, 255, 255)),
    "umbrella": MarkStyle("segments", (123, 44, 191), (255, 255, 255)),
}


def mark_style(brand: str) -> MarkStyle:
    """The demo brands' fixed styles; any other name gets a stable style derived from it."""
    if brand in DEMO_STYLES:
        return DEMO_STYLES[brand]
    rng = random.Random(zlib.crc32(brand.encode("utf-8")))
    colour = (rng.randint(0, 180), rng.randint(0, 180), rng.randint(0, 180))
    accent = (rng.randint(150, 255), rng.randint(150, 255), rng.randint(150, 255))
    return MarkStyle(rng.choice(SHAPES), colour, accent)


def render_brand_mark(brand: str, size: int) -> Image.Image:
    """The brand's mark as a ``size`` x ``size`` RGBA image on a transparent background.

    Drawn at twice the size and scaled down, because PIL draws shapes without anti-aliasing.
    """
    if not brand.strip():
        raise ValueError("brand must be a non-empty name")
    if size < 32:
        raise ValueError(f"mark size must be at least 32 pixels, got {size}")
    style = mark_style(brand)
    canvas_side = size * 2
    canvas = Image.new("RGBA", (canvas_side, canvas_side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    unit = canvas_side / 100
    SHAPE_PAINTERS[style.shape](draw, style, unit)
    _draw_name(draw, brand.upper(), style.colour, unit)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def _scaled(points: Sequence[tuple[float, float]], unit: float) -> list[tuple[float, float]]:
    """Points given on a 100 x 100 grid, in canvas pixels."""
    return [(x * unit, y * unit) for x, y in points]


def _paint_bolt(draw: ImageDraw.ImageDraw, style: MarkStyle, unit: float) -> None:
    """A filled disc crossed by a lightning bolt."""
    draw.ellipse(_scaled([(18, 4), (82, 68)], unit), fill=style.colour)
    bolt = [(55, 10), (32, 40), (48, 40), (40, 62), (68, 30), (52, 30), (60, 10)]
    draw.polygon(_scaled(bolt, unit), fill=style.accent)


def _paint_globe(draw: ImageDraw.ImageDraw, style: MarkStyle, unit: float) -> None:
    """A globe: a light disc with a thick rim, meridians and parallels."""
    width = max(2, round(4 * unit))
    draw.ellipse(_scaled([(18, 4), (82, 68)], unit), fill=style.accent, outline=style.colour)
    draw.ellipse(_scaled([(18, 4), (82, 68)], unit), outline=style.colour, width=width)
    draw.ellipse(_scaled([(36, 4), (64, 68)], unit), outline=style.colour, width=width)
    for y in (20, 36, 52):
        half = math.sqrt(max(0.0, 32**2 - (y - 36) ** 2))
        draw.line(_scaled([(50 - half, y), (50 + half, y)], unit), fill=style.colour, width=width)


def _paint_stripes(draw: ImageDraw.ImageDraw, style: MarkStyle, unit: float) -> None:
    """A rounded square with three slanted bars."""
    draw.rounded_rectangle(_scaled([(18, 4), (82, 68)], unit), radius=12 * unit, fill=style.colour)
    for offset in (0, 16, 32):
        bar = [(26 + offset, 60), (38 + offset, 60), (52 + offset, 12), (40 + offset, 12)]
        draw.polygon(_scaled(bar, unit), fill=style.accent)


def _paint_segments(draw: ImageDraw.ImageDraw, style: MarkStyle, unit: float) -> None:
    """A disc of eight segments in alternating colours, with a rim."""
    box = _scaled([(18, 4), (82, 68)], unit)
    for segment in range(8):
        fill = style.colour if segment % 2 == 0 else style.accent
        draw.pieslice(box, start=segment * 45 - 90, end=segment * 45 - 45, fill=fill)
    draw.ellipse(box, outline=style.colour, width=max(2, round(3 * unit)))


SHAPE_PAINTERS: dict[str, Callable[[ImageDraw.ImageDraw, MarkStyle, float], None]] = {
    "bolt": _paint_bolt,
    "globe": _paint_globe,
    "stripes": _paint_stripes,
    "segments": _paint_segments,
}


def _draw_name(draw: ImageDraw.ImageDraw, name: str, colour: RGB, unit: float) -> None:
    """The name centred under the shape, as large as fits the mark's width."""
    font_size = round(22 * unit)
    font = _font(font_size)
    while draw.textlength(name, font=font) > 94 * unit and font_size > 8:
        font_size -= 2
        font = _font(font_size)
    stroke = max(1, font_size // 14)
    draw.text(
        (50 * unit, 86 * unit),
        name,
        font=font,
        fill=colour,
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=colour,
    )


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's bundled font at ``size`` (no font files needed on the machine)."""
    return ImageFont.load_default(size=size)


# --- scenes --------------------------------------------------------------------------------------


def render_scene(rng: random.Random, *, width: int, height: int) -> Image.Image:
    """A logo-free RGB "photo": gradient, noise, shapes, lines and scraps of text-like clutter."""
    if width < 16 or height < 16:
        raise ValueError(f"scene must be at least 16 x 16 pixels, got {width} x {height}")
    scene = _gradient(rng, width, height)
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(3, 12)):
        _draw_random_shape(draw, rng, width, height)
    for _ in range(rng.randint(2, 8)):
        _draw_random_line(draw, rng, width, height)
    for _ in range(rng.randint(1, 6)):
        _draw_clutter_text(draw, rng, width, height)
    composed = Image.alpha_composite(scene.convert("RGBA"), overlay).convert("RGB")
    if rng.random() < 0.4:
        composed = composed.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    return composed


def _random_colour(rng: random.Random) -> RGB:
    return (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))


def _gradient(rng: random.Random, width: int, height: int) -> Image.Image:
    """A linear gradient between two colours in a random direction, with sensor-like grain.

    The gradient is computed on a small grid and enlarged (it is linear, so nothing is lost);
    the grain is one grey value a pixel, which keeps generation fast.
    """
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:GRADIENT_GRID, 0:GRADIENT_GRID].astype(np.float32)
    position = xs * math.cos(angle) + ys * math.sin(angle)
    position = (position - position.min()) / max(float(np.ptp(position)), 1.0)
    start = np.array(_random_colour(rng), dtype=np.float32)
    end = np.array(_random_colour(rng), dtype=np.float32)
    small = (start + position[..., None] * (end - start)).astype(np.uint8)
    base = Image.fromarray(small, "RGB").resize((width, height), Image.Resampling.BILINEAR)
    generator = np.random.default_rng(rng.getrandbits(32))
    grain = generator.standard_normal((height, width, 1), dtype=np.float32) * rng.uniform(2, 12)
    pixels = np.asarray(base, dtype=np.float32) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _draw_random_shape(
    draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int
) -> None:
    """A translucent rectangle, ellipse or polygon somewhere in the scene."""
    fill = (*_random_colour(rng), rng.randint(60, 220))
    x1, y1 = rng.uniform(-0.1, 0.9) * width, rng.uniform(-0.1, 0.9) * height
    x2, y2 = x1 + rng.uniform(0.05, 0.6) * width, y1 + rng.uniform(0.05, 0.6) * height
    kind = rng.choice(("rectangle", "ellipse", "polygon"))
    if kind == "rectangle":
        draw.rectangle((x1, y1, x2, y2), fill=fill)
    elif kind == "ellipse":
        draw.ellipse((x1, y1, x2, y2), fill=fill)
    else:
        corners = [(rng.uniform(x1, x2), rng.uniform(y1, y2)) for _ in range(rng.randint(3, 6))]
        draw.polygon(corners, fill=fill)


def _draw_random_line(
    draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int
) -> None:
    """A straight line across part of the scene (cables, edges, horizons)."""
    start = (rng.uniform(0, width), rng.uniform(0, height))
    end = (rng.uniform(0, width), rng.uniform(0, height))
    draw.line(
        [start, end], fill=(*_random_colour(rng), rng.randint(80, 255)), width=rng.randint(1, 6)
    )


def _draw_clutter_text(
    draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int
) -> None:
    """A few made-up words (signs, labels, captions) that spell no brand."""
    words = " ".join(_nonsense_word(rng) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.5:
        words = words.upper()
    font = _font(rng.randint(10, 30))
    position = (rng.uniform(0, 0.8) * width, rng.uniform(0, 0.9) * height)
    draw.text(position, words, font=font, fill=(*_random_colour(rng), rng.randint(150, 255)))


def _nonsense_word(rng: random.Random) -> str:
    """Letters and digits that never contain a demo brand's name."""
    alphabet = string.ascii_lowercase + string.digits
    while True:
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 9)))
        if not any(brand in word for brand in DEMO_BRANDS):
            return word


# --- placing marks -------------------------------------------------------------------------------


def place_mark(
    scene: Image.Image, mark: Image.Image, rng: random.Random
) -> tuple[Image.Image, Box]:
    """Paste ``mark`` into a copy of ``scene`` the way a logo shows up in a photo.

    The mark is scaled to 10-45% of the scene's shorter side, tilted by up to 12 degrees, given a
    slight colour shift and blur, and put at a random place where it fits whole. Returns the RGB
    result and the box of the mark's visible pixels.
    """
    short_side = min(scene.size)
    side = max(8, round(short_side * rng.uniform(*MARK_SCALE)))
    prepared = _jitter(mark.convert("RGBA").resize((side, side), Image.Resampling.LANCZOS), rng)
    tilted = prepared.rotate(
        rng.uniform(-MAX_TILT_DEGREES, MAX_TILT_DEGREES),
        resample=Image.Resampling.BICUBIC,
        expand=True,
    )
    visible = tilted.getchannel("A").getbbox()
    if visible is None:
        raise ValueError("the mark has no visible pixels")
    cropped = tilted.crop(visible)
    width, height = cropped.size
    if width > scene.width or height > scene.height:
        raise ValueError(
            f"a {width} x {height} mark does not fit a {scene.width} x {scene.height} scene"
        )
    left = rng.randint(0, scene.width - width)
    top = rng.randint(0, scene.height - height)
    composed = scene.convert("RGB")  # a copy even when already RGB
    composed.paste(cropped, (left, top), cropped)
    return composed, (left, top, left + width, top + height)


def _jitter(mark: Image.Image, rng: random.Random) -> Image.Image:
    """Slight changes of brightness, contrast and saturation, and sometimes a little blur."""
    alpha = mark.getchannel("A")
    colours = mark.convert("RGB")
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        colours = enhancer(colours).enhance(rng.uniform(0.8, 1.2))
    jittered = colours.convert("RGBA")
    jittered.putalpha(alpha)
    if rng.random() < 0.5:
        jittered = jittered.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0)))
    return jittered


def _scene_size(rng: random.Random) -> tuple[int, int]:
    return rng.randint(MIN_SIDE, MAX_SIDE), rng.randint(MIN_SIDE, MAX_SIDE)


def compose_post_image(
    brands: Sequence[str], rng: random.Random, marks: dict[str, Image.Image]
) -> tuple[Image.Image, list[Box]]:
    """A scene showing each of ``brands`` once, the marks not overlapping one another."""
    missing = [brand for brand in brands if brand not in marks]
    if missing:
        raise ValueError(f"no mark given for {', '.join(missing)}")
    width, height = _scene_size(rng)
    image = render_scene(rng, width=width, height=height)
    boxes: list[Box] = []
    for brand in brands:
        for _ in range(100):
            candidate, box = place_mark(image, marks[brand], rng)
            if not any(_overlap(box, other) for other in boxes):
                break
        else:
            raise ValueError(f"could not place {len(brands)} marks apart in {width} x {height}")
        image = candidate
        boxes.append(box)
    return image, boxes


def _overlap(first: Box, second: Box) -> bool:
    return (
        first[0] < second[2]
        and second[0] < first[2]
        and first[1] < second[3]
        and second[1] < first[3]
    )


# --- the training set ----------------------------------------------------------------------------


def write_training_set(
    out_dir: Path, *, per_brand: int = 60, negatives: int = 120, seed: int = 0
) -> Path:
    """Write ``out_dir/train/<brand>/*.jpg`` and ``out_dir/negatives/*.jpg``; returns ``train``.

    The folders are filled in a temporary folder and moved into place at the end, ``train`` last,
    so an existing ``train`` folder is always complete. Existing non-empty folders are refused
    rather than mixed with.
    """
    if per_brand < 1 or negatives < 0:
        raise ValueError(f"need per_brand >= 1 and negatives >= 0, got {per_brand} and {negatives}")
    out_dir.mkdir(parents=True, exist_ok=True)
    train_dir, negatives_dir = out_dir / "train", out_dir / "negatives"
    for target in (train_dir, negatives_dir):
        if target.exists() and any(target.iterdir()):
            raise DatasetError(f"{target} already holds files; write the sample to an empty folder")
    rng = random.Random(seed)
    marks = {brand: render_brand_mark(brand, MARK_SIDE) for brand in DEMO_BRANDS}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".partial-") as partial:
        staging = Path(partial)
        for brand in DEMO_BRANDS:
            for index in range(per_brand):
                image, _ = compose_post_image([brand], rng, marks)
                _save_jpeg(image, staging / "train" / brand / f"{brand}_{index:04d}.jpg")
        (staging / "negatives").mkdir()
        for index in range(negatives):
            width, height = _scene_size(rng)
            scene = render_scene(rng, width=width, height=height)
            _save_jpeg(scene, staging / "negatives" / f"negative_{index:04d}.jpg")
        _move_into_place(staging / "negatives", negatives_dir)
        _move_into_place(staging / "train", train_dir)
    return train_dir


def _save_jpeg(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=JPEG_QUALITY)


def _move_into_place(source: Path, target: Path) -> None:
    """Replace an empty ``target`` folder (or none) by ``source``."""
    if target.exists():
        target.rmdir()  # checked empty before; fails loudly if something appeared meanwhile
    os.replace(source, target)


# --- the sample posts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    """An invented account; ``favourite`` is the brand it posts far more than the others."""

    handle: str
    name: str
    followers: int
    activity: float
    favourite: str | None = None


AUTHORS: tuple[Author, ...] = (
    Author("trailrunner_kim", "Kim Okafor", 48_200, 3.0, "acme"),
    Author("gadget_gus", "Gus Lindqvist", 85_400, 2.5, "initech"),
    Author("vintage.vera", "Vera Mancini", 12_900, 2.0, "umbrella"),
    Author("pixelpaula", "Paula Reyes", 3_150, 1.0),
    Author("urban_hiker", "Tom Becker", 760, 1.0),
    Author("coffeeandcode", "Aiko Tanaka", 21_000, 1.0),
    Author("tinykitchen", "Sam Whitfield", 5_420, 1.0),
    Author("streetlens", "Noor Haddad", 9_870, 1.0, "globex"),
    Author("bookish_bea", "Bea Kowalski", 1_240, 0.8),
    Author("weekendwheels", "Luis Ortega", 30_500, 0.8),
    Author("snapshot_sam", "Sam Adeyemi", 410, 0.6),
    Author("moss_and_maple", "Ingrid Solberg", 2_080, 0.6),
)

CAPTIONS = (
    "Sunday long run done, legs are toast",
    "New desk setup, finally happy with it",
    "Coffee first. Everything else later.",
    "Look what arrived today!",
    "Weekend vibes",
    "Golden hour never disappoints",
    "Can't believe this view",
    "Trying a new recipe tonight",
    "Throwback to last summer",
    "Rainy day, good book",
    "Market finds",
    "Road trip, day 3",
    "Morning commute but make it scenic",
    "Small wins",
    "This little corner of the city",
)

MENTIONS = (
    "Loving my new {brand} gear",
    "Thanks {brand} for this one!",
    "#{brand} all the way",
)


@dataclass(frozen=True)
class PlannedPost:
    """One sample post before its image is drawn; ``brands`` are the marks its image shows."""

    post_id: str
    author: Author
    brands: tuple[str, ...]
    text: str
    created_at: datetime


def plan_sample_posts(rng: random.Random, *, count: int, now: datetime) -> list[PlannedPost]:
    """Who posts what and when, oldest first.

    Exactly ``round(10%)`` of the posts show two brands and ``round(20%)`` none; the rest show one.
    Authors with a favourite brand show it in most of their posts (an endorsement pattern), and
    only some posts name the brand in their text.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    two = round(count * TWO_BRAND_SHARE)
    none = round(count * NO_BRAND_SHARE)
    brand_counts = [2] * two + [0] * none + [1] * (count - two - none)
    rng.shuffle(brand_counts)
    weights = [author.activity for author in AUTHORS]
    posts = []
    for number, shown in enumerate(brand_counts):
        author = rng.choices(AUTHORS, weights=weights)[0]
        brands = _choose_brands(rng, author, shown)
        posts.append(
            PlannedPost(
                post_id=str(112_000_000_000_000_000 + number * 7_919 + rng.randrange(7_919)),
                author=author,
                brands=brands,
                text=_caption(rng, brands),
                created_at=now - timedelta(seconds=rng.uniform(0, POST_WINDOW.total_seconds())),
            )
        )
    return sorted(posts, key=lambda post: post.created_at)


def _choose_brands(rng: random.Random, author: Author, shown: int) -> tuple[str, ...]:
    """``shown`` distinct brands, the author's favourite first when it wins its (large) share."""
    chosen: list[str] = []
    if shown and author.favourite and rng.random() < FAVOURITE_SHARE:
        chosen.append(author.favourite)
    others = [brand for brand in DEMO_BRANDS if brand not in chosen]
    chosen.extend(rng.sample(others, shown - len(chosen)))
    return tuple(chosen)


def _caption(rng: random.Random, brands: tuple[str, ...]) -> str:
    """Most captions do not name the brand; a few do."""
    caption = rng.choice(CAPTIONS)
    if brands and rng.random() < TEXT_MENTION_SHARE:
        mention = rng.choice(MENTIONS).format(brand=brands[0].capitalize())
        caption = f"{caption}. {mention}"
    return caption


def write_sample_posts(
    out_dir: Path, *, count: int = 40, seed: int = 1, now: datetime | None = None
) -> Path:
    """Write ``out_dir/images/*.jpg`` and ``out_dir/posts.jsonl``; returns the posts.jsonl path.

    One JSON post per line (id, author, author_name, followers, url, text, created_at, images with
    paths relative to posts.jsonl), spread over the 14 days before ``now`` (default: the current
    hour, so the demo's posts are recent). The same seed and ``now`` give the same files.
    posts.jsonl is written last and atomically, so its presence means the images are there.
    """
    moment = (
        now if now is not None else datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    planned = plan_sample_posts(rng, count=count, now=moment.astimezone(UTC))
    marks = {brand: render_brand_mark(brand, MARK_SIDE) for brand in DEMO_BRANDS}
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for post in planned:
        image, _ = compose_post_image(post.brands, rng, marks)
        relative = f"images/{post.post_id}.jpg"
        _save_jpeg(image, out_dir / relative)
        lines.append(json.dumps(_post_record(post, relative), ensure_ascii=False))
    posts_path = out_dir / "posts.jsonl"
    partial = out_dir / ".posts.jsonl.partial"
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, posts_path)
    return posts_path


def _post_record(post: PlannedPost, image: str) -> dict[str, object]:
    """The post as one line of the export, in the fields the ``jsonl`` source reads."""
    handle = post.author.handle
    return {
        "id": post.post_id,
        "author": handle,
        "author_name": post.author.name,
        "followers": post.author.followers,
        "url": f"https://example.social/@{handle}/{post.post_id}",
        "text": post.text,
        "created_at": post.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "images": [image],
    }

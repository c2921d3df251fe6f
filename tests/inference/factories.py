"""Small synthetic datasets in both layouts, drawn on the fly (no files from the repository)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BRAND_COLOURS = {
    "acme": (220, 30, 30),
    "globex": (30, 160, 40),
    "initech": (30, 60, 220),
    "umbrella": (230, 200, 20),
}


def draw_photo(
    size: tuple[int, int], logos: Sequence[tuple[str, tuple[int, int, int, int]]], seed: int
) -> Image.Image:
    """A noisy grey background with each brand's "logo" (a coloured disc with a bar) in its box."""
    rng = np.random.default_rng(seed)
    width, height = size
    background = rng.integers(90, 160, (height, width, 3), dtype=np.uint8)
    picture = Image.fromarray(background)
    draw = ImageDraw.Draw(picture)
    for brand, (x1, y1, x2, y2) in logos:
        colour = BRAND_COLOURS[brand]
        draw.ellipse((x1, y1, x2, y2), fill=colour)
        draw.rectangle((x1, (y1 + y2) // 2 - 2, x2, (y1 + y2) // 2 + 2), fill=(255, 255, 255))
    return picture


def write_flickr_dataset(
    root: Path,
    *,
    brands: Sequence[str] = ("acme", "globex", "initech"),
    photos_per_brand: int = 6,
    size: tuple[int, int] = (160, 120),
) -> Path:
    """``annotations.txt`` + ``images/``; every box is written twice (two subsets), as in the
    original release."""
    images = root / "images"
    images.mkdir(parents=True)
    lines = []
    rng = np.random.default_rng(0)
    for brand_index, brand in enumerate(brands):
        for number in range(photos_per_brand):
            side = int(rng.integers(30, 60))
            x1 = int(rng.integers(0, size[0] - side))
            y1 = int(rng.integers(0, size[1] - side))
            box = (x1, y1, x1 + side, y1 + side)
            name = f"{brand_index}{number:03d}.jpg"
            draw_photo(size, [(brand, box)], seed=brand_index * 100 + number).save(images / name)
            for subset in (1, 2):
                lines.append(f"{name} {brand} {subset} {' '.join(map(str, box))}")
    (root / "annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def write_brand_folders(
    root: Path,
    *,
    brands: Sequence[str] = ("acme", "globex"),
    per_brand: int = 5,
    no_logo_folder: str | None = None,
    size: tuple[int, int] = (96, 96),
) -> Path:
    """One folder of logo pictures per brand (the logo fills most of the picture)."""
    for brand_index, brand in enumerate(brands):
        folder = root / brand
        folder.mkdir(parents=True)
        for number in range(per_brand):
            box = (8, 8, size[0] - 8, size[1] - 8)
            draw_photo(size, [(brand, box)], seed=brand_index * 50 + number).save(
                folder / f"{number}.png"
            )
    if no_logo_folder:
        folder = root / no_logo_folder
        folder.mkdir(parents=True)
        for number in range(per_brand):
            draw_photo(size, [], seed=900 + number).save(folder / f"{number}.jpg")
    return root

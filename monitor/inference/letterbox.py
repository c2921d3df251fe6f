"""Placing a photo on the detector's square input, and mapping boxes back (no TensorFlow).

The detector looks at a photo once, at its own proportions: the photo is scaled so its long side
fills the input and the rest is padded, instead of being squashed to a square (a squashed logo is
not the shape the model learnt). Training draws its views through the same function with other
scales and offsets, so the model sees at work exactly the kind of picture it trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from monitor.domain import Box

PAD_VALUE = 114
"""The grey of the padding around a photo (the same in training and use)."""


@dataclass(frozen=True)
class Placement:
    """Where a photo lies on the input: input pixel = photo pixel x ``scale`` + (left, top)."""

    scale: float
    left: int
    top: int

    def to_input(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A box in photo pixels as input pixels."""
        return (
            box[0] * self.scale + self.left,
            box[1] * self.scale + self.top,
            box[2] * self.scale + self.left,
            box[3] * self.scale + self.top,
        )

    def to_photo(self, box: Sequence[float], photo_size: tuple[int, int]) -> Box:
        """A box in input pixels as whole photo pixels, inside the photo and at least 1x1."""
        width, height = photo_size
        x1 = int(np.clip(np.floor((box[0] - self.left) / self.scale), 0, width - 1))
        y1 = int(np.clip(np.floor((box[1] - self.top) / self.scale), 0, height - 1))
        x2 = int(np.clip(np.ceil((box[2] - self.left) / self.scale), x1 + 1, width))
        y2 = int(np.clip(np.ceil((box[3] - self.top) / self.scale), y1 + 1, height))
        return (x1, y1, x2, y2)


def fitting_placement(photo_size: tuple[int, int], size: int) -> Placement:
    """How serving places a photo: long side scaled to ``size``, at the top-left corner."""
    return Placement(scale=size / max(photo_size), left=0, top=0)


def letterbox(image: Image.Image, size: int, placement: Placement | None = None) -> np.ndarray:
    """The photo placed on a ``size`` x ``size`` grey square, as uint8 RGB (size, size, 3).

    Without ``placement`` the photo is fitted whole (``fitting_placement``); a training view passes
    its own scale and offset, which may push parts of the photo off the square.
    """
    chosen = placement or fitting_placement(image.size, size)
    width = max(1, round(image.size[0] * chosen.scale))
    height = max(1, round(image.size[1] * chosen.scale))
    picture = image if image.mode == "RGB" else image.convert("RGB")
    resized = picture.resize((width, height), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size), (PAD_VALUE, PAD_VALUE, PAD_VALUE))
    canvas.paste(resized, (chosen.left, chosen.top))
    return np.asarray(canvas, dtype=np.uint8)

"""Property: whatever bytes arrive, decoding accepts them as RGB within bounds or refuses with a reason.

Seeds are real images of every allowed format made on the spot (AVIF and WebP included, with
alpha, palettes, 16-bit grey, CMYK, EXIF rotation, animation); hypothesis mutates them the way
broken uploads and hostile files look: flipped bits, cut tails, spliced bytes, forged headers.
Anything other than a decoded picture or an ``ImageDecodeError`` with a message fails the test.
"""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from monitor.exceptions import ImageDecodeError
from monitor.images import decode_scaled

from .factories import encode, two_colour_image

MAX_PIXELS = 4_000_000
MAX_SIDE = 256


def _seeds() -> dict[str, bytes]:
    base = Image.effect_noise((48, 40), 60).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [two_colour_image((32, 24)), base.resize((32, 24))]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=50)
    seeds = {
        "jpeg": encode(base, "JPEG", quality=80),
        "jpeg-exif": encode(base, "JPEG", exif=exif.tobytes()),
        "jpeg-cmyk": encode(base.convert("CMYK"), "JPEG"),
        "jpeg-progressive": encode(base, "JPEG", progressive=True),
        "png-alpha": encode(base.convert("RGBA"), "PNG"),
        "png-16bit": encode(Image.new("I;16", (24, 24), 40000), "PNG"),
        "png-palette": encode(base.convert("P"), "PNG"),
        "gif-animated": animated.getvalue(),
        "webp": encode(base, "WEBP", quality=70),
        "webp-lossless-alpha": encode(base.convert("RGBA"), "WEBP", lossless=True),
        "bmp": encode(base, "BMP"),
        "tiff": encode(base, "TIFF", compression="tiff_lzw"),
    }
    if features.check("avif"):  # Pillow 11.2+ ships AVIF in its wheels
        seeds["avif"] = encode(base, "AVIF", quality=60)
        seeds["avif-alpha"] = encode(base.convert("RGBA"), "AVIF")
    return seeds


SEEDS = _seeds()


def test_the_seeds_cover_avif_and_webp_and_all_decode() -> None:
    assert {"avif", "webp"} <= set(SEEDS), "this Pillow cannot write AVIF; the fuzz needs it"
    for name, data in SEEDS.items():
        decoded = decode_scaled(data, max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
        assert decoded.picture.mode == "RGB", name


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "overwrite", "size"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[position:]
        elif kind == "splice":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=16))
            data[position : position + len(patch)] = patch
        else:  # a forged dimension: four bytes that read as a huge width or height
            data[position : position + 4] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_images())
def test_every_input_is_decoded_within_bounds_or_refused_with_a_reason(data: bytes) -> None:
    try:
        decoded = decode_scaled(data, max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
    except ImageDecodeError as exc:
        assert str(exc).strip(), "a refusal must say why"
        return
    assert decoded.picture.mode == "RGB"
    assert max(decoded.picture.size) <= MAX_SIDE
    assert decoded.width * decoded.height <= MAX_PIXELS


@pytest.mark.parametrize("junk", [b"\x00", b"GIF89a", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP"])
def test_bare_magic_numbers_are_refused(junk: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_scaled(junk, max_pixels=MAX_PIXELS)

"""decode_image: the pixel cap, corrupt data, and every colour mode ending as upright RGB."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from monitor.exceptions import ImageDecodeError
from monitor.images import decode_image
from monitor.images.decode import ALLOWED_FORMATS

from .factories import encode, huge_blank_png, two_colour_image

MAX_PIXELS = 50_000_000
RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    """Colours equal within JPEG's rounding."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """One RGB pixel as a tuple (PIL's getpixel is typed loosely)."""
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def decode(data: bytes) -> Image.Image:
    image = decode_image(data, max_pixels=MAX_PIXELS)
    assert image.mode == "RGB"
    return image


# --- good images ---------------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_common_formats_decode_to_rgb(image_format: str) -> None:
    image = decode(encode(two_colour_image(), image_format))
    assert image.size == (64, 48)
    assert near(pixel(image, (8, 24)), RED, tolerance=40)
    assert near(pixel(image, (56, 24)), BLUE, tolerance=40)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    data = encode(two_colour_image((64, 48)), "JPEG", quality=95, exif=exif.tobytes())
    image = decode(data)
    assert image.size == (48, 64)
    # The left (red) half of the stored image is the top half once upright.
    assert near(pixel(image, (24, 8)), RED)
    assert near(pixel(image, (24, 56)), BLUE)


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk_red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    assert near(pixel(decode(encode(cmyk_red, "JPEG", quality=95)), (8, 8)), RED)


@pytest.mark.parametrize(("value", "grey"), [(65535, 255), (32896, 128), (0, 0)])
def test_sixteen_bit_grey_png_is_scaled_not_clipped(value: int, grey: int) -> None:
    source = Image.new("I;16", (8, 8), value)
    data = encode(source, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert pixel(decode(data), (4, 4)) == (grey, grey, grey)


def test_thirty_two_bit_grey_tiff_with_sixteen_bit_values_is_scaled() -> None:
    source = Image.new("I", (8, 8), 0)
    source.paste(65535, (4, 0, 8, 8))
    image = decode(encode(source, "TIFF"))
    assert pixel(image, (1, 1)) == (0, 0, 0)
    assert pixel(image, (6, 1)) == WHITE


def test_palette_transparency_is_shown_on_white() -> None:
    palette_image = Image.new("P", (20, 10), 0)
    palette_image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    palette_image.paste(1, (10, 0, 20, 10))
    for image_format in ("PNG", "GIF"):
        image = decode(encode(palette_image, image_format, transparency=0))
        assert pixel(image, (2, 5)) == WHITE, image_format
        assert pixel(image, (15, 5)) == RED, image_format


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("RGBA", (255, 0, 0, 0), WHITE),
        ("RGBA", (255, 0, 0, 255), RED),
        ("RGBA", (0, 0, 0, 128), (127, 127, 127)),
        ("LA", (0, 0), WHITE),
        ("LA", (0, 255), (0, 0, 0)),
    ],
)
def test_alpha_is_composited_on_white(
    mode: str, colour: tuple[int, ...], expected: tuple[int, int, int]
) -> None:
    image = decode(encode(Image.new(mode, (4, 4), colour), "PNG"))
    assert near(pixel(image, (1, 1)), expected, tolerance=1)


def test_one_bit_image_becomes_black_and_white_rgb() -> None:
    bits = Image.new("1", (16, 8), 0)
    bits.paste(1, (8, 0, 16, 8))
    image = decode(encode(bits, "PNG"))
    assert pixel(image, (2, 2)) == (0, 0, 0)
    assert pixel(image, (12, 2)) == WHITE


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP"])
def test_animation_gives_its_first_frame(image_format: str) -> None:
    frames = [Image.new("RGB", (24, 24), colour) for colour in (RED, (0, 255, 0), BLUE)]
    data = encode(
        frames[0], image_format, save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert near(pixel(decode(data), (12, 12)), RED, tolerance=20)


# --- refusals ------------------------------------------------------------------------------------


def test_empty_data_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match=r"^empty file$"):
        decode_image(b"", max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    "markup",
    [
        b"<!DOCTYPE html><html><head><title>Login</title></head></html>",
        b"\n  <html lang='en'><body>404</body></html>",
    ],
)
def test_html_is_refused_as_html(markup: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="HTML page"):
        decode_image(markup, max_pixels=MAX_PIXELS)


def test_svg_is_refused_clearly() -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    with pytest.raises(ImageDecodeError, match="XML or SVG"):
        decode_image(svg, max_pixels=MAX_PIXELS)


def test_truncated_jpeg_is_refused(truncated_jpeg_bytes: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="truncated or corrupt JPEG data"):
        decode_image(truncated_jpeg_bytes, max_pixels=MAX_PIXELS)


def test_truncated_png_is_refused() -> None:
    data = encode(Image.effect_noise((128, 128), 64), "PNG")
    with pytest.raises(ImageDecodeError, match="truncated or corrupt PNG data"):
        decode_image(data[: len(data) * 2 // 3], max_pixels=MAX_PIXELS)


def test_corrupt_compressed_pixels_are_refused() -> None:
    data = encode(Image.effect_noise((128, 128), 64), "PNG")
    start = data.index(b"IDAT") + 104
    scrambled = bytes(byte ^ 0x5A for byte in data[start : start + 200])
    with pytest.raises(ImageDecodeError, match="truncated or corrupt PNG data"):
        decode_image(data[:start] + scrambled + data[start + 200 :], max_pixels=MAX_PIXELS)


def test_random_bytes_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="not a recognised image"):
        decode_image(bytes(range(256)) * 4, max_pixels=MAX_PIXELS)


def test_formats_outside_the_allowed_list_are_refused() -> None:
    assert "PPM" not in ALLOWED_FORMATS
    with pytest.raises(ImageDecodeError, match="not a recognised image"):
        decode_image(encode(two_colour_image(), "PPM"), max_pixels=MAX_PIXELS)


def test_pixel_cap_is_checked_from_the_header() -> None:
    data = encode(Image.new("RGB", (3000, 2000)), "PNG")
    with pytest.raises(ImageDecodeError, match=r"3000x2000 = 6000000, the limit is 5999999"):
        decode_image(data, max_pixels=5_999_999)
    assert decode_image(data, max_pixels=6_000_000).size == (3000, 2000)


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_decompression_bombs_are_refused_whatever_pil_global_limit(side: int) -> None:
    """10000^2 passes PIL's error threshold but trips its warning; 20000^2 trips its error."""
    before = Image.MAX_IMAGE_PIXELS
    data = huge_blank_png(side, side)
    assert len(data) < 100_000
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        decode_image(data, max_pixels=MAX_PIXELS)
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        decode_image(data, max_pixels=side * side)
    assert before == Image.MAX_IMAGE_PIXELS

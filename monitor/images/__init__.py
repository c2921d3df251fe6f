"""Fetching and decoding images from posts, within limits on time, size, pixels and destination.

Usage::

    limits = ImageLimits.from_settings(get_settings())
    fetched = ImageFetcher(limits=limits, session=session).fetch(url)
    picture = decode_image(fetched.data, max_pixels=limits.max_pixels)  # always RGB
"""

from monitor.images.decode import DecodedImage, decode_image, decode_scaled
from monitor.images.fetch import FetchedImage, ImageFetcher
from monitor.images.limits import ImageLimits

__all__ = [
    "DecodedImage",
    "FetchedImage",
    "ImageFetcher",
    "ImageLimits",
    "decode_image",
    "decode_scaled",
]

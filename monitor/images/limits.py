"""The limits every image fetch and decode runs under, as one value object.

Image URLs come from strangers' posts, so every fetch is bounded in time, size and pixel count,
and only goes where the configuration allows. Carrying the limits as one frozen object (rather than
loose keyword arguments) lets the pipeline build them once from the settings and pass them around.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import Settings

MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """How long, how big and from where an image may be fetched.

    ``timeout_seconds`` bounds connecting and each wait for the next bytes of the answer;
    ``max_bytes`` bounds the body; ``max_pixels`` bounds width x height before pixels are decoded.
    """

    timeout_seconds: float = 10.0
    max_bytes: int = 20 * MEBIBYTE
    max_pixels: int = 50_000_000
    allow_private_hosts: bool = False
    allow_file_urls: bool = True

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {self.timeout_seconds}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        if self.max_pixels <= 0:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        """The limits the configuration asks for (``MONITOR_MAX_IMAGE_BYTES`` and friends)."""
        return cls(
            timeout_seconds=settings.http_timeout_seconds,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            allow_private_hosts=settings.allow_private_image_hosts,
            allow_file_urls=settings.allow_file_urls,
        )

"""Posts with photos and detections, stored through the repository as the pipeline stores them."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image, ImageDraw
from sqlalchemy import select

from monitor.domain import Box, CollectedPost, Detection
from monitor.pipeline import Services
from monitor.storage import repository
from monitor.storage.db import session_scope
from monitor.storage.tables import Image as ImageRow

PHOTO_BACKGROUND = (0, 190, 190)
MARK_COLOUR = (220, 0, 220)


def photo_with_mark(size: tuple[int, int], box: Box | None) -> bytes:
    """A JPEG of one colour with a rectangle of another exactly where ``box`` says the logo is."""
    picture = Image.new("RGB", size, PHOTO_BACKGROUND)
    if box is not None:
        ImageDraw.Draw(picture).rectangle(
            (box[0], box[1], box[2] - 1, box[3] - 1), fill=MARK_COLOUR
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@dataclass
class PhotoPost:
    """One post with one photo and what the model found in it."""

    external_id: str
    detections: list[tuple[str, float, Box | None]]
    day: int = 10
    author: str | None = "ana"
    author_name: str | None = None
    text: str | None = "a photo"
    platform: str = "social"
    url: str | None = None
    followers: int | None = 100
    size: tuple[int, int] = (400, 300)
    keep_bytes: bool = True
    image_url: str | None = None
    month: int = 11

    def photo_url(self) -> str:
        return self.image_url or f"https://img.example/{self.external_id}.jpg"


def store_photo_posts(
    services: Services, posts: list[PhotoPost], *, model_version: str = "v1"
) -> None:
    """Store the posts, their photos (bytes kept or not) and their detections."""
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with session_scope(services.sessions) as session:
        source = repository.add_source(
            session=session, name="src", kind="fake", options={}, every_seconds=None, now=now
        )
        repository.store_posts(
            session=session, source=source, posts=[_collected(post) for post in posts], now=now
        )
        for post in posts:
            image = session.scalars(select(ImageRow).where(ImageRow.url == post.photo_url())).one()
            if image.state == "classified":
                continue  # a photo shared by several posts is classified once
            first_box = post.detections[0][2] if post.detections else None
            if post.keep_bytes:
                repository.save_fetched_image(
                    session=session,
                    image=image,
                    data=photo_with_mark(post.size, first_box),
                    content_type="image/jpeg",
                    width=post.size[0],
                    height=post.size[1],
                    now=now,
                )
            else:
                image.width, image.height = post.size
            repository.save_classification(
                session=session,
                image=image,
                model_version=model_version,
                detections=[Detection(brand, p, box) for brand, p, box in post.detections],
                now=now,
            )


def _collected(post: PhotoPost) -> CollectedPost:
    return CollectedPost(
        platform=post.platform,
        external_id=post.external_id,
        url=post.url if post.url is not None else f"https://example.social/{post.external_id}",
        author_handle=post.author,
        author_name=post.author_name,
        author_followers=post.followers,
        text=post.text,
        created_at=datetime(2026, post.month, post.day, 12, tzinfo=UTC),
        image_urls=(post.photo_url(),),
    )

"""The relational schema. Alembic migrations in ``migrations/`` create exactly these tables.

Identity rules that make the pipeline idempotent:
- a post is unique by (platform, external_id): collecting it again stores nothing;
- an image is unique by its URL (hash): the same image in several posts is fetched and classified once
  and linked to each post through ``post_images``;
- a classification is unique by (image, model version): a re-delivered task writes nothing twice;
- detections hang off their classification and are written in the same transaction;
- ``detections.current`` marks the detections of each image's current classification (its newest),
  set in the transaction that writes a newer one, so readers never search for it.

The summary tables at the end (``post_brands`` and the ``brand_*`` totals) are kept current by
``monitor.storage.summaries`` in the same transactions that change what they count; the analytics
read them instead of re-joining detections.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ImageState:
    """The states an image moves through; stored as strings."""

    QUEUED = "queued"
    FETCHED = "fetched"
    CLASSIFIED = "classified"
    FAILED = "failed"
    ALL = (QUEUED, FETCHED, CLASSIFIED, FAILED)


class Source(Base):
    """A configured place posts come from, with its schedule, cursor and health."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    last_collected_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)


class CollectionRun(Base):
    """One collection of one source: when, what came, or why it failed."""

    __tablename__ = "collection_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(20))
    posts_seen: Mapped[int] = mapped_column(Integer, default=0)
    posts_new: Mapped[int] = mapped_column(Integer, default=0)
    images_new: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Post(Base):
    """A post with its author and text, as its platform describes it."""

    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(Text)
    author_handle: Mapped[str | None] = mapped_column(String(300), index=True)
    author_name: Mapped[str | None] = mapped_column(String(300))
    author_followers: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(20))
    reposts: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime | None] = mapped_column(Timestamp)
    collected_at: Mapped[datetime] = mapped_column(Timestamp)

    images: Mapped[list[PostImage]] = relationship(back_populates="post")


class Image(Base):
    """An image URL, fetched and classified once however many posts show it."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_hash: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    content_type: Mapped[str | None] = mapped_column(String(100))
    byte_size: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(Timestamp)
    fetched_at: Mapped[datetime | None] = mapped_column(Timestamp)
    classified_at: Mapped[datetime | None] = mapped_column(Timestamp)

    posts: Mapped[list[PostImage]] = relationship(back_populates="image")


class ImageData(Base):
    """The fetched bytes of an image, kept apart so scans of ``images`` stay light.

    ``data`` (the full bytes) is dropped once the image is classified, unless a retention is set;
    ``thumbnail`` (a small JPEG) stays as evidence.
    """

    __tablename__ = "image_data"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)


class PostImage(Base):
    """Which images a post shows, in order."""

    __tablename__ = "post_images"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)

    post: Mapped[Post] = relationship(back_populates="images")
    image: Mapped[Image] = relationship(back_populates="posts")


class Classification(Base):
    """One model version's verdict on one image (possibly: no logo)."""

    __tablename__ = "classifications"
    __table_args__ = (UniqueConstraint("image_id", "model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(100))
    classified_at: Mapped[datetime] = mapped_column(Timestamp)
    detection_count: Mapped[int] = mapped_column(Integer, default=0)


class DetectionRow(Base):
    """A brand found in an image, with the post and source that brought the image."""

    __tablename__ = "detections"
    __table_args__ = (
        UniqueConstraint("classification_id", "rank"),
        Index("ix_detections_brand_probability", "brand", "probability"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    classification_id: Mapped[int] = mapped_column(
        ForeignKey("classifications.id", ondelete="CASCADE")
    )
    rank: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(100))
    brand: Mapped[str] = mapped_column(String(100))
    probability: Mapped[float] = mapped_column(Float)
    x1: Mapped[int | None] = mapped_column(Integer)
    y1: Mapped[int | None] = mapped_column(Integer)
    x2: Mapped[int | None] = mapped_column(Integer)
    y2: Mapped[int | None] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(Timestamp)
    current: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


# --- summaries (kept by monitor.storage.summaries) -----------------------------------------------


class PostBrand(Base):
    """One post showing one brand in its images' current classifications: the post-level fact.

    Everything the analytics count per post (day, source, platform, account, image-only) is copied
    here so that per-brand reads never join posts, images and detections again.
    """

    __tablename__ = "post_brands"
    __table_args__ = (
        Index(
            "ix_post_brands_brand_day",
            "brand",
            "posted_day",
            postgresql_include=["platform", "author_handle", "author_followers"],
        ),
        Index("ix_post_brands_brand_probability", "brand", "max_probability"),
        Index(
            "ix_post_brands_brand_account",
            "brand",
            "platform",
            "author_handle",
            "posted_day",
            postgresql_include=["author_followers"],
        ),
    )

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    detections: Mapped[int] = mapped_column(Integer)
    max_probability: Mapped[float] = mapped_column(Float)
    posted_day: Mapped[date] = mapped_column(Date)
    source_id: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(300))
    author_handle: Mapped[str | None] = mapped_column(String(300))
    author_followers: Mapped[int | None] = mapped_column(BigInteger)
    image_only: Mapped[bool] = mapped_column(Boolean)


class BrandDetectionDay(Base):
    """Detections of a brand shown on a day, by the previous day their image was shown and by bin.

    A detection shown on several days has one row-count per day; ``previous_day`` (the day before
    that its image was last shown, ``NO_PREVIOUS_DAY`` for its first) lets a window count each
    detection once: those shown in the window whose previous day is before the window.
    """

    __tablename__ = "brand_detection_days"

    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    previous_day: Mapped[date] = mapped_column(Date, primary_key=True)
    probability_bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    detections: Mapped[int] = mapped_column(Integer)


class BrandPostDay(Base):
    """Posts showing a brand per day, source and platform; those whose text never names it."""

    __tablename__ = "brand_post_days"

    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(300), primary_key=True)
    posts: Mapped[int] = mapped_column(Integer)
    image_only_posts: Mapped[int] = mapped_column(Integer)


class BrandAccountTotal(Base):
    """Posts showing a brand per account over the whole history, with followers and reach."""

    __tablename__ = "brand_account_totals"
    __table_args__ = (
        Index("ix_brand_account_totals_brand_posts", "brand", "posts"),
        Index("ix_brand_account_totals_account", "platform", "author_handle"),
    )

    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    platform: Mapped[str] = mapped_column(String(300), primary_key=True)
    author_handle: Mapped[str] = mapped_column(String(300), primary_key=True)
    posts: Mapped[int] = mapped_column(Integer)
    followers: Mapped[int | None] = mapped_column(BigInteger)
    reach: Mapped[int] = mapped_column(BigInteger)
    posts_with_followers: Mapped[int] = mapped_column(Integer)


class BrandPairTotal(Base):
    """Posts showing both brands (``brand_a`` < ``brand_b``)."""

    __tablename__ = "brand_pair_totals"

    brand_a: Mapped[str] = mapped_column(String(100), primary_key=True)
    brand_b: Mapped[str] = mapped_column(String(100), primary_key=True)
    posts: Mapped[int] = mapped_column(Integer)


class BrandCoendorsementTotal(Base):
    """Accounts showing both brands, stored both ways round so either brand finds it."""

    __tablename__ = "brand_coendorsement_totals"

    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    other_brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    accounts: Mapped[int] = mapped_column(Integer)

"""Initial schema: sources, collection runs, posts, images, classifications, detections.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("every_seconds", sa.Integer()),
        sa.Column("cursor", sa.JSON()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_collected_at", TS),
        sa.Column("last_status", sa.String(20)),
        sa.Column("last_error", sa.Text()),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS),
        sa.UniqueConstraint("name", name="uq_sources_name"),
    )
    op.create_table(
        "collection_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "source_id",
            sa.Integer(),
            sa.ForeignKey(
                "sources.id", ondelete="CASCADE", name="fk_collection_runs_source_id_sources"
            ),
            nullable=False,
        ),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("posts_seen", sa.Integer(), nullable=False),
        sa.Column("posts_new", sa.Integer(), nullable=False),
        sa.Column("images_new", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_collection_runs_source_id", "collection_runs", ["source_id"])
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "source_id",
            sa.Integer(),
            sa.ForeignKey("sources.id", ondelete="CASCADE", name="fk_posts_source_id_sources"),
            nullable=False,
        ),
        sa.Column("platform", sa.String(300), nullable=False),
        sa.Column("external_id", sa.String(500), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("author_handle", sa.String(300)),
        sa.Column("author_name", sa.String(300)),
        sa.Column("author_followers", sa.BigInteger()),
        sa.Column("text", sa.Text()),
        sa.Column("language", sa.String(20)),
        sa.Column("reposts", sa.Integer()),
        sa.Column("created_at", TS),
        sa.Column("collected_at", TS, nullable=False),
        sa.UniqueConstraint("platform", "external_id", name="uq_posts_platform"),
    )
    op.create_index("ix_posts_source_id", "posts", ["source_id"])
    op.create_index("ix_posts_author_handle", "posts", ["author_handle"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url_hash", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(100)),
        sa.Column("byte_size", sa.Integer()),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("sha256", sa.String(64)),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("fetched_at", TS),
        sa.Column("classified_at", TS),
        sa.UniqueConstraint("url_hash", name="uq_images_url_hash"),
    )
    op.create_index("ix_images_state", "images", ["state"])
    op.create_table(
        "image_data",
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey("images.id", ondelete="CASCADE", name="fk_image_data_image_id_images"),
            primary_key=True,
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "post_images",
        sa.Column(
            "post_id",
            sa.Integer(),
            sa.ForeignKey("posts.id", ondelete="CASCADE", name="fk_post_images_post_id_posts"),
            primary_key=True,
        ),
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey("images.id", ondelete="CASCADE", name="fk_post_images_image_id_images"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_post_images_image_id", "post_images", ["image_id"])
    op.create_table(
        "classifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey(
                "images.id", ondelete="CASCADE", name="fk_classifications_image_id_images"
            ),
            nullable=False,
        ),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("classified_at", TS, nullable=False),
        sa.Column("detection_count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("image_id", "model_version", name="uq_classifications_image_id"),
    )
    op.create_table(
        "detections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "classification_id",
            sa.Integer(),
            sa.ForeignKey(
                "classifications.id",
                ondelete="CASCADE",
                name="fk_detections_classification_id_classifications",
            ),
            nullable=False,
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey("images.id", ondelete="CASCADE", name="fk_detections_image_id_images"),
            nullable=False,
        ),
        sa.Column(
            "post_id",
            sa.Integer(),
            sa.ForeignKey("posts.id", ondelete="CASCADE", name="fk_detections_post_id_posts"),
            nullable=False,
        ),
        sa.Column(
            "source_id",
            sa.Integer(),
            sa.ForeignKey("sources.id", ondelete="CASCADE", name="fk_detections_source_id_sources"),
            nullable=False,
        ),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("brand", sa.String(100), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("x1", sa.Integer()),
        sa.Column("y1", sa.Integer()),
        sa.Column("x2", sa.Integer()),
        sa.Column("y2", sa.Integer()),
        sa.Column("detected_at", TS, nullable=False),
        sa.UniqueConstraint("classification_id", "rank", name="uq_detections_classification_id"),
    )
    op.create_index("ix_detections_image_id", "detections", ["image_id"])
    op.create_index("ix_detections_post_id", "detections", ["post_id"])
    op.create_index("ix_detections_brand_probability", "detections", ["brand", "probability"])


def downgrade() -> None:
    for table in (
        "detections",
        "classifications",
        "post_images",
        "image_data",
        "images",
        "posts",
        "collection_runs",
        "sources",
    ):
        op.drop_table(table)

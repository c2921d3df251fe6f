"""What the analytics read, described for SQLAlchemy Core queries: views and summary tables.

They live in their own ``MetaData`` so nothing ever tries to create them (the migrations do, and
``monitor.storage.tables`` declares the tables for the write path; a test checks the two agree).
Reading through Core, without the ORM, keeps ``monitor report``'s start-up short.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

views = MetaData()

posts = Table(
    "posts",
    views,
    Column("id", Integer),
    Column("url", Text),
    Column("author_handle", String),
    Column("platform", String),
    Column("created_at", DateTime(timezone=True)),
    Column("collected_at", DateTime(timezone=True)),
)

sources = Table("sources", views, Column("id", Integer), Column("name", String))

post_brands = Table(
    "post_brands",
    views,
    Column("post_id", Integer),
    Column("brand", String),
    Column("detections", Integer),
    Column("max_probability", Float),
    Column("posted_day", Date),
    Column("source_id", Integer),
    Column("platform", String),
    Column("author_handle", String),
    Column("author_followers", BigInteger),
    Column("image_only", Boolean),
)

brand_detection_days = Table(
    "brand_detection_days",
    views,
    Column("brand", String),
    Column("day", Date),
    Column("previous_day", Date),
    Column("probability_bin", Integer),
    Column("detections", Integer),
)

brand_post_days = Table(
    "brand_post_days",
    views,
    Column("brand", String),
    Column("day", Date),
    Column("source_id", Integer),
    Column("platform", String),
    Column("posts", Integer),
    Column("image_only_posts", Integer),
)

brand_account_totals = Table(
    "brand_account_totals",
    views,
    Column("brand", String),
    Column("platform", String),
    Column("author_handle", String),
    Column("posts", Integer),
    Column("followers", BigInteger),
    Column("reach", BigInteger),
    Column("posts_with_followers", Integer),
)

brand_coendorsement_totals = Table(
    "brand_coendorsement_totals",
    views,
    Column("brand", String),
    Column("other_brand", String),
    Column("accounts", Integer),
)

post_detections = Table(
    "post_detections",
    views,
    Column("detection_id", Integer),
    Column("brand", String),
    Column("probability", Float),
    Column("x1", Integer),
    Column("y1", Integer),
    Column("x2", Integer),
    Column("y2", Integer),
    Column("model_version", String),
    Column("image_id", Integer),
    Column("post_id", Integer),
    Column("source_id", Integer),
    Column("source_name", String),
    Column("source_kind", String),
    Column("platform", String),
    Column("author_handle", String),
    Column("author_name", String),
    Column("author_followers", BigInteger),
    Column("post_url", Text),
    Column("post_text", Text),
    Column("posted_at", DateTime(timezone=True)),
)

brand_accounts = Table(
    "brand_accounts",
    views,
    Column("brand", String),
    Column("platform", String),
    Column("author_handle", String),
    Column("posts", Integer),
    Column("followers", BigInteger),
    Column("reach", BigInteger),
)

brand_coendorsement = Table(
    "brand_coendorsement",
    views,
    Column("brand", String),
    Column("other_brand", String),
    Column("accounts", Integer),
)

"""The analytics views created by the migrations, described for SQLAlchemy Core queries.

They live in their own ``MetaData`` so nothing ever tries to create them as tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, Text

views = MetaData()

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

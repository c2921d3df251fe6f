"""Analytics views: detections per post, mentions per week, accounts per brand, brand pairs.

``post_detections`` is the analyst's starting point: one row per (detection, post showing the image),
from the newest classification of each image, so re-classifying with a new model never double-counts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POST_DETECTIONS = """
CREATE VIEW post_detections AS
SELECT d.id AS detection_id, d.brand, d.probability, d.x1, d.y1, d.x2, d.y2,
       d.model_version, d.image_id, p.id AS post_id, p.source_id, s.name AS source_name,
       s.kind AS source_kind, p.platform, p.author_handle, p.author_name, p.author_followers,
       p.url AS post_url, p.text AS post_text, COALESCE(p.created_at, p.collected_at) AS posted_at
FROM detections d
JOIN classifications c ON c.id = d.classification_id
JOIN post_images pi ON pi.image_id = d.image_id
JOIN posts p ON p.id = pi.post_id
JOIN sources s ON s.id = p.source_id
WHERE c.id = (
    SELECT c2.id FROM classifications c2 WHERE c2.image_id = c.image_id
    ORDER BY c2.classified_at DESC, c2.id DESC LIMIT 1
)
"""

WEEK_START = {
    "postgresql": "CAST(date_trunc('week', posted_at) AS date)",
    "sqlite": "date(posted_at, '-6 days', 'weekday 1')",
}

BRAND_WEEKLY = """
CREATE VIEW brand_weekly AS
SELECT brand, {week_start} AS week_start,
       COUNT(DISTINCT detection_id) AS detections, COUNT(DISTINCT post_id) AS posts
FROM post_detections
GROUP BY brand, {week_start}
"""

BRAND_ACCOUNTS = """
CREATE VIEW brand_accounts AS
SELECT brand, platform, author_handle, COUNT(*) AS posts,
       MAX(author_followers) AS followers, SUM(author_followers) AS reach
FROM (
    SELECT DISTINCT brand, post_id, platform, author_handle, author_followers
    FROM post_detections WHERE author_handle IS NOT NULL
) AS brand_posts
GROUP BY brand, platform, author_handle
"""

BRAND_PAIRS = """
CREATE VIEW brand_pairs AS
SELECT a.brand AS brand_a, b.brand AS brand_b, COUNT(DISTINCT a.post_id) AS posts
FROM post_detections a
JOIN post_detections b ON a.post_id = b.post_id AND a.brand < b.brand
GROUP BY a.brand, b.brand
"""

BRAND_COENDORSEMENT = """
CREATE VIEW brand_coendorsement AS
SELECT a.brand, b.brand AS other_brand, COUNT(*) AS accounts
FROM brand_accounts a
JOIN brand_accounts b
  ON a.platform = b.platform AND a.author_handle = b.author_handle AND a.brand <> b.brand
GROUP BY a.brand, b.brand
"""

VIEWS = ("brand_coendorsement", "brand_pairs", "brand_accounts", "brand_weekly", "post_detections")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    week_start = WEEK_START.get(dialect, WEEK_START["postgresql"])
    op.execute(POST_DETECTIONS)
    op.execute(BRAND_WEEKLY.format(week_start=week_start))
    op.execute(BRAND_ACCOUNTS)
    op.execute(BRAND_PAIRS)
    op.execute(BRAND_COENDORSEMENT)


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")

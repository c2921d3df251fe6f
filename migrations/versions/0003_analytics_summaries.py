"""Analytics summaries kept in the write path; each image's current classification; thumbnails.

Adds ``detections.current`` (true for the detections of each image's newest classification, kept
by the write path; the backfill only has to clear it on older verdicts' rows), the summary tables (``post_brands`` and the ``brand_*`` totals) and fills them from the stored rows with
set-based SQL, then rebuilds the analytics views over them. ``image_data.data`` may now be empty
(full bytes are dropped after classification unless a retention is set) and gains a ``thumbnail``.

The backfill's SQL computes the same figures as ``monitor.storage.summaries`` does on each write;
tests check that both give the same tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _day(dialect: str) -> str:
    moment = "COALESCE(p.created_at, p.collected_at)"
    return f"date({moment})" if dialect == "sqlite" else f"CAST(timezone('UTC', {moment}) AS date)"


def _no_previous_day(dialect: str) -> str:
    return "'0001-01-01'" if dialect == "sqlite" else "DATE '0001-01-01'"


def _week(dialect: str, column: str) -> str:
    if dialect == "sqlite":
        return f"date({column}, '-6 days', 'weekday 1')"
    return f"CAST(date_trunc('week', {column}) AS date)"


BIN = (
    "CASE WHEN d.probability < 0.5 THEN 0 WHEN d.probability < 0.6 THEN 1 "
    "WHEN d.probability < 0.7 THEN 2 WHEN d.probability < 0.8 THEN 3 "
    "WHEN d.probability < 0.9 THEN 4 ELSE 5 END"
)

SUPERSEDED = """
UPDATE detections SET current = false
WHERE classification_id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (
            PARTITION BY image_id ORDER BY classified_at DESC, id DESC
        ) AS newness
        FROM classifications
        WHERE image_id IN (SELECT image_id FROM classifications GROUP BY image_id HAVING COUNT(*) > 1)
    ) AS ranked
    WHERE newness > 1
)
"""


def _post_brands(dialect: str) -> str:
    find = "instr" if dialect == "sqlite" else "strpos"
    return f"""
INSERT INTO post_brands (post_id, brand, detections, max_probability, posted_day, source_id,
                         platform, author_handle, author_followers, image_only)
SELECT p.id, d.brand, COUNT(*), MAX(d.probability), {_day(dialect)}, p.source_id, p.platform,
       p.author_handle, p.author_followers,
       NOT ({find}(lower(COALESCE(p.text, '')), lower(d.brand)) > 0)
FROM posts p
JOIN post_images pi ON pi.post_id = p.id
JOIN detections d ON d.image_id = pi.image_id AND d.current
GROUP BY p.id, d.brand
"""


def _detection_days(dialect: str) -> str:
    return f"""
INSERT INTO brand_detection_days (brand, day, previous_day, probability_bin, detections)
WITH detected AS (
    SELECT DISTINCT image_id FROM detections WHERE current
), shown AS (
    SELECT pi.image_id AS image_id, {_day(dialect)} AS day
    FROM post_images pi JOIN posts p ON p.id = pi.post_id
    WHERE pi.image_id IN (SELECT image_id FROM detected)
    GROUP BY pi.image_id, {_day(dialect)}
), ordered AS (
    SELECT image_id, day, LAG(day) OVER (PARTITION BY image_id ORDER BY day) AS previous_day
    FROM shown
)
SELECT d.brand, o.day, COALESCE(o.previous_day, {_no_previous_day(dialect)}), {BIN}, COUNT(*)
FROM detections d
JOIN ordered o ON o.image_id = d.image_id
WHERE d.current
GROUP BY d.brand, o.day, COALESCE(o.previous_day, {_no_previous_day(dialect)}), {BIN}
"""


TOTALS = (
    """
INSERT INTO brand_post_days (brand, day, source_id, platform, posts, image_only_posts)
SELECT brand, posted_day, source_id, platform, COUNT(*),
       SUM(CASE WHEN image_only THEN 1 ELSE 0 END)
FROM post_brands GROUP BY brand, posted_day, source_id, platform
""",
    """
INSERT INTO brand_account_totals (brand, platform, author_handle, posts, followers, reach,
                                  posts_with_followers)
SELECT brand, platform, author_handle, COUNT(*), MAX(author_followers),
       COALESCE(SUM(author_followers), 0), COUNT(author_followers)
FROM post_brands WHERE author_handle IS NOT NULL
GROUP BY brand, platform, author_handle
""",
    """
INSERT INTO brand_pair_totals (brand_a, brand_b, posts)
SELECT a.brand, b.brand, COUNT(*)
FROM post_brands a JOIN post_brands b ON a.post_id = b.post_id AND a.brand < b.brand
GROUP BY a.brand, b.brand
""",
    """
INSERT INTO brand_coendorsement_totals (brand, other_brand, accounts)
SELECT a.brand, b.brand, COUNT(*)
FROM brand_account_totals a
JOIN brand_account_totals b
  ON a.platform = b.platform AND a.author_handle = b.author_handle AND a.brand <> b.brand
GROUP BY a.brand, b.brand
""",
)

POST_DETECTIONS = """
CREATE VIEW post_detections AS
SELECT d.id AS detection_id, d.brand, d.probability, d.x1, d.y1, d.x2, d.y2,
       d.model_version, d.image_id, p.id AS post_id, p.source_id, s.name AS source_name,
       s.kind AS source_kind, p.platform, p.author_handle, p.author_name, p.author_followers,
       p.url AS post_url, p.text AS post_text, COALESCE(p.created_at, p.collected_at) AS posted_at
FROM detections d
JOIN post_images pi ON pi.image_id = d.image_id
JOIN posts p ON p.id = pi.post_id
JOIN sources s ON s.id = p.source_id
WHERE d.current
"""


def _brand_weekly(dialect: str) -> str:
    week = _week(dialect, "day")
    return f"""
CREATE VIEW brand_weekly AS
SELECT w.brand, w.week_start, w.detections, p.posts
FROM (
    SELECT brand, {week} AS week_start,
           SUM(CASE WHEN previous_day < {week} THEN detections ELSE 0 END) AS detections
    FROM brand_detection_days GROUP BY brand, {week}
) w
JOIN (
    SELECT brand, {week} AS week_start, SUM(posts) AS posts
    FROM brand_post_days GROUP BY brand, {week} HAVING SUM(posts) > 0
) p ON p.brand = w.brand AND p.week_start = w.week_start
"""


BRAND_DAILY = """
CREATE VIEW brand_daily AS
SELECT p.brand, p.day, d.detections, p.posts, p.image_only_posts
FROM (
    SELECT brand, day, SUM(posts) AS posts, SUM(image_only_posts) AS image_only_posts
    FROM brand_post_days GROUP BY brand, day HAVING SUM(posts) > 0
) p
JOIN (
    SELECT brand, day, SUM(detections) AS detections FROM brand_detection_days GROUP BY brand, day
) d ON d.brand = p.brand AND d.day = p.day
"""

BRAND_ACCOUNTS = """
CREATE VIEW brand_accounts AS
SELECT brand, platform, author_handle, posts, followers,
       CASE WHEN posts_with_followers > 0 THEN reach END AS reach
FROM brand_account_totals WHERE posts > 0
"""

BRAND_PAIRS = """
CREATE VIEW brand_pairs AS
SELECT brand_a, brand_b, posts FROM brand_pair_totals WHERE posts > 0
"""

BRAND_COENDORSEMENT = """
CREATE VIEW brand_coendorsement AS
SELECT brand, other_brand, accounts FROM brand_coendorsement_totals WHERE accounts > 0
"""

OLD_VIEWS = (
    "brand_coendorsement",
    "brand_pairs",
    "brand_accounts",
    "brand_weekly",
    "post_detections",
)
NEW_VIEWS = ("brand_daily", *OLD_VIEWS)
SUMMARY_TABLES = (
    "brand_coendorsement_totals",
    "brand_pair_totals",
    "brand_account_totals",
    "brand_post_days",
    "brand_detection_days",
    "post_brands",
)


def _create_tables() -> None:
    op.create_table(
        "post_brands",
        sa.Column(
            "post_id",
            sa.Integer(),
            sa.ForeignKey("posts.id", ondelete="CASCADE", name="fk_post_brands_post_id_posts"),
            primary_key=True,
        ),
        sa.Column("brand", sa.String(100), primary_key=True),
        sa.Column("detections", sa.Integer(), nullable=False),
        sa.Column("max_probability", sa.Float(), nullable=False),
        sa.Column("posted_day", sa.Date(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(300), nullable=False),
        sa.Column("author_handle", sa.String(300)),
        sa.Column("author_followers", sa.BigInteger()),
        sa.Column("image_only", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "brand_detection_days",
        sa.Column("brand", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("previous_day", sa.Date(), primary_key=True),
        sa.Column("probability_bin", sa.Integer(), primary_key=True),
        sa.Column("detections", sa.Integer(), nullable=False),
    )
    op.create_table(
        "brand_post_days",
        sa.Column("brand", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("source_id", sa.Integer(), primary_key=True),
        sa.Column("platform", sa.String(300), primary_key=True),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.Column("image_only_posts", sa.Integer(), nullable=False),
    )
    op.create_table(
        "brand_account_totals",
        sa.Column("brand", sa.String(100), primary_key=True),
        sa.Column("platform", sa.String(300), primary_key=True),
        sa.Column("author_handle", sa.String(300), primary_key=True),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.Column("followers", sa.BigInteger()),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("posts_with_followers", sa.Integer(), nullable=False),
    )
    op.create_table(
        "brand_pair_totals",
        sa.Column("brand_a", sa.String(100), primary_key=True),
        sa.Column("brand_b", sa.String(100), primary_key=True),
        sa.Column("posts", sa.Integer(), nullable=False),
    )
    op.create_table(
        "brand_coendorsement_totals",
        sa.Column("brand", sa.String(100), primary_key=True),
        sa.Column("other_brand", sa.String(100), primary_key=True),
        sa.Column("accounts", sa.Integer(), nullable=False),
    )


def _create_indexes() -> None:
    """Created after the backfill: building an index once is faster than growing it row by row."""
    op.create_index(
        "ix_post_brands_brand_day",
        "post_brands",
        ["brand", "posted_day"],
        postgresql_include=["platform", "author_handle", "author_followers"],
    )
    op.create_index("ix_post_brands_brand_probability", "post_brands", ["brand", "max_probability"])
    op.create_index(
        "ix_post_brands_brand_account",
        "post_brands",
        ["brand", "platform", "author_handle", "posted_day"],
        postgresql_include=["author_followers"],
    )
    op.create_index(
        "ix_brand_account_totals_brand_posts", "brand_account_totals", ["brand", "posts"]
    )
    op.create_index(
        "ix_brand_account_totals_account", "brand_account_totals", ["platform", "author_handle"]
    )


def _fill(dialect: str, insert: str) -> None:
    """Run one ``INSERT INTO table (columns) query`` of the backfill.

    On PostgreSQL the query first fills an unlogged scratch table: ``CREATE TABLE AS`` may run the
    joins and aggregates in parallel workers, ``INSERT ... SELECT`` may not, and at ten million
    detections that is minutes.
    """
    if dialect != "postgresql":
        op.execute(insert)
        return
    target, query = insert.split(")", 1)
    columns = target.split("(", 1)[1]
    op.execute(f"CREATE UNLOGGED TABLE summary_backfill ({columns}) AS {query}")
    op.execute(f"{target}) SELECT {columns} FROM summary_backfill")
    op.execute("DROP TABLE summary_backfill")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("SET LOCAL work_mem = '256MB'")
        op.execute("SET LOCAL maintenance_work_mem = '512MB'")
    op.add_column(
        "detections",
        sa.Column("current", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    with op.batch_alter_table("image_data") as batch:
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
        batch.add_column(sa.Column("thumbnail", sa.LargeBinary()))
    for view in OLD_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    _create_tables()
    op.execute(SUPERSEDED)
    for statement in (_post_brands(dialect), _detection_days(dialect), *TOTALS):
        _fill(dialect, statement)
    _create_indexes()
    op.execute(POST_DETECTIONS)
    op.execute(_brand_weekly(dialect))
    op.execute(BRAND_DAILY)
    op.execute(BRAND_ACCOUNTS)
    op.execute(BRAND_PAIRS)
    op.execute(BRAND_COENDORSEMENT)
    if dialect == "postgresql":
        for table in ("detections", *SUMMARY_TABLES):
            op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    """Back to 0002's tables and views (``image_data.data`` stays nullable: bytes may be gone)."""
    import importlib.util
    from pathlib import Path

    for view in NEW_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table in SUMMARY_TABLES:
        op.drop_table(table)
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of ``images`` would drop the
    # table and, with foreign keys on, cascade to every classification and link.
    op.drop_column("image_data", "thumbnail")
    op.drop_column("detections", "current")
    spec = importlib.util.spec_from_file_location(
        "analytics_views_0002", Path(__file__).with_name("0002_analytics_views.py")
    )
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    previous.upgrade()

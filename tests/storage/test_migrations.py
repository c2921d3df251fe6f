"""The migrations create exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from monitor.storage.db import SCHEMA_REVISION, current_revision, get_engine, head_revision
from monitor.storage.tables import Base


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    assert current_revision(database_url) == head_revision() == SCHEMA_REVISION
    with get_engine(database_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_analytics_views_exist(database_url: str) -> None:
    views = set(inspect(get_engine(database_url)).get_view_names())
    assert {"post_detections", "brand_weekly", "brand_accounts", "brand_pairs"} <= views

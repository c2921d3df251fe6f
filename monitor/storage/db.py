"""Engines, sessions and the schema's migration state.

``session_scope`` is the one unit-of-work boundary: repository functions never commit; the flow that
calls them does, once, by leaving the ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from monitor.exceptions import StorageError

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SCHEMA_REVISION = "0003"
"""The migration this code's tables match (a test checks it is the newest in ``migrations/``)."""


def _enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite the file's folder is created and foreign keys enforced."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
    return create_database_engine(url)


def session_factory(url: str) -> sessionmaker[Session]:
    """A session maker bound to the engine for ``url``."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def read_scope(url: str) -> Iterator[Connection]:
    """A plain connection for read-only SQL (the report), without the ORM's import cost."""
    try:
        with get_engine(url).connect() as connection:
            yield connection
    except OperationalError as exc:
        raise StorageError(f"database error: {_first_line(exc)}") from exc


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on error, always close; map connection errors to StorageError."""
    session = factory()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise StorageError(f"database error: {_first_line(exc)}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _first_line(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic config pointing at ``migrations/`` and at ``url``."""
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise StorageError(
            f"the migrations are not at {MIGRATIONS_DIR}: run monitor from a checkout of the "
            "project (pip install -e .) or copy its migrations/ folder there"
        )

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``."""
    from alembic import command

    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise StorageError(f"cannot migrate {_safe_url(url)}: {_first_line(exc)}") from exc


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None for an empty database.

    Read with one query, without Alembic, so that commands like ``monitor report`` start fast.
    """
    try:
        with get_engine(url).connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.scalar(text("SELECT version_num FROM alembic_version"))
    except OperationalError as exc:
        raise StorageError(f"cannot reach {_safe_url(url)}: {_first_line(exc)}") from exc


def head_revision() -> str | None:
    """The newest revision in ``migrations/`` (the scripts are read: slow, for checks and tests)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def ensure_schema(url: str, *, auto_upgrade: bool) -> None:
    """Make sure the schema is current: migrate it (embedded default) or say how to (production)."""
    current = current_revision(url)
    if current == SCHEMA_REVISION:
        return
    if auto_upgrade:
        upgrade_database(url)
        return
    state = "empty" if current is None else f"at revision {current}"
    raise StorageError(
        f"the database {_safe_url(url)} is {state}, not at the newest schema; run `monitor db upgrade`"
    )


def has_table(url: str, name: str) -> bool:
    """Whether ``name`` exists (used by status checks)."""
    return inspect(get_engine(url)).has_table(name)


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)

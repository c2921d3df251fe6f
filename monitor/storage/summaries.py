"""The analytics summaries, kept exact in the transactions that change what they count.

Every change that can move a figure (a new classification, a newer model's re-classification, a new
post showing an already classified image, a removed source) goes through ``refresh``:

1. lock the images, then the posts, whose facts change (ids in order, so two workers never wait on
   each other in a circle);
2. read what they contribute now (``post_brands`` rows, detections per day) and take it back;
3. make the change;
4. read what they contribute after it and add that;
5. write the difference into the ``brand_*`` totals as additive upserts
   (``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``), keys sorted, so concurrent
   workers touching the same brand and day add up instead of overwriting each other.

Account-level figures (co-endorsement, an account's largest follower count) depend on all of an
account's rows; writers of one account are serialised by a transaction-scoped advisory lock on
PostgreSQL (SQLite serialises all writers anyway).

The counting units (see the README): a *detection* is one brand found in an image's current
classification, counted once however many posts show the image; a *post* shows a brand when any of
its images' current classifications has a detection of it; a *day* is the UTC day of the post's
``created_at`` (its ``collected_at`` when the platform gives no date).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

from sqlalchemy import Date, bindparam, case, text, tuple_
from sqlalchemy.orm import Session

from monitor.storage.counting import NO_PREVIOUS_DAY, PROBABILITY_BINS
from monitor.storage.tables import (
    BrandAccountTotal,
    BrandCoendorsementTotal,
    BrandDetectionDay,
    BrandPairTotal,
    BrandPostDay,
)

CHUNK = 5000
"""Ids per statement (SQLite and psycopg both cap the number of bound parameters)."""


def posted_day_sql(
    dialect: str, created: str = "p.created_at", collected: str = "p.collected_at"
) -> str:
    """The UTC day a post counts on, as SQL for ``dialect``."""
    moment = f"COALESCE({created}, {collected})"
    if dialect == "sqlite":
        return f"date({moment})"
    return f"CAST(timezone('UTC', {moment}) AS date)"


def probability_bin_sql(column: str = "d.probability") -> str:
    """The histogram bin (0..5) of a probability, as SQL."""
    edges = PROBABILITY_BINS[1:-1]
    cases = " ".join(f"WHEN {column} < {edge} THEN {index}" for index, edge in enumerate(edges))
    return f"CASE {cases} ELSE {len(edges)} END"


def image_only_sql(dialect: str, text_column: str = "p.text", brand: str = "d.brand") -> str:
    """True when the post's text does not name the brand (case-insensitive substring), as SQL."""
    find = "instr" if dialect == "sqlite" else "strpos"
    return f"NOT ({find}(lower(COALESCE({text_column}, '')), lower({brand})) > 0)"


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _post_facts_select(dialect: str) -> str:
    return f"""
SELECT p.id AS post_id, d.brand AS brand, COUNT(*) AS detections,
       MAX(d.probability) AS max_probability, {posted_day_sql(dialect)} AS posted_day,
       p.source_id AS source_id, p.platform AS platform, p.author_handle AS author_handle,
       p.author_followers AS author_followers, {image_only_sql(dialect)} AS image_only
FROM posts p
JOIN post_images pi ON pi.post_id = p.id
JOIN detections d ON d.image_id = pi.image_id AND d.current
WHERE p.id IN :ids
GROUP BY p.id, d.brand
"""


POST_FACT_COLUMNS = (
    "post_id, brand, detections, max_probability, posted_day, source_id, platform, "
    "author_handle, author_followers, image_only"
)


def _detection_facts_sql(dialect: str) -> str:
    return f"""
WITH shown AS (
    SELECT pi.image_id AS image_id, {posted_day_sql(dialect)} AS day
    FROM post_images pi JOIN posts p ON p.id = pi.post_id
    WHERE pi.image_id IN :ids
    GROUP BY pi.image_id, {posted_day_sql(dialect)}
), ordered AS (
    SELECT image_id, day, LAG(day) OVER (PARTITION BY image_id ORDER BY day) AS previous_day
    FROM shown
)
SELECT d.brand AS brand, o.day AS day, o.previous_day AS previous_day,
       {probability_bin_sql()} AS probability_bin, COUNT(*) AS detections
FROM detections d
JOIN ordered o ON o.image_id = d.image_id
WHERE d.image_id IN :ids AND d.current
GROUP BY d.brand, o.day, o.previous_day, {probability_bin_sql()}
"""


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def lock_rows(*, session: Session, table: str, ids: Iterable[int]) -> None:
    """``SELECT ... FOR UPDATE`` the rows in id order (no-op on SQLite, whose writers queue)."""
    ordered = sorted(set(ids))
    if not ordered or _dialect(session) != "postgresql":
        return
    for chunk in _chunks(ordered):
        session.execute(
            text(f"SELECT id FROM {table} WHERE id IN :ids ORDER BY id FOR UPDATE").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": chunk},
        )


def posts_showing(*, session: Session, image_ids: Iterable[int]) -> list[tuple[int, int, int]]:
    """(image id, post id, post source id) for every post showing the images."""
    ordered = sorted(set(image_ids))
    rows: list[tuple[int, int, int]] = []
    for chunk in _chunks(ordered):
        rows.extend(
            (row[0], row[1], row[2])
            for row in session.execute(
                text(
                    "SELECT pi.image_id, p.id, p.source_id FROM post_images pi "
                    "JOIN posts p ON p.id = pi.post_id WHERE pi.image_id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": chunk},
            )
        )
    return rows


# --- the facts each image and post contributes -------------------------------------------------


DetectionKey = tuple[str, date, date, int]


def detection_facts(*, session: Session, image_ids: Sequence[int]) -> Counter[DetectionKey]:
    """Detections of the images' current classifications per (brand, day, previous day, bin)."""
    facts: Counter[DetectionKey] = Counter()
    statement = (
        text(_detection_facts_sql(_dialect(session)))
        .bindparams(bindparam("ids", expanding=True))
        .columns(day=Date(), previous_day=Date())
    )
    for chunk in _chunks(sorted(set(image_ids))):
        for row in session.execute(statement, {"ids": chunk}):
            key = (row.brand, row.day, row.previous_day or NO_PREVIOUS_DAY, row.probability_bin)
            facts[key] += row.detections
    return facts


@dataclass(frozen=True)
class PostFact:
    """A ``post_brands`` row: what one post showing one brand contributes."""

    post_id: int
    brand: str
    posted_day: date
    source_id: int
    platform: str
    author_handle: str | None
    author_followers: int | None
    image_only: bool


def _post_fact(row: Any) -> PostFact:
    return PostFact(
        post_id=row.post_id,
        brand=row.brand,
        posted_day=row.posted_day,
        source_id=row.source_id,
        platform=row.platform,
        author_handle=row.author_handle,
        author_followers=row.author_followers,
        image_only=bool(row.image_only),
    )


def _facts_of(*, session: Session, statement: Any, post_ids: Sequence[int]) -> list[PostFact]:
    """Run a ``post_brands`` statement RETURNING its rows for the posts, a chunk of ids at a time."""
    facts: list[PostFact] = []
    for chunk in _chunks(sorted(set(post_ids))):
        facts.extend(_post_fact(row) for row in session.execute(statement, {"ids": chunk}))
    return facts


def take_post_facts(*, session: Session, post_ids: Sequence[int]) -> list[PostFact]:
    """Delete the posts' ``post_brands`` rows and return them (what they counted until now)."""
    statement = (
        text(f"DELETE FROM post_brands WHERE post_id IN :ids RETURNING {POST_FACT_COLUMNS}")
        .bindparams(bindparam("ids", expanding=True))
        .columns(posted_day=Date())
    )
    return _facts_of(session=session, statement=statement, post_ids=post_ids)


def write_post_facts(*, session: Session, post_ids: Sequence[int]) -> list[PostFact]:
    """Insert the posts' ``post_brands`` rows from the base tables and return them."""
    statement = (
        text(
            f"INSERT INTO post_brands ({POST_FACT_COLUMNS}) "
            f"{_post_facts_select(_dialect(session))} RETURNING {POST_FACT_COLUMNS}"
        )
        .bindparams(bindparam("ids", expanding=True))
        .columns(posted_day=Date())
    )
    return _facts_of(session=session, statement=statement, post_ids=post_ids)


# --- the difference, written as additive upserts -----------------------------------------------


@dataclass
class SummaryDelta:
    """What a change adds to (or, negative, takes from) each summary table."""

    detection_days: Counter[DetectionKey] = field(default_factory=Counter)
    post_days: dict[tuple[str, date, int, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    accounts: dict[tuple[str, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    account_largest: dict[tuple[str, str, str], int] = field(default_factory=dict)
    accounts_to_recount: set[tuple[str, str, str]] = field(default_factory=set)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)


def compute_delta(
    *,
    old_detections: Counter[DetectionKey],
    new_detections: Counter[DetectionKey],
    old_posts: Sequence[PostFact],
    new_posts: Sequence[PostFact],
) -> SummaryDelta:
    """The summaries' change from the before and after facts of the refreshed images and posts."""
    delta = SummaryDelta()
    delta.detection_days.update(new_detections)
    delta.detection_days.subtract(old_detections)
    old_keys = {(fact.post_id, fact.brand): fact for fact in old_posts}
    new_keys = {(fact.post_id, fact.brand): fact for fact in new_posts}
    for key, fact in new_keys.items():
        if key not in old_keys:
            _add_post(delta, fact, sign=1)
    for key, fact in old_keys.items():
        if key not in new_keys:
            _add_post(delta, fact, sign=-1)
    _add_pairs(delta, old_posts, sign=-1)
    _add_pairs(delta, new_posts, sign=1)
    return delta


def _add_post(delta: SummaryDelta, fact: PostFact, *, sign: int) -> None:
    day = delta.post_days[(fact.brand, fact.posted_day, fact.source_id, fact.platform)]
    day[0] += sign
    day[1] += sign * int(fact.image_only)
    if fact.author_handle is None:
        return
    key = (fact.brand, fact.platform, fact.author_handle)
    account = delta.accounts[key]
    account[0] += sign
    if fact.author_followers is not None:
        account[1] += sign * fact.author_followers
        account[2] += sign
        if sign > 0:
            delta.account_largest[key] = max(
                delta.account_largest.get(key, fact.author_followers), fact.author_followers
            )
    if sign < 0:
        delta.accounts_to_recount.add(key)


def _add_pairs(delta: SummaryDelta, facts: Sequence[PostFact], *, sign: int) -> None:
    brands_by_post: dict[int, set[str]] = defaultdict(set)
    for fact in facts:
        brands_by_post[fact.post_id].add(fact.brand)
    for brands in brands_by_post.values():
        for pair in combinations(sorted(brands), 2):
            delta.pairs[pair] += sign


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` (PostgreSQL, SQLite 3.24+)."""
    if _dialect(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _upsert_add(
    session: Session,
    table: Any,
    keys: Sequence[str],
    rows: list[dict[str, Any]],
    added: Sequence[str],
    *,
    returning: Sequence[str] = (),
    extra_set: Callable[[Any], dict[str, Any]] | None = None,
) -> list[Any]:
    """Insert ``rows`` or add their ``added`` columns to the stored ones; keys sorted first."""
    rows = sorted(rows, key=lambda row: tuple(row[key] for key in keys))
    results: list[Any] = []
    for start in range(0, len(rows), 500):
        statement = _insert(session, table).values(rows[start : start + 500])
        values = {
            name: getattr(table.c, name) + getattr(statement.excluded, name) for name in added
        }
        if extra_set is not None:
            values.update(extra_set(statement))
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
        if returning:
            statement = statement.returning(*(getattr(table.c, name) for name in returning))
            results.extend(session.execute(statement).all())
        else:
            session.execute(statement)
    return results


def apply_delta(*, session: Session, delta: SummaryDelta) -> None:
    """Write ``delta`` into the summary tables, in one fixed order of tables and keys."""
    _apply_detection_days(session, delta)
    _apply_post_days(session, delta)
    _apply_accounts(session, delta)
    pairs = [
        {"brand_a": a, "brand_b": b, "posts": n} for (a, b), n in delta.pairs.items() if n != 0
    ]
    if pairs:
        _upsert_add(session, BrandPairTotal.__table__, ("brand_a", "brand_b"), pairs, ("posts",))


def _apply_detection_days(session: Session, delta: SummaryDelta) -> None:
    rows = [
        {
            "brand": brand,
            "day": day,
            "previous_day": previous,
            "probability_bin": probability_bin,
            "detections": n,
        }
        for (brand, day, previous, probability_bin), n in delta.detection_days.items()
        if n != 0
    ]
    if rows:
        _upsert_add(
            session,
            BrandDetectionDay.__table__,
            ("brand", "day", "previous_day", "probability_bin"),
            rows,
            ("detections",),
        )


def _apply_post_days(session: Session, delta: SummaryDelta) -> None:
    rows = [
        {
            "brand": brand,
            "day": day,
            "source_id": source_id,
            "platform": platform,
            "posts": posts,
            "image_only_posts": image_only,
        }
        for (brand, day, source_id, platform), (posts, image_only) in delta.post_days.items()
        if posts or image_only
    ]
    if rows:
        _upsert_add(
            session,
            BrandPostDay.__table__,
            ("brand", "day", "source_id", "platform"),
            rows,
            ("posts", "image_only_posts"),
        )


def _account_lock_key(platform: str, handle: str) -> int:
    digest = hashlib.blake2b(f"{platform}\0{handle}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_accounts(session: Session, accounts: Iterable[tuple[str, str]]) -> None:
    """Serialise writers of the same accounts (PostgreSQL; SQLite has one writer at a time)."""
    if _dialect(session) != "postgresql":
        return
    keys = sorted({_account_lock_key(platform, handle) for platform, handle in accounts})
    if keys:
        session.execute(
            text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": keys},
        )


def _largest_followers(statement: Any) -> dict[str, Any]:
    table = BrandAccountTotal.__table__
    stored, offered = table.c.followers, statement.excluded.followers
    return {
        "followers": case(
            (offered.is_(None), stored),
            (stored.is_(None), offered),
            (offered > stored, offered),
            else_=stored,
        )
    }


def _apply_accounts(session: Session, delta: SummaryDelta) -> None:
    changed = {key: values for key, values in delta.accounts.items() if any(values)}
    recount = {key for key in delta.accounts_to_recount if key in delta.accounts}
    if not changed and not recount:
        return
    _lock_accounts(session, {(platform, handle) for _, platform, handle in set(changed) | recount})
    rows = [
        {
            "brand": brand,
            "platform": platform,
            "author_handle": handle,
            "posts": posts,
            "reach": reach,
            "posts_with_followers": with_followers,
            "followers": delta.account_largest.get((brand, platform, handle)),
        }
        for (brand, platform, handle), (posts, reach, with_followers) in changed.items()
    ]
    stored = _upsert_add(
        session,
        BrandAccountTotal.__table__,
        ("brand", "platform", "author_handle"),
        rows,
        ("posts", "reach", "posts_with_followers"),
        returning=("brand", "platform", "author_handle", "posts"),
        extra_set=_largest_followers,
    )
    _recount_largest(session, recount)
    gained: dict[tuple[str, str], set[str]] = defaultdict(set)
    lost: dict[tuple[str, str], set[str]] = defaultdict(set)
    for brand, platform, handle, posts in stored:
        added = changed[(brand, platform, handle)][0]
        if posts > 0 and posts == added:
            gained[(platform, handle)].add(brand)
        elif posts == 0 and added < 0:
            lost[(platform, handle)].add(brand)
    _apply_coendorsement(session, gained, lost)


def _recount_largest(session: Session, keys: set[tuple[str, str, str]]) -> None:
    """An account's largest follower count, read again where a post stopped counting."""
    if not keys:
        return
    session.execute(
        text(
            "UPDATE brand_account_totals SET followers = ("
            " SELECT MAX(pb.author_followers) FROM post_brands pb WHERE pb.brand = :brand"
            " AND pb.platform = :platform AND pb.author_handle = :handle)"
            " WHERE brand = :brand AND platform = :platform AND author_handle = :handle"
        ),
        [
            {"brand": brand, "platform": platform, "handle": handle}
            for brand, platform, handle in sorted(keys)
        ],
    )


def _apply_coendorsement(
    session: Session,
    gained: dict[tuple[str, str], set[str]],
    lost: dict[tuple[str, str], set[str]],
) -> None:
    """Accounts that started or stopped showing a brand move its co-endorsement counts."""
    accounts = sorted(set(gained) | set(lost))
    if not accounts:
        return
    table = BrandAccountTotal.__table__
    now_shown: dict[tuple[str, str], set[str]] = defaultdict(set)
    for start in range(0, len(accounts), 500):
        chunk = accounts[start : start + 500]
        rows = session.execute(
            table.select()
            .with_only_columns(table.c.platform, table.c.author_handle, table.c.brand)
            .where(tuple_(table.c.platform, table.c.author_handle).in_(chunk), table.c.posts > 0)
        )
        for platform, handle, brand in rows:
            now_shown[(platform, handle)].add(brand)
    counts: Counter[tuple[str, str]] = Counter()
    for account in accounts:
        after = now_shown[account]
        before = (after - gained[account]) | lost[account]
        for brand in gained[account] | lost[account]:
            for other in (after | before) - {brand}:
                change = int(other in after and brand in after) - int(
                    other in before and brand in before
                )
                if change:
                    counts[(brand, other)] += change
                    if other not in gained[account] | lost[account]:
                        counts[(other, brand)] += change
    rows_out = [
        {"brand": brand, "other_brand": other, "accounts": n}
        for (brand, other), n in counts.items()
        if n != 0
    ]
    if rows_out:
        _upsert_add(
            session,
            BrandCoendorsementTotal.__table__,
            ("brand", "other_brand"),
            rows_out,
            ("accounts",),
        )


# --- the one entry point -----------------------------------------------------------------------


def refresh(
    *,
    session: Session,
    image_ids: Iterable[int],
    post_ids: Iterable[int],
    change: Callable[[], None],
) -> None:
    """Run ``change`` and move every summary by exactly what it changed for these images and posts.

    ``image_ids`` are the images whose detections or posts change; ``post_ids`` the posts whose
    shown brands may change. Both are locked (images first) before anything is read.
    """
    images = sorted(set(image_ids))
    posts = sorted(set(post_ids))
    lock_rows(session=session, table="images", ids=images)
    lock_rows(session=session, table="posts", ids=posts)
    session.flush()
    old_detections = detection_facts(session=session, image_ids=images)
    old_posts = take_post_facts(session=session, post_ids=posts)
    change()
    session.flush()
    new_detections = detection_facts(session=session, image_ids=images)
    new_posts = write_post_facts(session=session, post_ids=posts)
    apply_delta(
        session=session,
        delta=compute_delta(
            old_detections=old_detections,
            new_detections=new_detections,
            old_posts=old_posts,
            new_posts=new_posts,
        ),
    )

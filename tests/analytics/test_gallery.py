"""Which posts the HTML report shows, and the photos it embeds, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

from PIL import Image

from monitor.analytics.gallery import (
    THUMBNAIL_SIDE,
    account_url,
    build_gallery,
    evidence_image,
    excerpt,
    thumbnail_jpeg,
)
from monitor.pipeline import Services
from monitor.storage.db import session_scope
from tests.analytics.factories import PhotoPost, store_photo_posts


def many_posts(count: int) -> list[PhotoPost]:
    """Posts whose probabilities fall from 0.99 by 0.01 each, one photo and one box each."""
    return [
        PhotoPost(
            external_id=str(number),
            detections=[("acme", round(0.99 - number * 0.01, 2), (10, 20, 110, 80))],
            day=1 + number % 28,
            author=f"user{number % 7}",
        )
        for number in range(count)
    ]


def test_most_confident_first_then_a_seeded_sample_of_the_rest(services: Services) -> None:
    store_photo_posts(services, many_posts(40))
    with session_scope(services.sessions) as session:
        gallery = build_gallery(session=session, brand="acme", size=5, seed=7)
        again = build_gallery(session=session, brand="acme", size=5, seed=7)
        other = build_gallery(session=session, brand="acme", size=5, seed=8)
    assert [item.probability for item in gallery.confident] == [0.99, 0.98, 0.97, 0.96, 0.95]
    sample_ids = [item.post_id for item in gallery.sample]
    assert len(sample_ids) == 5
    assert not set(sample_ids) & {item.post_id for item in gallery.confident}
    assert sample_ids == [item.post_id for item in again.sample]
    assert sample_ids != [item.post_id for item in other.sample]
    # a random sample, not the next most confident
    assert sorted(item.probability for item in gallery.sample) != [0.90, 0.91, 0.92, 0.93, 0.94]


def test_cards_carry_the_post_the_box_and_a_thumbnail(services: Services) -> None:
    post = PhotoPost(
        external_id="p1",
        detections=[("acme", 0.9, (100, 60, 260, 200))],
        author="cy",
        author_name="Cy Young",
        text="word " * 200,
        platform="mastodon:mastodon.social",
        size=(1200, 900),
    )
    store_photo_posts(services, [post])
    with session_scope(services.sessions) as session:
        (item,) = build_gallery(session=session, brand="acme").confident
    assert (item.box, item.image_width, item.image_height) == ((100, 60, 260, 200), 1200, 900)
    assert (item.author, item.author_name) == ("cy", "Cy Young")
    assert item.author_url == "https://mastodon.social/@cy"
    assert item.post_url == "https://example.social/p1"
    assert item.posted_at is not None and item.posted_at.tzinfo is not None
    assert len(item.text_excerpt) <= 281 and item.text_excerpt.endswith("…")
    assert item.image_media_type == "image/jpeg" and item.image_bytes is not None
    with Image.open(io.BytesIO(item.image_bytes)) as thumbnail:
        assert max(thumbnail.size) == THUMBNAIL_SIDE
        assert abs(thumbnail.size[0] / thumbnail.size[1] - 1200 / 900) < 0.01


def test_a_photo_the_store_did_not_keep_falls_back_to_its_url(services: Services) -> None:
    store_photo_posts(
        services,
        [PhotoPost(external_id="gone", detections=[("acme", 0.9, (1, 2, 3, 4))], keep_bytes=False)],
    )
    with session_scope(services.sessions) as session:
        (item,) = build_gallery(session=session, brand="acme").confident
        assert evidence_image(session=session, image_id=item.image_id) is None
    assert item.image_bytes is None
    assert item.image_url == "https://img.example/gone.jpg"
    assert (item.image_width, item.image_height) == (400, 300)


def test_one_card_per_photo_even_when_many_posts_show_it(services: Services) -> None:
    shared = "https://img.example/shared.jpg"
    posts = [
        PhotoPost(external_id=str(n), detections=[("acme", 0.9, None)], image_url=shared)
        for n in range(4)
    ]
    store_photo_posts(services, posts)
    with session_scope(services.sessions) as session:
        gallery = build_gallery(session=session, brand="acme")
    assert len(gallery.confident) == 1
    assert gallery.confident[0].box is None


def test_doubtful_ones_are_near_the_models_threshold(services: Services) -> None:
    store_photo_posts(services, many_posts(40), model_version="m1")
    with session_scope(services.sessions) as session:
        gallery = build_gallery(
            session=session, brand="acme", size=50, model_thresholds={"m1": 0.55}
        )
    # halfway from the threshold to 1: those that barely cleared it
    assert gallery.doubt_below is not None and abs(gallery.doubt_below - 0.775) < 1e-9
    probabilities = [item.probability for item in gallery.doubtful]
    assert probabilities == sorted(probabilities)
    assert probabilities == [round(0.60 + step * 0.01, 2) for step in range(18)]
    assert "threshold 0.550" in gallery.doubt_rule


def test_without_the_models_threshold_the_lowest_tenth_is_doubtful(services: Services) -> None:
    store_photo_posts(services, many_posts(40), model_version="unknown-model")
    with session_scope(services.sessions) as session:
        gallery = build_gallery(session=session, brand="acme", model_thresholds={"m1": 0.55})
    assert [item.probability for item in gallery.doubtful] == [0.60, 0.61, 0.62, 0.63]
    assert "lowest tenth" in gallery.doubt_rule


def test_a_window_without_detections_gives_empty_sets(services: Services) -> None:
    store_photo_posts(services, many_posts(3))
    with session_scope(services.sessions) as session:
        from datetime import date

        gallery = build_gallery(session=session, brand="acme", since=date(2027, 1, 1))
    assert (gallery.confident, gallery.sample, gallery.doubtful) == ([], [], [])
    assert gallery.doubt_below is None


def test_account_urls_only_where_the_platform_names_one() -> None:
    assert account_url("mastodon:mastodon.social", "ana") == "https://mastodon.social/@ana"
    assert (
        account_url("mastodon:mastodon.social", "bo@fosstodon.org") == "https://fosstodon.org/@bo"
    )
    assert account_url("bluesky", "ana.bsky.social") == "https://bsky.app/profile/ana.bsky.social"
    assert account_url("reddit", "spez") == "https://www.reddit.com/user/spez"
    assert account_url("rss:https://blog.example/feed", "https://blog.example/me") == (
        "https://blog.example/me"
    )
    assert account_url("mastodon:mastodon.social", "bo@evil.example/x?") is None
    assert account_url("jsonl:export", "ana") is None
    assert account_url("reddit", None) is None
    assert account_url("reddit", "a/../b?x") == "https://www.reddit.com/user/a%2F..%2Fb%3Fx"


def test_excerpt_is_one_line_cut_at_a_word() -> None:
    assert excerpt("  two\n\nlines  ") == "two lines"
    assert excerpt("alpha beta gamma", limit=12) == "alpha beta…"
    assert excerpt(None) == ""


def test_thumbnails_are_upright_as_the_classifier_saw_the_photo() -> None:
    """A phone photo stored sideways with EXIF orientation 6: its boxes are in the upright frame."""
    stored = Image.new("RGB", (1200, 800), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 100, 800))  # the stored left edge is the upright top
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif)
    with Image.open(io.BytesIO(thumbnail_jpeg(buffer.getvalue()))) as thumbnail:
        assert thumbnail.size == (320, 480)
        red, _, blue = thumbnail.convert("RGB").getpixel((160, 10))
        assert red > 200 and blue < 60


def test_transparent_photos_are_shown_on_white() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 32), (0, 0, 0, 0)).save(buffer, format="PNG")
    with Image.open(io.BytesIO(thumbnail_jpeg(buffer.getvalue()))) as thumbnail:
        assert thumbnail.size == (64, 32)
        assert min(thumbnail.convert("RGB").getpixel((5, 5))) > 240

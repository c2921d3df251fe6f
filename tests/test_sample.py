"""The demo's generated sample: deterministic, laid out as the trainer and the jsonl source expect."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.collectors.jsonl import JsonlCollector
from monitor.exceptions import DatasetError
from monitor.sample import (
    DEMO_BRANDS,
    compose_post_image,
    place_mark,
    plan_sample_posts,
    render_brand_mark,
    render_scene,
    write_sample_posts,
    write_training_set,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def files_by_name(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- marks and scenes ----------------------------------------------------------------------------


def test_demo_brands_are_four_distinct_lowercase_names() -> None:
    assert len(DEMO_BRANDS) == 4
    assert len(set(DEMO_BRANDS)) == 4
    assert all(brand == brand.lower() and brand.isalpha() for brand in DEMO_BRANDS)


def test_brand_marks_are_transparent_squares_that_differ_per_brand() -> None:
    marks = {brand: render_brand_mark(brand, 128) for brand in DEMO_BRANDS}
    for mark in marks.values():
        assert mark.mode == "RGBA"
        assert mark.size == (128, 128)
        alpha = pixels(mark.getchannel("A"))
        assert alpha.min() == 0, "the background is transparent"
        assert (alpha == 255).mean() > 0.2, "the shape and name are solid"
    for first in DEMO_BRANDS:
        for second in DEMO_BRANDS:
            if first < second:
                difference = np.abs(pixels(marks[first]) - pixels(marks[second])).mean()
                assert difference > 20, (first, second)


def test_brand_marks_are_deterministic_also_for_other_names() -> None:
    assert render_brand_mark("acme", 64).tobytes() == render_brand_mark("acme", 64).tobytes()
    other = render_brand_mark("northwind", 64)
    assert other.tobytes() == render_brand_mark("northwind", 64).tobytes()
    assert other.tobytes() != render_brand_mark("contoso", 64).tobytes()


@pytest.mark.parametrize(("brand", "size"), [("acme", 16), ("", 64), ("  ", 64)])
def test_bad_mark_requests_are_refused(brand: str, size: int) -> None:
    with pytest.raises(ValueError, match=r"brand|size"):
        render_brand_mark(brand, size)


def test_scenes_are_rgb_varied_and_reproducible() -> None:
    first = render_scene(random.Random(5), width=400, height=300)
    assert first.mode == "RGB"
    assert first.size == (400, 300)
    assert first.tobytes() == render_scene(random.Random(5), width=400, height=300).tobytes()
    other = render_scene(random.Random(6), width=400, height=300)
    assert np.abs(pixels(first) - pixels(other)).mean() > 20
    assert pixels(first).std() > 10, "not a flat colour"


def test_tiny_scenes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        render_scene(random.Random(0), width=8, height=300)


@pytest.mark.parametrize("seed", range(25))
def test_placed_mark_changes_only_its_box_which_is_inside_the_image(seed: int) -> None:
    rng = random.Random(seed)
    scene = render_scene(rng, width=rng.randint(320, 640), height=rng.randint(320, 640))
    original = scene.tobytes()
    composed, box = place_mark(scene, render_brand_mark(DEMO_BRANDS[seed % 4], 256), rng)
    assert scene.tobytes() == original, "the scene itself is left alone"
    assert composed.mode == "RGB"
    assert composed.size == scene.size
    x1, y1, x2, y2 = box
    assert 0 <= x1 < x2 <= scene.width
    assert 0 <= y1 < y2 <= scene.height
    short_side = min(scene.size)
    assert 0.09 * short_side <= max(x2 - x1, y2 - y1) <= 0.45 * 1.3 * short_side
    changed = np.abs(pixels(composed) - pixels(scene)).sum(axis=2) > 0
    outside = changed.copy()
    outside[y1:y2, x1:x2] = False
    assert not outside.any()
    assert changed[y1:y2, x1:x2].mean() > 0.3


# --- the training set ----------------------------------------------------------------------------


def test_training_set_layout(tmp_path: Path) -> None:
    train = write_training_set(tmp_path, per_brand=3, negatives=4, seed=7)
    assert train == tmp_path / "train"
    assert sorted(path.name for path in train.iterdir()) == sorted(DEMO_BRANDS)
    for brand in DEMO_BRANDS:
        assert len(list((train / brand).glob("*.jpg"))) == 3
    negatives = sorted((tmp_path / "negatives").glob("*.jpg"))
    assert len(negatives) == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["negatives", "train"]
    for path in [*train.rglob("*.jpg"), *negatives]:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"
            assert all(320 <= side <= 640 for side in image.size)


def test_training_set_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    write_training_set(tmp_path / "a", per_brand=2, negatives=2, seed=3)
    write_training_set(tmp_path / "b", per_brand=2, negatives=2, seed=3)
    write_training_set(tmp_path / "c", per_brand=2, negatives=2, seed=4)
    assert files_by_name(tmp_path / "a") == files_by_name(tmp_path / "b")
    assert files_by_name(tmp_path / "a") != files_by_name(tmp_path / "c")


def test_training_set_is_not_mixed_into_a_filled_folder(tmp_path: Path) -> None:
    (tmp_path / "train" / "acme").mkdir(parents=True)
    (tmp_path / "train" / "acme" / "mine.jpg").write_bytes(b"keep me")
    with pytest.raises(DatasetError, match="already holds files"):
        write_training_set(tmp_path, per_brand=1, negatives=0)
    assert (tmp_path / "train" / "acme" / "mine.jpg").read_bytes() == b"keep me"


def test_training_set_counts_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per_brand"):
        write_training_set(tmp_path, per_brand=0)


# --- the sample posts ----------------------------------------------------------------------------


def read_posts(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_posts_parse_and_reference_existing_images(tmp_path: Path) -> None:
    posts_path = write_sample_posts(tmp_path, count=12, seed=2, now=NOW)
    assert posts_path == tmp_path / "posts.jsonl"
    posts = read_posts(posts_path)
    assert len(posts) == 12
    assert len({post["id"] for post in posts}) == 12
    for post in posts:
        assert set(post) == {
            "id", "author", "author_name", "followers", "url", "text", "created_at", "images"
        }  # fmt: skip
        assert post["url"] == f"https://example.social/@{post['author']}/{post['id']}"
        assert isinstance(post["followers"], int)
        assert isinstance(post["images"], list)
        for reference in post["images"]:
            image_path = posts_path.parent / reference
            assert not Path(reference).is_absolute()
            with Image.open(image_path) as image:
                assert all(320 <= side <= 640 for side in image.size)
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 12
    assert not list(tmp_path.glob(".*")), "no partial files left behind"


def test_posts_are_spread_over_the_two_weeks_before_now(tmp_path: Path) -> None:
    posts = read_posts(write_sample_posts(tmp_path, count=12, seed=2, now=NOW))
    times = [datetime.fromisoformat(str(post["created_at"])) for post in posts]
    assert all(time.tzinfo is not None and time.utcoffset() == timedelta(0) for time in times)
    assert str(posts[0]["created_at"]).endswith("Z")
    assert times == sorted(times)
    assert all(NOW - timedelta(days=14) <= time <= NOW for time in times)
    assert times[-1] - times[0] > timedelta(days=5)


def test_posts_are_deterministic_for_a_seed_and_now(tmp_path: Path) -> None:
    write_sample_posts(tmp_path / "a", count=6, seed=9, now=NOW)
    write_sample_posts(tmp_path / "b", count=6, seed=9, now=NOW)
    write_sample_posts(tmp_path / "c", count=6, seed=10, now=NOW)
    assert files_by_name(tmp_path / "a") == files_by_name(tmp_path / "b")
    assert files_by_name(tmp_path / "a") != files_by_name(tmp_path / "c")


def test_now_must_carry_a_timezone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        write_sample_posts(tmp_path, count=1, now=datetime(2026, 3, 1))


def test_share_of_posts_showing_brands() -> None:
    planned = plan_sample_posts(random.Random(1), count=40, now=NOW)
    shown = Counter(len(post.brands) for post in planned)
    assert shown == {1: 28, 2: 4, 0: 8}
    assert all(len(set(post.brands)) == len(post.brands) for post in planned)
    assert all(set(post.brands) <= set(DEMO_BRANDS) for post in planned)


def test_most_texts_do_not_name_the_brand_they_show() -> None:
    planned = plan_sample_posts(random.Random(1), count=400, now=NOW)
    branded = [post for post in planned if post.brands]
    naming = [p for p in branded if any(b in p.text.lower() for b in p.brands)]
    assert 0 < len(naming) < 0.3 * len(branded)


def test_some_authors_favour_one_brand() -> None:
    planned = plan_sample_posts(random.Random(1), count=400, now=NOW)
    favoured = [post for post in planned if post.author.favourite and post.brands]
    with_favourite = [post for post in favoured if post.author.favourite in post.brands]
    assert len(with_favourite) > 0.6 * len(favoured)
    assert len({post.author.handle for post in planned}) == 12


def test_jsonl_source_reads_the_sample(tmp_path: Path) -> None:
    posts_path = write_sample_posts(tmp_path, count=5, seed=3, now=NOW)
    batch = JsonlCollector(posts_path, source_name="demo").collect(cursor=None, limit=100)
    assert len(batch.posts) == 5
    for post in batch.posts:
        assert post.created_at is not None and post.created_at <= NOW
        assert len(post.image_urls) == 1
        assert post.image_urls[0].startswith("file://")
        assert Path(post.image_urls[0].removeprefix("file://")).is_file()


def test_composing_needs_a_mark_for_every_brand() -> None:
    marks = {"acme": render_brand_mark("acme", 64)}
    with pytest.raises(ValueError, match="no mark given for globex"):
        compose_post_image(["acme", "globex"], random.Random(0), marks)

"""The folder kind: image files as posts, oldest first, resumed by the cursor."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.collectors.base import CollectorContext, build_collector, validate_options
from monitor.collectors.folder import FolderCollector
from monitor.exceptions import ConfigurationError, MalformedSourceError, SourceUnavailableError


def make_file(root: Path, relative: str, modified: int) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really an image; the collector does not read it")
    os.utime(path, (modified, modified))
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    make_file(root, "b.jpg", 1_700_000_200)
    make_file(root, "a.PNG", 1_700_000_100)
    make_file(root, "nested/deeper/c.webp", 1_700_000_300)
    make_file(root, "notes.txt", 1_700_000_400)
    make_file(root, ".thumbnails/d.jpg", 1_700_000_500)
    make_file(root, "._e.jpg", 1_700_000_600)
    return root


def collector(root: Path) -> FolderCollector:
    return FolderCollector(root, source_name="camera")


def test_every_image_file_is_a_post_oldest_first(photos: Path) -> None:
    batch = collector(photos).collect(cursor=None, limit=10)

    assert [post.external_id for post in batch.posts] == ["a.PNG", "b.jpg", "nested/deeper/c.webp"]
    first = batch.posts[0]
    assert first.platform == "folder:camera"
    assert first.created_at == datetime.fromtimestamp(1_700_000_100, UTC)
    assert first.author_handle is None
    assert first.image_urls == ((photos / "a.PNG").resolve().as_uri(),)
    assert first.image_urls[0].startswith("file:///")


def test_second_run_yields_only_new_files(photos: Path) -> None:
    first = collector(photos).collect(cursor=None, limit=10)
    make_file(photos, "later.gif", 1_700_000_900)

    second = collector(photos).collect(cursor=first.cursor, limit=10)

    assert [post.external_id for post in second.posts] == ["later.gif"]
    assert collector(photos).collect(cursor=second.cursor, limit=10).posts == []


def test_limit_resumes_where_it_stopped_even_with_tied_times(tmp_path: Path) -> None:
    for name in ("x1.jpg", "x2.jpg", "x3.jpg"):
        make_file(tmp_path, name, 1_700_000_000)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        batch = collector(tmp_path).collect(cursor=cursor, limit=2)
        seen += [post.external_id for post in batch.posts]
        cursor = batch.cursor or cursor

    assert seen == ["x1.jpg", "x2.jpg", "x3.jpg"]


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        collector(tmp_path / "nowhere").collect(cursor=None, limit=5)


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    path = make_file(tmp_path, "single.jpg", 1_700_000_000)
    with pytest.raises(MalformedSourceError, match="not a folder"):
        collector(path).collect(cursor=None, limit=5)


def test_registered_kind_builds_from_options(photos: Path) -> None:
    options = validate_options("folder", {"path": str(photos)})
    built = build_collector("folder", options, CollectorContext(source_name="cam", http=None))

    assert len(built.collect(cursor=None, limit=10).posts) == 3
    with pytest.raises(ConfigurationError, match="path"):
        validate_options("folder", {})
    with pytest.raises(ConfigurationError, match="url: Extra inputs"):
        validate_options("folder", {"path": "x", "url": "http://example.com"})

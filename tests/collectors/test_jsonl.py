"""The jsonl kind: one post per line, bad lines skipped with a warning, read incrementally."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.collectors.jsonl import JsonlCollector
from monitor.exceptions import MalformedSourceError, SourceUnavailableError

DATA = Path(__file__).parent / "data"


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.jsonl"
    shutil.copy(DATA / "export.jsonl", path)
    return path


def collector(path: Path) -> JsonlCollector:
    return JsonlCollector(path, source_name="archive")


def test_reads_every_valid_line(export: Path) -> None:
    posts = collector(export).collect(cursor=None, limit=100).posts

    assert [post.external_id for post in posts] == ["p1", "2", "p4", "p6"]
    first = posts[0]
    assert first.platform == "jsonl:archive"
    assert (first.author_handle, first.author_name, first.author_followers) == (
        "alice",
        "Alice A.",
        1200,
    )
    assert first.created_at == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert first.language == "en"
    assert first.image_urls == ("https://cdn.example/p1.jpg",)


def test_local_image_paths_become_file_urls(export: Path) -> None:
    second = collector(export).collect(cursor=None, limit=2).posts[1]

    assert second.created_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert second.image_urls == (
        (export.parent / "images" / "two.png").as_uri(),
        "file:///srv/archive/two-b.jpg",
        "file:///srv/archive/two-c.jpg",
    )


def test_missing_fields_and_odd_values(export: Path) -> None:
    posts = {
        post.external_id: post for post in collector(export).collect(cursor=None, limit=9).posts
    }

    text_only = posts["p4"]
    assert (text_only.author_handle, text_only.created_at, text_only.image_urls) == (None, None, ())
    dave = posts["p6"]
    assert dave.created_at == datetime(2024, 3, 2, 8, 0, tzinfo=UTC)  # naive means UTC
    assert dave.author_followers == 12
    assert dave.image_urls == ("https://cdn.example/p6.jpg",)


def test_bad_lines_are_skipped_with_a_warning(
    export: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        collector(export).collect(cursor=None, limit=100)

    warnings = [record.getMessage() for record in caplog.records]
    assert any("line 3: not JSON" in message for message in warnings)
    assert any("line 4: id: Field required" in message for message in warnings)
    assert any("line 6: created_at" in message for message in warnings)
    assert any("line 7" in message for message in warnings)
    assert any("data:image/png" in message for message in warnings)
    assert any("javascript:alert" in message for message in warnings)


def test_second_run_reads_only_appended_lines(export: Path) -> None:
    first = collector(export).collect(cursor=None, limit=100)
    with export.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "p7", "images": ["https://cdn.example/p7.jpg"]}\n')

    second = collector(export).collect(cursor=first.cursor, limit=100)

    assert [post.external_id for post in second.posts] == ["p7"]
    assert collector(export).collect(cursor=second.cursor, limit=100).posts == []


def test_limit_resumes_at_the_next_line(export: Path) -> None:
    first = collector(export).collect(cursor=None, limit=2)
    second = collector(export).collect(cursor=first.cursor, limit=2)

    assert [post.external_id for post in first.posts] == ["p1", "2"]
    assert [post.external_id for post in second.posts] == ["p4", "p6"]


def test_a_replaced_export_is_read_from_the_start(export: Path) -> None:
    first = collector(export).collect(cursor=None, limit=100)
    export.write_text('{"id": "fresh-1"}\n{"id": "fresh-2"}\n' * 40, encoding="utf-8")

    again = collector(export).collect(cursor=first.cursor, limit=100)

    assert [post.external_id for post in again.posts][:2] == ["fresh-1", "fresh-2"]


def test_an_unfinished_last_line_waits_for_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "growing.jsonl"
    path.write_text('{"id": "done"}\n{"id": "half', encoding="utf-8")

    first = collector(path).collect(cursor=None, limit=10)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('-written"}\n')
    second = collector(path).collect(cursor=first.cursor, limit=10)

    assert [post.external_id for post in first.posts] == ["done"]
    assert [post.external_id for post in second.posts] == ["half-written"]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match=r"export file .*nowhere.jsonl does not exist"):
        collector(tmp_path / "nowhere.jsonl").collect(cursor=None, limit=10)
    with pytest.raises(MalformedSourceError, match="not a file"):
        collector(tmp_path).collect(cursor=None, limit=10)

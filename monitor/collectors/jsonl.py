"""The ``jsonl`` kind: posts from an export file, one JSON object per line.

Exports from other tools, archives and hand-made test sets arrive as JSON Lines. A bad line is
skipped with a logged warning instead of failing the file, because one broken record should not
hide thousands of good ones. The cursor is the byte offset after the last line read, so a growing
export is read incrementally; a file that was replaced or truncated is read again from the start
(the pipeline ignores posts it already has).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.collectors._common import as_utc, expect_options, web_image_urls
from monitor.collectors.base import (
    CollectorContext,
    CollectorKind,
    CollectorOptions,
    register_kind,
)
from monitor.domain import CollectedPost, CollectionBatch
from monitor.exceptions import MalformedSourceError, SourceUnavailableError

logger = logging.getLogger(__name__)

HEAD_BYTES = 4096
"""How much of the file's start identifies it, to notice a replaced export."""


class JsonlOptions(CollectorOptions):
    """Options of a ``jsonl`` source."""

    path: str

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a .jsonl file")
        return value.strip()


class ExportRecord(BaseModel):
    """One line of an export; fields beyond these are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str | int
    author: str | None = None
    url: str | None = None
    text: str | None = None
    created_at: datetime | None = None
    images: list[str] = Field(default_factory=list)
    author_name: str | None = None
    followers: int | None = Field(None, ge=0)
    lang: str | None = None
    reposts: int | None = Field(None, ge=0)

    @field_validator("id")
    @classmethod
    def _id_not_empty(cls, value: str | int) -> str | int:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value


def image_url(reference: str, folder: Path) -> str | None:
    """An export's image reference as a URL: http(s) and file URLs as given, paths as file://.

    Relative paths are relative to the export's folder, so an export travels with its images.
    Other schemes (data:, ftp:) return None and are dropped by the caller with a warning.
    """
    text = reference.strip()
    if not text:
        return None
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https", "file"):
        return text
    if len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        return text
    return (folder / text).resolve().as_uri()


def file_head_digest(path: Path, read_up_to: int) -> str:
    """A digest of the already-read start of the file: a different one means it was replaced.

    Only bytes before ``read_up_to`` count, so lines appended since do not change it.
    """
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(min(HEAD_BYTES, read_up_to))).hexdigest()


class JsonlCollector:
    """Reads the lines added since the last run, up to the limit."""

    def __init__(self, path: Path, *, source_name: str) -> None:
        self.path = path
        self.platform = f"jsonl:{source_name}"

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """The posts of the next lines and the offset to continue from."""
        self._check_file()
        offset, line_number = self._resume_point(cursor)
        posts: list[CollectedPost] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while len(posts) < limit:
                line = handle.readline()
                if not line or (not line.endswith(b"\n") and not _is_complete(line)):
                    break  # end of file, or a last line still being written
                offset += len(line)
                line_number += 1
                post = self._parse_line(line, line_number)
                if post is not None:
                    posts.append(post)
        return CollectionBatch(
            posts=posts,
            cursor={
                "offset": offset,
                "line": line_number,
                "head": file_head_digest(self.path, offset),
            },
        )

    def _check_file(self) -> None:
        if not self.path.exists():
            raise SourceUnavailableError(f"export file {self.path} does not exist")
        if not self.path.is_file():
            raise MalformedSourceError(f"{self.path} is not a file")

    def _resume_point(self, cursor: Mapping[str, Any] | None) -> tuple[int, int]:
        """Where to continue: the cursor's offset, unless the file was replaced or shrank."""
        if not cursor:
            return 0, 0
        offset, line_number = cursor.get("offset"), cursor.get("line")
        if not isinstance(offset, int) or not isinstance(line_number, int) or offset < 0:
            logger.warning("%s: unreadable cursor %r; reading from the start", self.path, cursor)
            return 0, 0
        replaced = cursor.get("head") != file_head_digest(self.path, offset)
        if offset > self.path.stat().st_size or replaced:
            logger.info("%s was replaced or truncated; reading it from the start", self.path)
            return 0, 0
        return offset, line_number

    def _parse_line(self, line: bytes, line_number: int) -> CollectedPost | None:
        """The post on one line, or None (with a warning) when the line is not a valid record."""
        where = f"{self.path} line {line_number}"
        try:
            text = line.decode("utf-8-sig").strip()
            if not text:
                return None
            record = ExportRecord.model_validate(json.loads(text))
        except UnicodeDecodeError as exc:
            logger.warning("skipped %s: not UTF-8 (%s)", where, exc)
            return None
        except json.JSONDecodeError as exc:
            logger.warning("skipped %s: not JSON (%s)", where, exc)
            return None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'line'}: {error['msg']}"
                for error in exc.errors()
            )
            logger.warning("skipped %s: %s", where, problems)
            return None
        return self._post(record, where)

    def _post(self, record: ExportRecord, where: str) -> CollectedPost:
        return CollectedPost(
            platform=self.platform,
            external_id=str(record.id).strip(),
            url=record.url,
            author_handle=record.author,
            text=record.text,
            created_at=as_utc(record.created_at) if record.created_at else None,
            image_urls=self._image_urls(record.images, where),
            author_name=record.author_name,
            author_followers=record.followers,
            language=record.lang,
            reposts=record.reposts,
        )

    def _image_urls(self, references: list[str], where: str) -> tuple[str, ...]:
        """The record's images as URLs, in order: file:// for paths, http(s) as given."""
        urls: list[str] = []
        for reference in references:
            url = image_url(reference, self.path.parent)
            if url is None:
                continue
            kept = (
                (url,) if url.lower().startswith("file://") else web_image_urls([url], post=where)
            )
            urls.extend(candidate for candidate in kept if candidate not in urls)
        return tuple(urls)


def _is_complete(line: bytes) -> bool:
    """True when a last line without a newline is already a whole JSON value."""
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def build(options: CollectorOptions, context: CollectorContext) -> JsonlCollector:
    """Build a jsonl collector from validated options."""
    export = expect_options(options, JsonlOptions)
    return JsonlCollector(Path(export.path).expanduser(), source_name=context.source_name)


register_kind(
    CollectorKind(
        name="jsonl",
        options_model=JsonlOptions,
        build=build,
        description="An export file with one JSON post per line (id, author, text, images...).",
    )
)

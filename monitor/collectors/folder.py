"""The ``folder`` kind: every image file under a local directory is a post of its own.

For photos dropped into a shared folder, a camera upload directory or a scraped dump. Files are
identified by their path relative to the folder, dated by their modification time, and reported
oldest first so a run cut short by its limit resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import field_validator

from monitor.collectors._common import IMAGE_EXTENSIONS, Watermark, expect_options
from monitor.collectors.base import (
    CollectorContext,
    CollectorKind,
    CollectorOptions,
    register_kind,
)
from monitor.domain import CollectedPost, CollectionBatch
from monitor.exceptions import MalformedSourceError, SourceUnavailableError

logger = logging.getLogger(__name__)


class FolderOptions(CollectorOptions):
    """Options of a ``folder`` source."""

    path: str

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a folder")
        return value.strip()


@dataclass(frozen=True)
class ImageFile:
    """One image file found in the folder."""

    relative_path: str
    absolute_path: Path
    modified: datetime


def check_directory(root: Path) -> None:
    """Raise a clear SourceError unless ``root`` is a readable directory."""
    if not root.exists():
        raise SourceUnavailableError(f"folder {root} does not exist")
    if not root.is_dir():
        raise MalformedSourceError(f"{root} is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SourceUnavailableError(f"folder {root} is not readable")


def find_image_files(root: Path) -> Iterator[ImageFile]:
    """Image files under ``root``, recursively; hidden files and folders are skipped.

    Hidden entries are caches and resource forks (``.thumbnails``, ``._IMG_1.jpg``), not photos.
    """
    for directory, subdirectories, file_names in os.walk(root):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for file_name in sorted(file_names):
            if file_name.startswith(".") or Path(file_name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(directory, file_name)
            try:
                modified_ns = path.stat().st_mtime_ns
            except OSError as exc:
                logger.warning("skipped %s: cannot read its modification time: %s", path, exc)
                continue
            yield ImageFile(
                relative_path=path.relative_to(root).as_posix(),
                absolute_path=path.resolve(),
                modified=datetime.fromtimestamp(modified_ns / 1e9, UTC),
            )


class FolderCollector:
    """Reports the folder's image files not reported before, oldest first."""

    def __init__(self, root: Path, *, source_name: str) -> None:
        self.root = root
        self.platform = f"folder:{source_name}"

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """The next ``limit`` new image files and the watermark after them."""
        check_directory(self.root)
        watermark = Watermark.from_cursor(cursor)
        new_files = sorted(
            (
                image
                for image in find_image_files(self.root)
                if watermark.is_new(image.modified, image.relative_path)
            ),
            key=lambda image: (image.modified, image.relative_path),
        )[: max(limit, 0)]
        advanced = watermark.advanced((image.modified, image.relative_path) for image in new_files)
        return CollectionBatch(
            posts=[self._post(image) for image in new_files],
            cursor=advanced.to_cursor(),
        )

    def _post(self, image: ImageFile) -> CollectedPost:
        file_url = image.absolute_path.as_uri()
        return CollectedPost(
            platform=self.platform,
            external_id=image.relative_path,
            url=file_url,
            author_handle=None,
            text=None,
            created_at=image.modified,
            image_urls=(file_url,),
        )


def build(options: CollectorOptions, context: CollectorContext) -> FolderCollector:
    """Build a folder collector from validated options."""
    folder = expect_options(options, FolderOptions)
    return FolderCollector(Path(folder.path).expanduser(), source_name=context.source_name)


register_kind(
    CollectorKind(
        name="folder",
        options_model=FolderOptions,
        build=build,
        description="Every image file under a local folder (recursively) is a post.",
    )
)

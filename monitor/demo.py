"""The quick-start job on the embedded default, end to end, with nothing from outside.

It renders its own sample (invented brand marks placed into generated scenes), trains a small model on
it with the ImageNet backbone, registers a bundled export as a source, collects it, classifies every
image in-process and stores the detections in SQLite. Each step is skipped when its result is already
there, so running it again is cheap and changes nothing that was stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.pipeline import (
    CollectReport,
    InProcessWorkQueue,
    Services,
    collect_source,
    requeue_stale,
)
from monitor.storage import repository
from monitor.storage.db import session_scope

DEMO_SOURCE = "demo-export"
DEMO_GALLERY_SIZE = 6
"""Cards per gallery section: the demo's few dozen posts fill every section with six."""


@dataclass
class DemoResult:
    """What the demo did, for the closing report."""

    model_dir: Path
    trained: bool
    collect: CollectReport
    classified: int
    detections: int
    top_brand: str | None
    html_report: Path | None = None


def prepare_sample(home: Path) -> tuple[Path, Path]:
    """Render the training set and the sample posts once; returns (training dir, posts.jsonl)."""
    from monitor.sample import write_sample_posts, write_training_set

    sample = home / "sample"
    training = sample / "training"
    if not (training / "train").is_dir():
        write_training_set(training)
    posts = sample / "posts" / "posts.jsonl"
    if not posts.is_file():
        posts = write_sample_posts(sample / "posts")
    return training, posts


def ensure_model(
    *, training: Path, model_dir: Path, weights: str, progress: Callable[[Any], None] | None
) -> bool:
    """Train the demo model unless one is already in ``model_dir``; True when it trained."""
    from monitor.exceptions import ModelError
    from monitor.inference.model_dir import read_metadata

    try:
        read_metadata(model_dir)
        return False
    except ModelError:
        pass  # no usable model yet: train one
    from monitor.inference.training import TrainOptions, train_model

    options = TrainOptions(
        epochs_head=4,
        epochs_finetune=0,
        image_size=224,
        batch_size=32,
        backbone_weights=weights,
        negatives_dir=training / "negatives",
    )
    train_model(
        dataset_dir=training / "train", out_dir=model_dir, options=options, progress=progress
    )
    return True


def ensure_source(*, services: Services, posts_file: Path) -> None:
    """Register the bundled export as a jsonl source (once)."""
    from monitor.collectors.base import validate_options
    from monitor.exceptions import UnknownSourceError

    with session_scope(services.sessions) as session:
        try:
            repository.get_source(session=session, name=DEMO_SOURCE)
        except UnknownSourceError:
            repository.add_source(
                session=session,
                name=DEMO_SOURCE,
                kind="jsonl",
                options=validate_options("jsonl", {"path": str(posts_file.resolve())}),
                every_seconds=None,
                now=services.clock(),
            )


def run_demo(*, services: Services, progress: Callable[[Any], None] | None = None) -> DemoResult:
    """Sample, train, collect, classify, store: the whole job on the embedded default."""
    settings = services.settings
    training, posts_file = prepare_sample(settings.home)
    model_dir = settings.default_model_dir
    trained = ensure_model(
        training=training,
        model_dir=model_dir,
        weights=settings.backbone_weights,
        progress=progress,
    )
    ensure_source(services=services, posts_file=posts_file)
    queue = InProcessWorkQueue(services=services)
    collected = collect_source(services=services, source_name=DEMO_SOURCE, queue=queue)
    requeue_stale(services=services, queue=queue, older_than_seconds=0)
    if queue.model_error:
        from monitor.exceptions import ModelError

        raise ModelError(queue.model_error)
    with session_scope(services.sessions) as session:
        brands = repository.brand_post_counts(session=session)
    top_brand = brands[0][0] if brands else None
    return DemoResult(
        model_dir=model_dir,
        trained=trained,
        collect=collected,
        classified=sum(r.classified for r in queue.classify_reports),
        detections=sum(r.detections for r in queue.classify_reports),
        top_brand=top_brand,
        html_report=write_html_report(services=services, brand=top_brand, model_dir=model_dir)
        if top_brand
        else None,
    )


def write_html_report(*, services: Services, brand: str, model_dir: Path) -> Path:
    """The brand's HTML report (photos with their boxes) in ``home/reports/BRAND.html``."""
    from monitor.analytics.html_export import build_html_report
    from monitor.analytics.report import build_report
    from monitor.inference.model_dir import read_metadata

    metadata = read_metadata(model_dir)
    with session_scope(services.sessions) as session:
        page = build_html_report(
            session=session,
            report=build_report(session=session, brand=brand, top=10),
            generated_at=services.clock(),
            gallery_size=DEMO_GALLERY_SIZE,
            model_thresholds={metadata.version: metadata.no_logo_threshold},
        )
    path = services.settings.home / "reports" / f"{brand}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path

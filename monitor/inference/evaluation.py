"""Measuring a model on held-out photos: ``evaluate_model(model_dir=..., dataset_dir=...)``.

For a FlickrLogos-style dataset the test photos are those the model's split file lists (the photos
training never saw), or, for a model trained elsewhere, the same by-photo split rebuilt from a
seed. As many logo-free pictures as there are logo photos are cut from the test photos outside
every box. For a folder-per-brand dataset every image is used, with an optional folder of
logo-free photos.

Each picture is classified exactly as in use (multi-scale, threshold, merging); its answer is the
most probable detection's brand, or "no logo" when there is none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL.Image import Image

from monitor.domain import Box, Detection
from monitor.exceptions import DatasetError, ImageDecodeError
from monitor.inference.calibration import expected_calibration_error
from monitor.inference.classifier import LogoClassifier, load_classifier
from monitor.inference.datasets import (
    Dataset,
    LabeledPhoto,
    LogoBox,
    PhotoSplit,
    held_out_negatives,
    photos_named,
    read_dataset,
    split_by_photo,
)
from monitor.inference.detection import CANDIDATE_FLOOR, LogoDetector, at_threshold, hits_logo
from monitor.inference.model_dir import SPLIT_FILE
from monitor.inference.pixels import open_image
from monitor.inference.samples import SamplingPlan, plan_samples, render_sample
from monitor.inference.windows import iou

NO_LOGO = "no logo"
CONFUSION_FILE = "confusion_matrix.png"
DEFAULT_VALIDATION_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.2
CHUNK = 16

Classifier = LogoClassifier | LogoDetector


@dataclass(frozen=True)
class BrandScore:
    """Precision and recall of one brand's answers."""

    precision: float
    recall: float
    support: int
    answered: int


@dataclass(frozen=True)
class EvaluationReport:
    """What a model got right on a dataset.

    ``accuracy`` counts every picture (a logo photo is right when answered with one of its brands,
    a logo-free picture when answered "no logo"); ``brand_accuracy`` only logo photos;
    ``no_logo_false_positive_rate`` is the share of logo-free pictures given a brand (None when
    there were none).
    ``box_iou50_share`` is the share of found logos (detections of a brand the photo shows) whose
    box overlaps an annotated box of that brand with IoU >= 0.5. ``ece`` is the expected
    calibration error of the model's calibrated probabilities: of its windows (windows around the
    annotated logos and logo-free windows of the same photos) for the window model, of its
    detections for the detector. ``detection_ece`` is the latter for both kinds: every candidate
    detection's probability against whether it is right (brand and IoU >= 0.5).
    ``map50`` is the mean over brands of the average precision of all candidate detections at
    IoU 0.5 (PASCAL VOC, every point), None without annotated boxes.
    """

    model_version: str
    runtime: str
    dataset: str
    photos_used: str
    logo_images: int
    no_logo_images: int
    accuracy: float
    brand_accuracy: float
    no_logo_false_positive_rate: float | None
    missed_logo_rate: float
    box_iou50_share: float | None
    found_logos_with_box: int
    ece: float | None
    map50: float | None
    detection_ece: float | None
    per_brand: dict[str, BrandScore]
    confusion_labels: list[str]
    confusion: list[list[int]]
    confusion_matrix_png: str | None
    seconds: float
    images_per_second: float
    failed_images: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    """One test picture: a photo, or a region of one, and the right answers."""

    photo: LabeledPhoto
    region: Box | None
    brands: tuple[str, ...]


EvaluationProgress = Callable[[int, int], None]


def evaluate_model(
    *,
    model_dir: Path,
    dataset_dir: Path,
    seed: int | None = None,
    test_only: bool = True,
    no_logo_folder: str | None = None,
    confusion_matrix_path: Path | None = None,
    grids: Sequence[int] | None = None,
    progress: EvaluationProgress | None = None,
    runtime: str = "auto",
) -> EvaluationReport:
    """Classify the dataset's test pictures with the model and measure the answers.

    ``seed`` rebuilds the split when the model has no split file for this dataset (default 0);
    ``test_only=False`` uses every photo (including those trained on: optimistic, for checks).
    The confusion matrix is drawn to ``confusion_matrix_path`` (default: in the model directory).
    ``grids`` overrides the model's window grids (``(1,)``: whole photo only); ``runtime``
    chooses how a detector runs (see ``load_classifier``).
    """
    classifier = load_classifier(Path(model_dir), runtime=runtime)
    dataset = read_dataset(Path(dataset_dir), no_logo_folder=no_logo_folder)
    _check_brands_known(dataset, classifier)
    items, used = _test_items(dataset, Path(model_dir), seed=seed, test_only=test_only)
    if not items:
        raise DatasetError(f"{dataset_dir} gives no pictures to evaluate")
    started = time.monotonic()
    candidates, failed = _classify_items(classifier, items, grids=grids, progress=progress)
    seconds = time.monotonic() - started
    answers = [
        None if found is None else at_threshold(found, classifier.metadata) for found in candidates
    ]
    png = confusion_matrix_path or Path(model_dir) / CONFUSION_FILE
    return _report(
        classifier=classifier,
        dataset=dataset,
        items=items,
        answers=answers,
        candidates=candidates,
        used=used,
        seconds=seconds,
        png=png,
        failed=failed,
    )


def _check_brands_known(dataset: Dataset, classifier: Classifier) -> None:
    unknown = sorted(set(dataset.labels) - set(classifier.labels))
    if unknown:
        raise DatasetError(
            f"{dataset.root} has brands the model does not know: {', '.join(unknown)} "
            f"(the model knows {', '.join(classifier.labels)})"
        )


def _test_items(
    dataset: Dataset, model_dir: Path, *, seed: int | None, test_only: bool
) -> tuple[list[_Item], str]:
    """The pictures to classify and a description of which photos they are."""
    if not test_only:
        photos, used = list(dataset.photos), "all photos"
    else:
        split = _split_for(dataset, model_dir, seed=seed)
        if split is None:
            photos, used = list(dataset.photos), "all photos (folder dataset without a test split)"
        else:
            photos, used = photos_named(dataset, split.test), f"test split (seed {split.seed})"
    items = [_Item(photo, None, photo.brands) for photo in photos]
    if dataset.layout == "flickr":
        logo_count = sum(photo.has_logo for photo in photos)
        negatives = held_out_negatives(photos, count=logo_count, seed=seed or 0)
        items.extend(_Item(photo, region, ()) for photo, region in negatives)
    return items, used


def _split_for(dataset: Dataset, model_dir: Path, *, seed: int | None) -> PhotoSplit | None:
    """The model's own split when it was trained on this dataset, else one rebuilt from the seed.

    Folder datasets other than the training one (a separate test folder) have no split: all their
    photos are test photos.
    """
    saved = saved_split(dataset, model_dir)
    if saved is not None:
        return saved if saved.test else None
    if dataset.layout == "folders":
        return None
    return split_by_photo(
        dataset.photos,
        validation_fraction=DEFAULT_VALIDATION_FRACTION,
        test_fraction=DEFAULT_TEST_FRACTION,
        seed=seed or 0,
    )


def saved_split(dataset: Dataset, model_dir: Path) -> PhotoSplit | None:
    """The split file of the model when it belongs to this dataset (None: no such file, or another
    dataset's); a split file that cannot be read is a ``DatasetError``."""
    path = model_dir / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        split = PhotoSplit.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"cannot read the model's split file {path}: {exc}") from exc
    same_folder = Path(data.get("dataset", "")).resolve() == dataset.root.resolve()
    names = {photo.name for photo in dataset.photos}
    all_present = all(name in names for name in (*split.train, *split.validation, *split.test))
    return split if same_folder or (data.get("layout") == dataset.layout and all_present) else None


def _classify_items(
    classifier: Classifier,
    items: Sequence[_Item],
    *,
    grids: Sequence[int] | None,
    progress: EvaluationProgress | None,
) -> tuple[list[list[Detection] | None], list[str]]:
    """Detections for each item (None when its image could not be read), a few at a time."""
    answers: list[list[Detection] | None] = []
    failed: list[str] = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        images: list[Image] = []
        readable: list[int] = []
        for index, item in enumerate(chunk):
            image = _open_item(item, failed)
            if image is not None:
                images.append(image)
                readable.append(index)
        results = iter(classifier.classify(images, grids=grids, threshold=CANDIDATE_FLOOR))
        answers.extend(next(results) if index in readable else None for index in range(len(chunk)))
        if progress is not None:
            progress(min(start + CHUNK, len(items)), len(items))
    return answers, failed


def _open_item(item: _Item, failed: list[str]) -> Image | None:
    """The item's picture, or None (and the reason added to ``failed``) when it cannot be read."""
    try:
        image = open_image(item.photo.path)
    except ImageDecodeError as exc:
        failed.append(str(exc))
        return None
    return image.crop(item.region) if item.region is not None else image


def _answer(detections: Sequence[Detection]) -> str:
    return detections[0].brand if detections else NO_LOGO


@dataclass(frozen=True)
class Truth:
    """What a test picture shows: its brands (none: logo-free) and, when known, their boxes."""

    brands: tuple[str, ...]
    boxes: tuple[LogoBox, ...] = ()


@dataclass(frozen=True)
class AnswerScores:
    """The numbers that depend only on the right answers and the detections."""

    logo_images: int
    no_logo_images: int
    accuracy: float
    brand_accuracy: float
    no_logo_false_positive_rate: float | None
    missed_logo_rate: float
    box_iou50_share: float | None
    found_logos_with_box: int
    per_brand: dict[str, BrandScore]
    confusion_labels: list[str]
    confusion: np.ndarray


def score_answers(
    labels: Sequence[str], truths: Sequence[Truth], answers: Sequence[Sequence[Detection]]
) -> AnswerScores:
    """Score each picture's detections against what it shows.

    A picture's answer is its most probable detection's brand, or "no logo" when it has none.
    """
    if len(truths) != len(answers):
        raise ValueError("truths and answers must have the same length")
    pairs = list(zip(truths, answers, strict=True))
    logo = [(truth, found) for truth, found in pairs if truth.brands]
    no_logo_count = len(pairs) - len(logo)
    right_brand = sum(_answer(found) in truth.brands for truth, found in logo)
    false_positives = sum(bool(found) for truth, found in pairs if not truth.brands)
    names = [*labels, NO_LOGO]
    matrix = _confusion(pairs, names)
    hits, found_count = _box_hits(logo)
    return AnswerScores(
        logo_images=len(logo),
        no_logo_images=no_logo_count,
        accuracy=_share(right_brand + no_logo_count - false_positives, len(pairs)),
        brand_accuracy=_share(right_brand, len(logo)),
        # None, not 0, when there was no logo-free picture to give a brand to
        no_logo_false_positive_rate=(
            _share(false_positives, no_logo_count) if no_logo_count else None
        ),
        missed_logo_rate=_share(sum(not found for _, found in logo), len(logo)),
        box_iou50_share=_share(hits, found_count) if found_count else None,
        found_logos_with_box=found_count,
        per_brand=_per_brand(matrix, names),
        confusion_labels=names,
        confusion=matrix,
    )


def _report(
    *,
    classifier: Classifier,
    dataset: Dataset,
    items: Sequence[_Item],
    answers: Sequence[list[Detection] | None],
    candidates: Sequence[list[Detection] | None],
    used: str,
    seconds: float,
    png: Path,
    failed: list[str],
) -> EvaluationReport:
    """The report from the items and their detections (items that failed to open left out)."""
    kept = [(item, found) for item, found in zip(items, answers, strict=True) if found is not None]
    truths = [
        Truth(item.brands, item.photo.boxes if item.region is None else ()) for item, _ in kept
    ]
    scores = score_answers(classifier.labels, truths, [found for _, found in kept])
    from monitor.inference.plots import plot_confusion_matrix

    plot_confusion_matrix(scores.confusion, scores.confusion_labels, png)
    logo_photos = [item.photo for item, _ in kept if item.brands]
    found_candidates = [found for found in candidates if found is not None]
    detection_ece = _detection_ece(truths, found_candidates)
    window_ece = (
        _window_ece(classifier, logo_photos)
        if isinstance(classifier, LogoClassifier)
        else detection_ece
    )
    return EvaluationReport(
        model_version=classifier.version,
        runtime=getattr(classifier, "runtime", "keras"),
        dataset=str(dataset.root),
        photos_used=used,
        logo_images=scores.logo_images,
        no_logo_images=scores.no_logo_images,
        accuracy=scores.accuracy,
        brand_accuracy=scores.brand_accuracy,
        no_logo_false_positive_rate=scores.no_logo_false_positive_rate,
        missed_logo_rate=scores.missed_logo_rate,
        box_iou50_share=scores.box_iou50_share,
        found_logos_with_box=scores.found_logos_with_box,
        ece=window_ece,
        map50=mean_average_precision(classifier.labels, truths, found_candidates),
        detection_ece=detection_ece,
        per_brand=scores.per_brand,
        confusion_labels=scores.confusion_labels,
        confusion=scores.confusion.tolist(),
        confusion_matrix_png=str(png),
        seconds=round(seconds, 1),
        images_per_second=round(len(kept) / seconds, 2) if seconds > 0 else 0.0,
        failed_images=failed,
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _confusion(pairs: Sequence[tuple[Truth, Sequence[Detection]]], names: list[str]) -> np.ndarray:
    """Counts of (truth, answer); a photo with several brands counts under the one answered."""
    index = {name: position for position, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=int)
    for truth, found in pairs:
        answer = _answer(found)
        matrix[index[_shown(truth, answer)], index[answer]] += 1
    return matrix


def _shown(truth: Truth, answer: str) -> str:
    """The truth a picture is counted under: the answered brand when the photo shows it."""
    if answer in truth.brands:
        return answer
    return truth.brands[0] if truth.brands else NO_LOGO


def _per_brand(matrix: np.ndarray, names: list[str]) -> dict[str, BrandScore]:
    scores = {}
    for position, name in enumerate(names[:-1]):
        support = int(matrix[position].sum())
        answered = int(matrix[:, position].sum())
        right = int(matrix[position, position])
        scores[name] = BrandScore(
            precision=_share(right, answered),
            recall=_share(right, support),
            support=support,
            answered=answered,
        )
    return scores


def _box_hits(logo: Sequence[tuple[Truth, Sequence[Detection]]]) -> tuple[int, int]:
    """(found logos whose box has IoU >= 0.5 with an annotated box of its brand, found logos)."""
    hits = found = 0
    for truth, detections in logo:
        if not truth.boxes:
            continue
        for detection in detections:
            if detection.brand not in truth.brands or detection.box is None:
                continue
            found += 1
            annotated = [
                logo_box.box for logo_box in truth.boxes if logo_box.brand == detection.brand
            ]
            hits += any(iou(detection.box, box) >= 0.5 for box in annotated)
    return hits, found


def mean_average_precision(
    labels: Sequence[str], truths: Sequence[Truth], candidates: Sequence[Sequence[Detection]]
) -> float | None:
    """Mean over brands with annotated boxes of the average precision at IoU 0.5 (VOC).

    Each brand's candidates over all pictures, most probable first, are right when they overlap
    a not yet matched annotated box of that brand by IoU >= 0.5 and wrong otherwise (a second
    detection of one logo, any detection in a logo-free picture). Pictures with a logo but no
    boxes (a folder dataset) cannot say where, so without any box there is no mAP.
    """
    if not any(truth.boxes for truth in truths):
        return None
    precisions = [
        _average_precision(label, truths, candidates)
        for label in labels
        if any(box.brand == label for truth in truths for box in truth.boxes)
    ]
    return round(float(np.mean(precisions)), 4) if precisions else None


def _average_precision(
    label: str, truths: Sequence[Truth], candidates: Sequence[Sequence[Detection]]
) -> float:
    """All-point interpolated average precision of one brand's candidates."""
    shown = {
        index: [box.box for box in truth.boxes if box.brand == label]
        for index, truth in enumerate(truths)
    }
    total = sum(len(boxes) for boxes in shown.values())
    ranked = sorted(
        (
            (detection.probability, index, detection.box)
            for index, found in enumerate(candidates)
            for detection in found
            if detection.brand == label and detection.box is not None
        ),
        key=lambda entry: -entry[0],
    )
    matched: set[tuple[int, int]] = set()
    hits = []
    for _, index, box in ranked:
        best, best_overlap = -1, 0.5
        for number, annotated in enumerate(shown.get(index, [])):
            overlap = iou(box, annotated)
            if overlap >= best_overlap and (index, number) not in matched:
                best, best_overlap = number, overlap
        if best >= 0:
            matched.add((index, best))
        hits.append(best >= 0)
    if not hits:
        return 0.0
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    recall = true_positives / total
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def _detection_ece(
    truths: Sequence[Truth], candidates: Sequence[Sequence[Detection]]
) -> float | None:
    """ECE of every candidate's probability against whether it hits a logo of its brand."""
    confidences: list[float] = []
    correct: list[bool] = []
    for truth, found in zip(truths, candidates, strict=True):
        logos = [(box.brand, box.box) for box in truth.boxes]
        for detection in found:
            confidences.append(detection.probability)
            correct.append(hits_logo(detection, logos))
    if not confidences or not any(truth.boxes for truth in truths):
        return None
    return round(expected_calibration_error(np.array(confidences), np.array(correct)), 4)


def _window_ece(classifier: LogoClassifier, photos: Sequence[LabeledPhoto]) -> float | None:
    """ECE of calibrated probabilities on windows around the logos and logo-free windows."""
    plan = SamplingPlan(windows_per_box=2, backgrounds_per_photo=2, augment=False)
    specs = plan_samples(
        photos, labels=classifier.labels, plan=plan, rng=np.random.default_rng(1234)
    )
    if not specs:
        return None
    size = classifier.metadata.input_size
    confidences: list[np.ndarray] = []
    correct: list[np.ndarray] = []
    opened: dict[int, Image] = {}  # specs come photo by photo: keep only the current one
    for start in range(0, len(specs), 64):
        chunk = specs[start : start + 64]
        pixels = []
        for spec in chunk:
            if spec.photo_index not in opened:
                opened = {spec.photo_index: open_image(photos[spec.photo_index].path)}
            pixels.append(render_sample(opened[spec.photo_index], spec, size))
        probabilities, _ = classifier.predict_pixels(np.stack(pixels))
        confidences.append(probabilities.max(axis=1))
        correct.append(probabilities.argmax(axis=1) == np.array([spec.label for spec in chunk]))
    return round(
        expected_calibration_error(np.concatenate(confidences), np.concatenate(correct)), 4
    )

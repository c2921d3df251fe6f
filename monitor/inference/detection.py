"""The one-pass logo detector at work: a photo in, its logos out, one network pass a photo.

Importing this module does not import TensorFlow; the loaders in ``monitor.inference.classifier``
give it a ``predict`` function built on the saved model (Keras or LiteRT).

How a photo is read: it is letterboxed onto the model's square input (``letterbox``), the model
gives a heatmap per brand and a box map (``monitor.inference.heatmaps``), and each heatmap peak is
a candidate logo. Its score is calibrated on validation (``score_calibration``); candidates at or
above the threshold are the photo's detections, their boxes mapped back to photo pixels, one per
logo (a brand's peaks, then overlapping boxes of one brand merged). A photo with none shows no
logo. A model trained without logo-free pictures names its best candidate, whatever its score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL.Image import Image

from monitor.domain import Box, Detection
from monitor.inference.calibration import platt_scaled
from monitor.inference.heatmaps import Peak, find_peaks
from monitor.inference.letterbox import Placement, fitting_placement, letterbox
from monitor.inference.model_dir import ModelMetadata
from monitor.inference.pixels import stack_windows
from monitor.inference.verification import (
    LookedAgain,
    VerifierSettings,
    candidate_features,
    combined_probability,
    verification_window,
    with_fused_brand,
)
from monitor.inference.windows import (
    iou,
    logo_probabilities,
    non_maximum_suppression,
    overlap_of_smaller,
    scaled_box,
    softmax,
)

DetectorPredict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Letterboxed pixels (n, size, size, 3) -> (heatmaps (n, cells, cells, brands), boxes (n, cells, cells, 4))."""
WindowPredict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Window pixels (n, size, size, 3) -> (logits (n, brands + 1), boxes (n, 4)): the verifier."""

CANDIDATE_FLOOR = 0.02
"""Raw peak scores below this are not candidates at all (far below any threshold chosen)."""
MAX_CANDIDATES = 50
CROSS_BRAND_IOU = 0.7
"""Two brands' candidates on nearly the same box are one logo: the more probable is kept."""
NESTED_SHARE = 0.5
"""A brand's candidate whose box shares this much of the smaller box with a more probable
candidate of that brand is a part of the same logo (a word of a word-and-symbol mark), not a
second logo; chosen on validation photos."""
MATCH_IOU = 0.5


@dataclass(frozen=True)
class PhotoCandidates:
    """Every candidate logo of one photo, calibrated, most probable first (photo pixels).

    ``looked_again`` holds the verified candidates' parts (empty without a verifier), for
    calibration to fit the combination on. ``brand_probabilities`` holds the detector's brand
    softmax at each detection, in the same order, as the detector's own candidates are made
    (the second look reads it); candidates after the second look leave it empty.
    """

    detections: list[Detection]
    looked_again: tuple[LookedAgain, ...] = ()
    brand_probabilities: tuple[tuple[float, ...], ...] = ()


class LogoDetector:
    """Finds brand logos in pictures with one trained detector (same surface as LogoClassifier)."""

    def __init__(
        self,
        *,
        metadata: ModelMetadata,
        predict: DetectorPredict,
        runtime: str = "keras",
        verify: WindowPredict | None = None,
    ) -> None:
        if (metadata.verifier is None) != (verify is None):
            raise ValueError("a verifier needs both its settings in the metadata and its model")
        self.metadata = metadata
        self.runtime = runtime
        self.version: str = metadata.version
        self.labels: list[str] = list(metadata.labels)
        self._predict = predict
        self._verify = verify

    def classify(
        self,
        images: Sequence[Image],
        *,
        grids: Sequence[int] | None = None,
        threshold: float | None = None,
    ) -> list[list[Detection]]:
        """One list of detections per image, most probable first; empty means no logo.

        ``grids`` is accepted for the window model's callers and ignored: the detector has no
        windows. ``threshold`` overrides the model's (evaluation asks for every candidate).
        """
        return [
            self.detections(candidates, threshold=threshold) for candidates in self.analyse(images)
        ]

    def without_second_look(self) -> LogoDetector:
        """The same detector giving its own candidates, the second look left out (diagnostics)."""
        return LogoDetector(
            metadata=replace(self.metadata, verifier=None),
            predict=self._predict,
            runtime=self.runtime,
        )

    def detections(
        self, candidates: PhotoCandidates, *, threshold: float | None = None
    ) -> list[Detection]:
        """The photo's detections at ``threshold`` (the model's own by default)."""
        return at_threshold(candidates.detections, self.metadata, threshold=threshold)

    def analyse(self, images: Sequence[Image]) -> list[PhotoCandidates]:
        """All candidates of every image, batched ``metadata.inference.batch_size`` at a time."""
        size = self.metadata.input_size
        results: list[PhotoCandidates] = []
        batch_size = self.metadata.inference.batch_size
        # a model without a "no logo" answer names its best candidate, however weak
        floor = CANDIDATE_FLOOR if self.metadata.knows_no_logo else 0.0
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            placements = [fitting_placement(image.size, size) for image in chunk]
            pixels = np.stack(
                [
                    letterbox(image, size, placement)
                    for image, placement in zip(chunk, placements, strict=True)
                ]
            )
            heatmaps, boxes = self._predict(pixels)
            found = [
                self._candidates(
                    find_peaks(heatmaps[index], boxes[index], floor=floor, limit=MAX_CANDIDATES),
                    placements[index],
                    image.size,
                )
                for index, image in enumerate(chunk)
            ]
            settings = self.metadata.verifier
            if settings is not None and self._verify is not None:
                found = self._look_again(chunk, found, settings, self._verify)
            else:
                found = [PhotoCandidates(_drop_nested(item.detections)) for item in found]
            results.extend(found)
        return results

    def _look_again(
        self,
        images: Sequence[Image],
        found: Sequence[PhotoCandidates],
        settings: VerifierSettings,
        verify: WindowPredict,
    ) -> list[PhotoCandidates]:
        """Each photo's best candidates named and scored again by the window classifier."""
        # each photo's best candidates, with their boxes (a detector's candidates all have one)
        chosen = [
            [
                (detection, detection.box, brands)
                for detection, brands in zip(
                    candidates.detections, candidates.brand_probabilities, strict=True
                )
                if detection.box is not None
            ][: settings.candidates]
            for candidates in found
        ]
        windows = [
            [
                verification_window(
                    box, image.size, context=settings.context, min_side=settings.min_side
                )
                for _, box, _ in pairs
            ]
            for image, pairs in zip(images, chosen, strict=True)
        ]
        batches = [
            stack_windows(image, photo_windows, settings.input_size)
            for image, photo_windows in zip(images, windows, strict=True)
            if photo_windows
        ]
        if not batches:
            return [PhotoCandidates([]) for _ in found]
        logits, _ = verify(np.concatenate(batches))
        probabilities = softmax(logits, settings.temperature)
        logo = logo_probabilities(probabilities, len(self.labels))
        brand_part = probabilities[:, : len(self.labels)]
        classifier_brands = brand_part / np.maximum(brand_part.sum(axis=1, keepdims=True), 1e-12)
        brands = classifier_brands.argmax(axis=1)
        results: list[PhotoCandidates] = []
        row = 0
        for pairs in chosen:
            looked = tuple(
                with_fused_brand(
                    LookedAgain(
                        box=box,
                        detector_score=detection.probability,
                        brand=self.labels[int(brands[row + index])],
                        logo_probability=float(logo[row + index]),
                        classifier_brands=tuple(float(v) for v in classifier_brands[row + index]),
                        detector_brands=detector_brands,
                    ),
                    self.labels,
                    settings.brand_fusion,
                )
                for index, (detection, box, detector_brands) in enumerate(pairs)
            )
            row += len(pairs)
            results.append(
                combined_candidates(looked, settings, nms_iou=self.metadata.inference.nms_iou)
            )
        return results

    def _candidates(
        self, peaks: Sequence[Peak], placement: Placement, photo_size: tuple[int, int]
    ) -> PhotoCandidates:
        """Peaks as calibrated detections in photo pixels, duplicates of one logo merged."""
        if not peaks:
            return PhotoCandidates([])
        scores = platt_scaled(
            np.array([peak.score for peak in peaks]), self.metadata.score_calibration
        )
        scale = self.metadata.box_scale
        detections = [
            Detection(
                brand=self.labels[peak.label],
                probability=float(score),
                box=scaled_box(placement.to_photo(peak.box, photo_size), scale, photo_size),
            )
            for peak, score in zip(peaks, scores, strict=True)
        ]
        merged = non_maximum_suppression(detections, iou_threshold=self.metadata.inference.nms_iou)
        kept = _merge_across_brands(merged)
        # suppression keeps the very objects it was given: each kept one finds its peak by identity
        peak_of = {id(detection): peak for detection, peak in zip(detections, peaks, strict=True)}
        return PhotoCandidates(
            kept, brand_probabilities=tuple(peak_of[id(item)].brand_probabilities for item in kept)
        )


def combined_candidates(
    looked: Sequence[LookedAgain], settings: VerifierSettings, *, nms_iou: float
) -> PhotoCandidates:
    """Looked-again candidates as detections with the probability ``settings`` combine them to.

    Serving calls it once per photo; calibration again with the combination it has just fitted,
    without running either network a second time.
    """
    if not looked:
        return PhotoCandidates([])
    probabilities = combined_probability(candidate_features(looked), settings.combination)
    detections = [
        Detection(brand=item.brand, probability=float(probability), box=item.box)
        for item, probability in zip(looked, probabilities, strict=True)
    ]
    merged = non_maximum_suppression(detections, iou_threshold=nms_iou)
    return PhotoCandidates(_drop_nested(_merge_across_brands(merged)), tuple(looked))


def at_threshold(
    candidates: Sequence[Detection], metadata: ModelMetadata, *, threshold: float | None = None
) -> list[Detection]:
    """The detections a model gives at ``threshold`` (its own by default), from its candidates.

    A model without a "no logo" answer gives its best candidate whatever the threshold. A brand's
    candidates below the threshold never suppress those above it (suppression keeps the more
    probable), so filtering candidates is the same as detecting at the threshold, for the window
    model's merged windows as for the detector's peaks.
    """
    if not metadata.knows_no_logo:
        return list(candidates[:1])
    cut = metadata.no_logo_threshold if threshold is None else threshold
    return [detection for detection in candidates if detection.probability >= cut]


def _merge_across_brands(detections: Sequence[Detection]) -> list[Detection]:
    """Drop a candidate whose box nearly repeats a more probable one of another brand."""
    return _drop_repeats(detections, lambda box, kept: iou(box, kept) >= CROSS_BRAND_IOU)


def _drop_nested(detections: Sequence[Detection]) -> list[Detection]:
    """Drop a candidate mostly inside (or mostly holding) a more probable one of its brand."""
    return _drop_repeats(
        detections,
        lambda box, kept: overlap_of_smaller(box, kept) >= NESTED_SHARE,
        same_brand=True,
    )


def _drop_repeats(
    detections: Sequence[Detection],
    repeats: Callable[[Box, Box], bool],
    *,
    same_brand: bool = False,
) -> list[Detection]:
    """The candidates, most probable first, less those that ``repeats`` one already kept.

    ``repeats(box, kept_box)`` is only asked about kept candidates with a box (and, with
    ``same_brand``, of the candidate's brand); a candidate without a box is always kept.
    """
    kept: list[Detection] = []
    for candidate in detections:
        box = candidate.box
        if box is None or not any(
            chosen.box is not None
            and (not same_brand or chosen.brand == candidate.brand)
            and repeats(box, chosen.box)
            for chosen in kept
        ):
            kept.append(candidate)
    return kept


def hits_logo(detection: Detection, logos: Sequence[tuple[str, tuple[int, int, int, int]]]) -> bool:
    """Whether a detection names a shown logo's brand with a box overlapping it by IoU >= 0.5.

    ``logos`` are (brand, box) in photo pixels. The standard test of a right detection (PASCAL
    VOC), used to calibrate scores and to score mean average precision.
    """
    if detection.box is None:
        return False
    return any(
        brand == detection.brand and iou(detection.box, box) >= MATCH_IOU for brand, box in logos
    )

"""Transfer learning with the real ImageNet MobileNetV2 on real photos (slow: minutes on a CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from monitor.inference.classifier import load_classifier
from monitor.inference.model_dir import read_metadata
from monitor.inference.training import TrainOptions, train_model

pytestmark = pytest.mark.slow


def test_old_versus_new_logos_named_right_on_unseen_photos_with_default_options(
    shared_dir: Path, tmp_path: Path
) -> None:
    """The retrain-style case: a folder per class, no logo-free pictures, default options.

    The model has no "no logo" answer, so the product names a class for every photo; what it names
    is read from ``LogoClassifier.classify``, as ``monitor classify`` and the workers read it.
    Measured with seeds 0, 1 and 2: 6, 5 and 6 of the 6 test photos.
    """
    dataset = shared_dir / "datasets" / "logo_versions"
    info = train_model(
        dataset_dir=dataset / "train", out_dir=tmp_path / "model", options=TrainOptions()
    )
    assert sorted(info.labels) == ["new", "old"]
    assert info.knows_no_logo is False
    assert any(warning.startswith("no logo-free pictures") for warning in info.warnings)

    classifier = load_classifier(info.model_dir)
    photos = sorted((dataset / "test").iterdir())
    expected = ["old" if photo.name.startswith("o") else "new" for photo in photos]
    results = classifier.classify([Image.open(photo).convert("RGB") for photo in photos])
    assert all(len(detections) == 1 for detections in results)
    named = [detections[0].brand for detections in results]
    right = sum(a == b for a, b in zip(named, expected, strict=True))
    assert right >= 5, f"named {named} for {expected}"


def test_quick_training_mode_on_a_few_hundred_synthetic_pictures(
    shared_dir: Path, tmp_path: Path
) -> None:
    """The demo's quick mode (head only, 128 pixels) learns a small set well enough to be useful.

    How long it takes is measured by the benchmarks, not asserted here.
    """
    from monitor.inference.evaluation import evaluate_model
    from tests.inference.factories import write_brand_folders

    dataset = write_brand_folders(
        tmp_path / "set",
        brands=("acme", "globex", "initech", "umbrella"),
        per_brand=60,
        no_logo_folder="none",
        size=(120, 100),
    )
    weights = next((shared_dir / "weights").glob("mobilenet_v2*.h5"))
    options = TrainOptions(
        epochs_head=3,
        epochs_finetune=0,
        image_size=128,
        backbone_weights=str(weights),
        no_logo_folder="none",
    )
    info = train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)

    report = evaluate_model(model_dir=info.model_dir, dataset_dir=dataset, no_logo_folder="none")
    assert report.photos_used.startswith("test split")
    assert report.logo_images == 48 and report.no_logo_images == 12
    assert report.accuracy > 0.8, report.to_dict()
    # both answers: brands for the logo pictures and "no logo" for the logo-free ones
    assert report.brand_accuracy > 0.8, report.to_dict()
    assert report.no_logo_false_positive_rate < 0.5, report.to_dict()
    assert read_metadata(info.model_dir).knows_no_logo is True


def test_the_detector_learns_real_logos_and_its_int8_file_agrees(
    shared_dir: Path, tmp_path: Path
) -> None:
    """A short detector run on four FlickrLogos-27 brands with the real backbone.

    Its held-out photos' best candidates must name the brand far more often than chance (one in
    four), and the int8 LiteRT file written beside the model must answer as the float model does.
    """
    from dataclasses import replace

    from monitor.inference.datasets import read_dataset, split_by_photo

    flickr = shared_dir / "datasets" / "flickr_logos_27"
    brands = ("Adidas", "Cocacola", "Ferrari", "Starbucks")
    subset = tmp_path / "set"
    subset.mkdir()
    lines = (flickr / "annotations.txt").read_text().splitlines()
    chosen = [line for line in lines if line.split()[1] in brands]
    (subset / "annotations.txt").write_text("\n".join(chosen) + "\n")
    (subset / "images").symlink_to((flickr / "images").resolve())
    # default options otherwise: a dataset with boxes trains the detector
    options = replace(
        TrainOptions(),
        detector_input_size=256,
        detector_epochs=30,
        detector_batch_size=8,
    )
    info = train_model(dataset_dir=subset, out_dir=tmp_path / "model", options=options)
    assert read_metadata(info.model_dir).architecture == "detector"

    dataset = read_dataset(subset)
    split = split_by_photo(
        dataset.photos, validation_fraction=0.15, test_fraction=0.2, seed=options.seed
    )
    photos = [photo for photo in dataset.photos if photo.name in set(split.test)]
    pictures = [Image.open(photo.path).convert("RGB") for photo in photos]
    float_detector = load_classifier(info.model_dir, runtime="keras")
    int8_detector = load_classifier(info.model_dir, runtime="litert")
    float_best = [
        found[0].brand if found else None
        for found in float_detector.classify(pictures, threshold=0.0)
    ]
    int8_best = [
        found[0].brand if found else None
        for found in int8_detector.classify(pictures, threshold=0.0)
    ]
    right = sum(brand in photo.brands for brand, photo in zip(float_best, photos, strict=True))
    assert right >= 0.5 * len(photos), f"{right} of {len(photos)} named right"
    same = sum(a == b for a, b in zip(float_best, int8_best, strict=True))
    assert same >= 0.8 * len(photos), f"int8 agreed on {same} of {len(photos)}"


def test_keras_own_sizes_get_the_224_pixel_imagenet_weights_offline() -> None:
    """At 96-192 pixels Keras would download size-specific files; the 224 weights are used."""
    import numpy as np

    from monitor.inference.network import build_backbone

    small = build_backbone(image_size=160, weights="imagenet")
    reference = build_backbone(image_size=224, weights="imagenet")
    assert small.input_shape == (None, 160, 160, 3)
    for mine, theirs in zip(small.get_weights(), reference.get_weights(), strict=True):
        assert np.array_equal(mine, theirs)

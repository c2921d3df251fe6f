"""Transfer learning with the real ImageNet MobileNetV2 on real photos (slow: minutes on a CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.inference.classifier import load_classifier
from monitor.inference.training import TrainOptions, train_model

pytestmark = pytest.mark.slow


def most_probable_brand(probabilities: np.ndarray, labels: list[str]) -> str:
    """The brand with the highest probability in any window."""
    brands = probabilities[:, : len(labels)]
    return labels[int(np.unravel_index(int(np.argmax(brands)), brands.shape)[1])]


def test_old_versus_new_logos_beat_chance_on_unseen_photos(
    shared_dir: Path, tmp_path: Path
) -> None:
    dataset = shared_dir / "datasets" / "logo_versions"
    # test/ is the held-out set here, so every photo of train/ is used for training or validation.
    # Telling the old serif logo from the new sans-serif one needs the fine-tuned upper blocks.
    options = TrainOptions(
        epochs_head=20,
        epochs_finetune=8,
        finetune_from_block=10,
        image_size=224,
        test_fraction=0.0,
        seed=0,
    )

    info = train_model(dataset_dir=dataset / "train", out_dir=tmp_path / "model", options=options)
    classifier = load_classifier(info.model_dir)

    photos = sorted((dataset / "test").iterdir())
    expected = ["old" if photo.name.startswith("o") else "new" for photo in photos]
    pictures = [Image.open(photo).convert("RGB") for photo in photos]
    # The brand with the highest probability over the model's own multi-scale windows, even where it
    # would rather say "no logo". Measured once: 6/6 (whole photo alone: 4/6; validation 15/15).
    # (This set has no logo-free pictures to learn "no logo" from, so the brand is read directly.)
    named = [
        most_probable_brand(predictions.probabilities, classifier.labels)
        for predictions in classifier.analyse(pictures)
    ]
    accuracy = sum(a == b for a, b in zip(named, expected, strict=True)) / len(expected)
    assert sorted(info.labels) == ["new", "old"]
    assert accuracy > 0.5, f"predicted {named} for {expected}"


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

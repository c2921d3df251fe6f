"""Training end to end on tiny synthetic data with an untrained backbone (seconds, no ImageNet)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from monitor.exceptions import ConfigurationError, DatasetError
from monitor.inference.classifier import load_classifier
from monitor.inference.datasets import read_dataset
from monitor.inference.heatmaps import STRIDE
from monitor.inference.litert import LiteRTDetector
from monitor.inference.model_dir import (
    CURVE_FILE,
    LITERT_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    VERIFIER_FILE,
    VERIFIER_LITERT_FILE,
    InferenceSettings,
    read_metadata,
)
from monitor.inference.pixels import open_image
from monitor.inference.training import (
    TrainingProgress,
    TrainOptions,
    class_weights,
    loss_share,
    resolved_architecture,
    train_model,
)
from monitor.inference.unboxed import UNBOXED_LOGOS_FILE
from tests.inference.factories import draw_photo, write_brand_folders, write_flickr_dataset

FAST = TrainOptions(
    architecture="windows",
    epochs_head=2,
    epochs_finetune=1,
    image_size=32,
    backbone_weights="random",
    windows_per_box=2,
    backgrounds_per_photo=1,
    batch_size=16,
    hard_negatives=5,
    hard_negative_candidates_per_photo=2,
    # The synthetic photos are small: windows from 16 pixels, so that grids still run on them.
    inference=InferenceSettings(min_window_side=16),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[TrainingProgress]]:
    """One fast training run on a synthetic FlickrLogos-style set, shared by the tests below."""
    root = tmp_path_factory.mktemp("train")
    dataset = write_flickr_dataset(root / "set", photos_per_brand=6)
    steps: list[TrainingProgress] = []
    train_model(
        dataset_dir=dataset,
        out_dir=root / "model",
        options=replace(FAST, validation_fraction=0.2, test_fraction=0.2, seed=1),
        progress=steps.append,
    )
    return dataset, root / "model", steps


def test_training_writes_a_complete_model_directory(
    trained: tuple[Path, Path, list[TrainingProgress]],
) -> None:
    _, model_dir, _ = trained
    for name in (MODEL_FILE, "metadata.json", METRICS_FILE, CURVE_FILE, SPLIT_FILE):
        assert (model_dir / name).is_file(), name
    assert not [path for path in model_dir.parent.iterdir() if path.name.startswith(".model.")]
    metadata = read_metadata(model_dir)
    assert metadata.labels == ("acme", "globex", "initech")
    assert metadata.input_size == 32
    assert metadata.backbone == "MobileNetV2" and metadata.backbone_weights == "random"
    assert metadata.temperature > 0 and 0 <= metadata.no_logo_threshold <= 1
    assert metadata.training_seconds > 0
    metrics = json.loads((model_dir / METRICS_FILE).read_text())
    assert metrics["stages"]["head"]["epochs"] == 2
    assert metrics["stages"]["finetune"]["epochs"] == 1
    assert {"ece_before", "ece_after", "threshold"} <= set(metrics["calibration"])
    mined = metrics["hard_negatives"]
    assert mined["kept"] == 5 and mined["candidates"] > 5
    assert metrics["samples"]["train"] + 5 == metrics["samples"]["train_with_hard_negatives"]


def test_the_split_holds_out_whole_photos(
    trained: tuple[Path, Path, list[TrainingProgress]],
) -> None:
    dataset_dir, model_dir, _ = trained
    split = json.loads((model_dir / SPLIT_FILE).read_text())
    train, validation, test = (set(split[side]) for side in ("train", "validation", "test"))
    assert not (train & test) and not (train & validation) and not (validation & test)
    assert train | validation | test == {photo.name for photo in read_dataset(dataset_dir).photos}
    assert len(test) == 3  # one photo of each of the three brands (6 x 0.2, rounded)


def test_the_trained_model_loads_and_classifies(
    trained: tuple[Path, Path, list[TrainingProgress]],
) -> None:
    _, model_dir, _ = trained
    classifier = load_classifier(model_dir)
    (detections,) = classifier.classify([draw_photo((200, 150), [("acme", (20, 20, 80, 80))], 3)])
    for detection in detections:
        assert detection.brand in classifier.labels and detection.box is not None


def test_progress_goes_through_every_stage_in_order(
    trained: tuple[Path, Path, list[TrainingProgress]],
) -> None:
    *_, steps = trained
    stages = list(dict.fromkeys(step.stage for step in steps))
    assert stages == ["reading", "features", "head", "finetune", "calibrating", "saving"]
    head_steps = [step for step in steps if step.stage == "head"]
    assert head_steps[-1].epoch == head_steps[-1].epochs == 2
    assert all(step.completed <= step.total for step in steps)


FAST_DETECTOR = TrainOptions(
    # the default: a dataset with boxes trains the detector
    architecture="auto",
    backbone_weights="random",
    detector_input_size=64,
    detector_epochs=3,
    detector_batch_size=4,
    detector_head_width=24,
    verifier_input_size=48,
    verifier_epochs_head=2,
    verifier_epochs_finetune=1,
    validation_fraction=0.2,
    test_fraction=0.2,
    seed=1,
)


@pytest.fixture(scope="module")
def trained_detector(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, list[TrainingProgress]]:
    """A fast run of the one-pass detector on a dataset with boxes."""
    root = tmp_path_factory.mktemp("train-detector")
    dataset = write_flickr_dataset(root / "set", photos_per_brand=6)
    steps: list[TrainingProgress] = []
    train_model(
        dataset_dir=dataset, out_dir=root / "model", options=FAST_DETECTOR, progress=steps.append
    )
    return dataset, root / "model", steps


def test_the_detector_trains_on_a_dataset_with_boxes(
    trained_detector: tuple[Path, Path, list[TrainingProgress]],
) -> None:
    _, model_dir, steps = trained_detector
    for name in (
        MODEL_FILE,
        "metadata.json",
        METRICS_FILE,
        CURVE_FILE,
        SPLIT_FILE,
        LITERT_FILE,
        VERIFIER_FILE,
        VERIFIER_LITERT_FILE,
    ):
        assert (model_dir / name).is_file(), name
    metadata = read_metadata(model_dir)
    assert metadata.architecture == "detector"
    assert metadata.verifier is not None and metadata.verifier.input_size == 48
    assert metadata.input_size == 64 and metadata.knows_no_logo
    saved = keras.models.load_model(model_dir / MODEL_FILE, compile=False)
    assert saved.get_layer("head").get_layer("lateral_0").filters == 24
    assert 0 <= metadata.no_logo_threshold <= 1
    metrics = json.loads((model_dir / METRICS_FILE).read_text())
    assert metrics["stages"]["detector_head"]["epochs"] == 3
    # validated from the second half on, so the kept epoch is one of those
    assert metrics["stages"]["detector_head"]["best_epoch"] >= 2
    assert 0.8 <= metadata.box_scale <= 1.6
    assert metrics["box_scale"]["scale"] == metadata.box_scale
    assert {"score_calibration", "ece_before", "ece_after", "threshold", "verifier"} <= set(
        metrics["calibration"]
    )
    assert metrics["verifier"]["train_no_logo_windows"] > 0
    assert metrics["verifier"]["train_windows"] > metrics["verifier"]["train_no_logo_windows"]
    # the option reached the fit: balanced over 3 brands, "no logo" would carry a quarter
    assert metrics["verifier"]["train_no_logo_loss_share"] == pytest.approx(
        FAST_DETECTOR.verifier_no_logo_share, abs=1e-3
    )
    assert metrics["calibration"]["verifier"]["combination"] == pytest.approx(
        list(metadata.verifier.combination), abs=1e-4
    )
    # the brand fusion was fitted on validation candidates on logos, and saved as fitted
    fusion = metrics["calibration"]["brand_fusion"]
    assert fusion["weight"] == metadata.verifier.brand_fusion
    assert set(fusion) == {"weight", "candidates_on_logos", "brand_right"}
    stages = list(dict.fromkeys(step.stage for step in steps))
    assert stages == [
        "reading",
        "fitting",
        "box scale",
        "verifier",
        "verifier features",
        "verifier head",
        "verifier finetune",
        "calibrating",
        "saving",
    ]
    for stage in ("verifier", "calibrating"):
        # pictures counted as they are analysed, so a log shows these minutes moving
        counted = [step.completed for step in steps if step.stage == stage]
        assert len(counted) > 2 and counted == sorted(counted)
        assert counted[-1] == next(step.total for step in steps if step.stage == stage)
    fitting = [step for step in steps if step.stage == "fitting"]
    assert fitting[-1].epoch == fitting[-1].epochs == 3
    assert {"heatmap_loss", "box_loss", "val_heatmap_loss"} <= set(fitting[-1].metrics)
    first_epoch_end = [step for step in fitting if step.epoch == 1][-1]
    assert "heatmap_loss" in first_epoch_end.metrics
    assert "val_heatmap_loss" not in first_epoch_end.metrics


def test_the_trained_detector_loads_and_classifies(
    trained_detector: tuple[Path, Path, list[TrainingProgress]],
) -> None:
    _, model_dir, _ = trained_detector
    detector = load_classifier(model_dir)
    photo = draw_photo((200, 150), [("acme", (20, 20, 80, 80))], 3)
    (candidates,) = detector.classify([photo], threshold=0.0)
    for detection in candidates:
        assert detection.brand in detector.labels and detection.box is not None
        assert 0 <= detection.box[0] < detection.box[2] <= 200


def test_the_default_architecture_follows_the_dataset() -> None:
    assert TrainOptions().architecture == "auto"
    chosen = {
        layout: resolved_architecture(TrainOptions(), dataset_layout=layout).architecture
        for layout in ("flickr", "folders")
    }
    assert chosen == {"flickr": "detector", "folders": "windows"}
    asked = TrainOptions(architecture="detector")
    assert resolved_architecture(asked, dataset_layout="folders") == asked


def test_brand_folders_train_the_detector_with_each_photo_as_its_box(tmp_path: Path) -> None:
    dataset = write_brand_folders(tmp_path / "set", per_brand=6)
    options = replace(
        FAST_DETECTOR, architecture="detector", detector_epochs=1, validation_fraction=0.34
    )
    train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)
    metadata = read_metadata(tmp_path / "model")
    assert metadata.architecture == "detector" and not metadata.knows_no_logo
    detector = load_classifier(tmp_path / "model")
    photos = [open_image(path) for path in sorted((dataset / "acme").iterdir())[:2]]
    assert [len(found) for found in detector.classify(photos)] == [1, 1]


def test_the_detector_trains_on_added_boxes_without_their_extents(tmp_path: Path) -> None:
    dataset = write_flickr_dataset(tmp_path / "set", photos_per_brand=4)
    names = sorted(photo.name for photo in read_dataset(dataset).photos)
    (dataset / UNBOXED_LOGOS_FILE).write_text(
        "".join(f"{name} globex 10 10 40 40\n" for name in names)
    )
    options = replace(
        FAST_DETECTOR,
        detector_epochs=1,
        verifier=False,
        added_logo_boxes=True,
        added_logo_box_extents=False,
    )
    info = train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)
    metrics = json.loads((info.model_dir / METRICS_FILE).read_text())
    assert metrics["added_logo_boxes_in_training"] > 0
    assert read_metadata(info.model_dir).architecture == "detector"


def test_the_detector_trains_with_pasted_logos(tmp_path: Path) -> None:
    dataset = write_flickr_dataset(tmp_path / "set", photos_per_brand=4)
    options = replace(FAST_DETECTOR, detector_epochs=1, verifier=False, detector_paste_share=1.0)
    info = train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)
    metrics = json.loads((info.model_dir / METRICS_FILE).read_text())
    assert metrics["stages"]["detector_head"]["pasted_logo_bank"] > 0
    assert read_metadata(info.model_dir).architecture == "detector"


def test_head_only_training_on_brand_folders_with_negatives(tmp_path: Path) -> None:
    dataset = write_brand_folders(tmp_path / "set", per_brand=4)
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    for index in range(3):
        draw_photo((80, 60), [], seed=index).save(negatives / f"{index}.jpg")
    options = replace(
        FAST, architecture="auto", epochs_finetune=0, negatives_dir=negatives, test_fraction=0.0
    )
    info = train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)
    assert info.labels == ("acme", "globex")
    # by default a folder per brand (no boxes) trains the window classifier
    assert read_metadata(info.model_dir).architecture == "windows"
    assert "finetune" not in info.metrics["stages"]
    assert info.metrics["samples"]["train_no_logo"] > 0
    assert load_classifier(info.model_dir).version == info.version


def test_brand_folders_without_logo_free_pictures_name_a_class_for_every_photo(
    tmp_path: Path,
) -> None:
    dataset = write_brand_folders(tmp_path / "set", per_brand=6)
    steps: list[TrainingProgress] = []
    options = replace(FAST, test_fraction=0.0, validation_fraction=0.2)
    info = train_model(
        dataset_dir=dataset, out_dir=tmp_path / "model", options=options, progress=steps.append
    )
    metadata = read_metadata(info.model_dir)
    assert metadata.knows_no_logo is False and info.knows_no_logo is False
    assert metadata.no_logo_threshold == 0.0
    warned = [step.warning for step in steps if step.warning]
    assert any(warning.startswith("no logo-free pictures") for warning in warned)
    assert any("fewer than 10 training photos: acme (5), globex (5)" in w for w in warned)
    metrics = json.loads((info.model_dir / METRICS_FILE).read_text())
    assert metrics["warnings"] == warned == list(info.warnings)
    assert metrics["knows_no_logo"] is False
    assert "validation_accuracy" in metrics["calibration"]["threshold"]
    classifier = load_classifier(info.model_dir)
    photos = read_dataset(dataset).photos
    results = classifier.classify([open_image(photo.path, max_pixels=10**6) for photo in photos])
    assert [len(detections) for detections in results] == [1] * len(photos)


def test_a_no_logo_folder_gives_the_model_a_no_logo_answer(tmp_path: Path) -> None:
    # Whether it then tells logos from backgrounds is for the real backbone to show (slow test).
    dataset = write_brand_folders(tmp_path / "set", per_brand=12, no_logo_folder="none")
    options = replace(FAST, no_logo_folder="none", test_fraction=0.0, validation_fraction=0.25)
    info = train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)
    assert info.knows_no_logo is True
    metadata = read_metadata(info.model_dir)
    assert metadata.knows_no_logo is True and metadata.labels == ("acme", "globex")
    threshold = info.metrics["calibration"]["threshold"]
    assert threshold["validation_no_logo_pictures"] == 3
    assert 0.0 < threshold["value"] <= 1.0
    # three logo-free validation pictures cannot measure a 3% false-positive rate
    assert [w for w in info.warnings if w.startswith("only 3 logo-free validation pictures")]
    assert not [w for w in info.warnings if w.startswith("no logo-free")]


def test_an_existing_non_empty_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("in use")
    with pytest.raises(ConfigurationError, match="already exists and is not empty"):
        train_model(dataset_dir=tmp_path, out_dir=tmp_path / "model", options=FAST)


def test_a_missing_dataset_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        train_model(dataset_dir=tmp_path / "none", out_dir=tmp_path / "m", options=TrainOptions())
    assert not (tmp_path / "m").exists()


def test_an_undecodable_photo_is_a_dataset_error(tmp_path: Path) -> None:
    dataset = write_brand_folders(tmp_path / "set", per_brand=2)
    photo = dataset / "acme" / "0.png"
    photo.write_bytes(photo.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cannot use acme/0\.png"):
        train_model(
            dataset_dir=dataset,
            out_dir=tmp_path / "m",
            options=replace(FAST, test_fraction=0.0, validation_fraction=0.0),
        )


def test_the_detector_serves_at_its_own_size_with_the_fitted_weights(tmp_path: Path) -> None:
    """Trained at 64 pixels, saved at 96: the saved networks answer at 96, float and int8."""
    dataset = write_flickr_dataset(tmp_path / "set", photos_per_brand=4)
    options = replace(FAST_DETECTOR, detector_epochs=1, detector_serving_size=96)
    train_model(dataset_dir=dataset, out_dir=tmp_path / "model", options=options)
    metadata = read_metadata(tmp_path / "model")
    assert metadata.input_size == 96
    saved = keras.models.load_model(tmp_path / "model" / MODEL_FILE, compile=False)
    assert saved.get_layer("features").input.shape[1:3] == (96, 96)
    assert saved.get_layer("resize").height == 96
    int8 = LiteRTDetector(tmp_path / "model" / LITERT_FILE)
    heatmaps, _ = int8.predict(np.zeros((1, 96, 96, 3), dtype=np.uint8))
    assert heatmaps.shape[1:3] == (96 // STRIDE, 96 // STRIDE)
    photo = draw_photo((200, 150), [("acme", (20, 20, 80, 80))], 3)
    for runtime in ("keras", "litert"):
        (detections,) = load_classifier(tmp_path / "model", runtime=runtime).classify([photo])
        assert all(detection.box is not None for detection in detections)


def test_missing_weights_file_is_a_configuration_error(tmp_path: Path) -> None:
    dataset = write_brand_folders(tmp_path / "set", per_brand=2)
    options = replace(FAST, backbone_weights=str(tmp_path / "absent.h5"))
    with pytest.raises(ConfigurationError, match="neither 'imagenet' nor an existing"):
        train_model(dataset_dir=dataset, out_dir=tmp_path / "m", options=options)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs_head": 0}, "epochs_head must be at least 1"),
        ({"image_size": 8}, "image_size must be between"),
        ({"validation_fraction": 0.5, "test_fraction": 0.45}, "must leave photos"),
        ({"finetune_from_block": 17}, "finetune_from_block"),
        ({"verifier_finetune_from_block": 0}, "verifier_finetune_from_block"),
        ({"detector_head_width": 4}, "detector_head_width"),
        ({"detector_serving_size": 100}, "detector_serving_size must be a multiple of 32"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
    ],
)
def test_bad_options_are_configuration_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TrainOptions(**changes)  # type: ignore[arg-type]


def test_class_weights_balance_present_classes() -> None:
    weights = class_weights([0, 0, 0, 1, 3, 3], 4)
    assert weights[2] == 0.0
    assert weights[0] * 3 == pytest.approx(weights[1] * 1) == pytest.approx(weights[3] * 2)
    assert (weights[[0, 0, 0, 1, 3, 3]].sum()) == pytest.approx(6)


def test_a_no_logo_share_gives_the_last_class_that_share_of_the_loss() -> None:
    labels = np.array([0, 0, 0, 1, 3, 3, 3, 3, 3, 3])
    weights = class_weights(labels, 4, no_logo_share=0.5)[labels]
    assert weights[labels == 3].sum() == pytest.approx(0.5 * weights.sum())
    # the brands stay balanced among themselves, and the total weight is unchanged
    assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())
    assert weights.sum() == pytest.approx(len(labels))
    # balanced, "no logo" would carry a third (one of three present classes)
    balanced = class_weights(labels, 4)[labels]
    assert balanced[labels == 3].sum() == pytest.approx(balanced.sum() / 3)


def test_the_loss_share_of_a_label_is_read_from_the_weights_trained_with() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2])
    assert loss_share(labels, class_weights(labels, 3)[labels], 2) == pytest.approx(1 / 3, abs=1e-3)
    shared = class_weights(labels, 3, no_logo_share=0.7)[labels]
    assert loss_share(labels, shared, 2) == pytest.approx(0.7, abs=1e-3)
    assert loss_share(labels, np.zeros(6), 2) is None


def test_a_no_logo_share_without_both_kinds_of_samples_stays_balanced() -> None:
    assert class_weights([0, 1, 1], 3, no_logo_share=0.5) == pytest.approx(
        class_weights([0, 1, 1], 3)
    )
    assert class_weights([2, 2], 3, no_logo_share=0.5) == pytest.approx(class_weights([2, 2], 3))


def test_no_logo_shares_outside_zero_and_one_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="verifier_no_logo_share"):
        TrainOptions(verifier_no_logo_share=1.0)
    with pytest.raises(ConfigurationError, match="no_logo_weight_share"):
        TrainOptions(no_logo_weight_share=0.0)

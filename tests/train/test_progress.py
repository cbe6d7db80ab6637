"""The per-epoch line shows the metrics a task reports, and only those."""

from __future__ import annotations

import math

from cnnkit.train.progress import format_epoch_line

BASE = {"epoch": 2, "train_loss": 0.5, "lr": 0.01, "seconds": 3.0, "images_per_second": 100.0}


def test_classification_line_unchanged() -> None:
    row = {**BASE, "train_accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.95, "val_count": 10}
    assert format_epoch_line(row, 5) == "epoch 2/5  loss 0.5000  acc 90.00%  val_loss 0.4000  val_acc 95.00%  lr 0.01  3.0s  100 img/s"


def test_training_metrics_of_other_tasks_are_shown() -> None:
    row = {**BASE, "train_rmse": 1.25, "train_mae": 0.5, "train_count": 7}
    assert format_epoch_line(row, 5) == "epoch 2/5  loss 0.5000  mae 0.5000  rmse 1.2500  lr 0.01  3.0s  100 img/s"


def test_other_tasks_show_their_validation_metrics_and_skip_nan() -> None:
    row = {**BASE, "train_map": math.nan, "val_loss": math.nan, "val_map": 0.25, "val_map50": 0.5}
    assert format_epoch_line(row, 5) == "epoch 2/5  loss 0.5000  val_map 0.2500  val_map50 0.5000  lr 0.01  3.0s  100 img/s"


def test_the_throughput_counts_what_the_data_holds():
    from cnnkit.train.progress import throughput_unit

    row = {"epoch": 1, "train_loss": 0.5, "lr": 0.01, "seconds": 2.0, "images_per_second": 50.0}
    assert format_epoch_line(row, 3, throughput_unit("series")).endswith("50 series/s")
    assert format_epoch_line(row, 3, throughput_unit("text")).endswith("50 texts/s")
    assert [throughput_unit(k) for k in (None, "image", "clip", "segmentation")] == ["img", "img", "clips", "img"]

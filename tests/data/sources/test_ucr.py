"""The ucr dataset: found in data.root or aeon's wheel, bundled into series batches, bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.config import load_config
from cnnkit.data import build_data
from cnnkit.errors import ConfigError, DataError


def write_problem(folder: Path, name: str = "Toy", *, n: int = 24, length: int = 30, unequal: bool = False, seed: int = 0) -> Path:
    """Two classes (a bump early or late), written as NAME_TRAIN.ts / NAME_TEST.ts."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("TRAIN", "TEST"):
        lines = [f"@problemName {name}", "@timeStamps false", "@missing true", "@univariate true",
                 f"@equalLength {'false' if unequal else 'true'}"]
        if not unequal:
            lines.append(f"@seriesLength {length}")
        lines += ["@classLabel true early late", "@data"]
        for i in range(n):
            m = length - (i % 5 if unequal else 0)
            t = np.arange(m)
            label = ("early", "late")[i % 2]
            centre = m * (0.25 if label == "early" else 0.75)
            s = np.exp(-((t - centre) ** 2) / 8) + 0.05 * rng.normal(size=m)
            vals = [f"{v:.5f}" for v in s]
            if i == 3:
                vals[5] = "?"
            lines.append(",".join(vals) + ":" + label)
        (folder / f"{name}_{split}.ts").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _bundle(root: Path | None, *extra: str):
    over = ["data.name=ucr", *extra] + ([f"data.root={root}"] if root is not None else [])
    cfg = load_config(None, over)
    return build_data(cfg.data, input_shape=(1, 8), device="cpu", seed=0)


def test_builds_series_bundle_from_root(tmp_path: Path) -> None:
    write_problem(tmp_path / "Toy")
    b = _bundle(tmp_path, "data.dataset=Toy", "data.val_fraction=0.25")
    assert b.kind == "series" and b.input_shape == (1, 30) and b.class_names == ["early", "late"]
    assert b.model_kwargs == {"in_channels": 1, "num_classes": 2, "seq_len": 30}
    x, y = next(iter(b.test))
    assert x.shape == (24, 1, 30) and not torch.isnan(x).any()  # the '?' was filled
    assert torch.allclose(x.mean(-1), torch.zeros(24, 1), atol=1e-5)  # z-normalized per series
    assert len(b.val.x) == 6 and b.preprocessing["normalize"] == "series"


def test_unequal_lengths_are_nan_padded(tmp_path: Path) -> None:
    write_problem(tmp_path, unequal=True)
    b = _bundle(tmp_path, "data.dataset=Toy")
    assert torch.isnan(b.train.x).any()
    lengths = (~torch.isnan(b.train.x).all(1)).sum(-1)
    assert set(lengths.tolist()) == {26, 27, 28, 29, 30}


def test_augmented_batches_are_seeded_per_batch(tmp_path: Path) -> None:
    write_problem(tmp_path)
    b = _bundle(tmp_path, "data.dataset=Toy", "data.series_augment.jitter=0.1", "data.batch_size=8")
    first = [x for x, _ in b.train.epoch_batches(2)]
    again = [x for x, _ in b.train.epoch_batches(2, start_step=1)]
    assert torch.equal(first[1], again[0]) and not torch.equal(first[0], first[1])


def test_missing_problem_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ucr problem 'Nope' not found: need Nope_TRAIN.ts"):
        _bundle(tmp_path, "data.dataset=Nope")
    with pytest.raises(DataError, match="must be a problem name"):
        _bundle(tmp_path, "data.dataset=../x")
    with pytest.raises(ConfigError, match="datset"):
        load_config(None, ["data.name=ucr", "data.datset=GunPoint"])


def test_test_label_not_in_training_file(tmp_path: Path) -> None:
    write_problem(tmp_path)
    p = tmp_path / "Toy_TEST.ts"
    p.write_text(p.read_text().replace("@classLabel true early late", "@classLabel true early late other")
                 .replace(":late\n", ":other\n", 1))
    with pytest.raises(DataError, match="not among the training labels"):
        _bundle(tmp_path, "data.dataset=Toy")


def test_bundled_gunpoint_from_aeon() -> None:
    pytest.importorskip("aeon")
    b = _bundle(None, "data.dataset=GunPoint")
    assert b.input_shape == (1, 150) and len(b.train.x) == 50 and len(b.test.x) == 150


def test_series_npz_and_mnist1d(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x_train=rng.normal(size=(20, 3, 16)), y_train=np.arange(20) % 2)
    cfg = load_config(None, ["data.name=series-npz", f"data.root={tmp_path / 's.npz'}"])
    b = build_data(cfg.data, input_shape=(1, 8), device="cpu", seed=0)
    assert b.input_shape == (3, 16) and len(b.train.x) + len(b.test.x) == 20
    np.savez(tmp_path / "bad.npz", x_train=rng.normal(size=(20,)), y_train=np.arange(20) % 2)
    cfg = load_config(None, ["data.name=series-npz", f"data.root={tmp_path / 'bad.npz'}"])
    with pytest.raises(DataError, match=r"expected series of shape \(N, L\) or \(N, C, L\)"):
        build_data(cfg.data, input_shape=(1, 8), device="cpu", seed=0)
    pytest.importorskip("mnist1d")
    state = np.random.get_state()[1].copy()
    cfg = load_config(None, ["data.name=mnist1d", "data.num_samples=200"])
    b = build_data(cfg.data, input_shape=(1, 40), device="cpu", seed=0)
    assert b.input_shape == (1, 40) and b.num_classes == 10 and len(b.train.x) == 160
    assert np.array_equal(np.random.get_state()[1], state)  # the generator's global seeding is undone

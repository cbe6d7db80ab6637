"""``series-csv``: one series per row of delimited text, checked against ``series-npz`` on the same arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.config import load_config
from cnnkit.data import build_data
from cnnkit.data.sources.series_csv import read_series_rows
from cnnkit.errors import DataError


def _bundle(root: Path, *extra: str, shape: tuple[int, ...] = (1, 8)):  # type: ignore[no-untyped-def]
    cfg = load_config(None, ["data.name=series-csv", f"data.root={root}", *extra])
    return build_data(cfg.data, input_shape=shape, device="cpu", seed=0)


def _write(path: Path, x: np.ndarray, y: np.ndarray, sep: str = "\t") -> None:
    """The UCR 2018 archive's layout: label, then the values (channel-major), one series per line."""
    path.write_text("".join(sep.join([str(int(label)), *(f"{v:.17g}" for v in row.reshape(-1))]) + "\n"
                            for label, row in zip(y, x)), encoding="utf-8")


def test_same_tensors_as_series_npz_on_the_same_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 2, 12)), np.arange(24) % 3
    xt, yt = rng.normal(size=(9, 2, 12)), np.arange(9) % 3
    x[3, 1, 5] = np.nan  # a missing value inside a series: interpolated alike
    folder = tmp_path / "Toy"
    folder.mkdir()
    _write(folder / "Toy_TRAIN.tsv", x, y)
    _write(folder / "Toy_TEST.tsv", xt, yt)
    np.savez(tmp_path / "toy.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    ours = _bundle(folder, "data.channels=2")
    npz = build_data(load_config(None, ["data.name=series-npz", f"data.root={tmp_path / 'toy.npz'}"]).data,
                     input_shape=(1, 8), device="cpu", seed=0)
    assert ours.input_shape == npz.input_shape == (2, 12) and ours.class_names == ["0", "1", "2"]
    for a, b in ((ours.train, npz.train), (ours.test, npz.test)):
        torch.testing.assert_close(a.x, b.x, rtol=0, atol=1e-12, equal_nan=True)
        assert torch.equal(a.labels, b.labels)


def test_header_labels_unequal_lengths_and_one_file(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    rows = ["label,t0,t1,t2,t3"] + [f"{'walk' if i % 2 else 'run'},{i},{i + 1},{i + 2},{'' if i % 4 == 1 else i + 3}"
                                    for i in range(40)]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cases, labels = read_series_rows(p)
    assert len(cases) == 40 and labels[:2] == ["run", "walk"]
    assert cases[1].shape == (1, 3) and cases[0].shape == (1, 4)  # a trailing empty cell: a shorter series
    b = _bundle(p)
    assert b.class_names == ["run", "walk"] and len(b.train.x) + len(b.test.x) == 40 and b.input_shape == (1, 4)
    # Numeric labels sort as numbers, not as strings.
    q = tmp_path / "n.csv"
    q.write_text("".join(f"{lab},1,2,3\n" for lab in (10, 2, 1, 10, 2, 1, 10, 2, 1, 10, 2, 1)), encoding="utf-8")
    assert _bundle(q).class_names == ["1", "2", "10"]


@pytest.mark.parametrize(("text", "extra", "match"), [
    ("a,1,2\nb,1,x\n", [], r"s.csv:2: value 2 \('x'\) is not a finite number"),
    ("a,1,2\nb\n", [], r"s.csv:2: a series of length 0"),
    ("a,1,2,3\n", ["data.channels=2"], r"s.csv:1: 3 values do not split into data.channels=2"),
    ("a,1,inf\n", [], r"s.csv:1: value 2 \('inf'\) is not a finite number"),
    (",1,2\n", [], r"s.csv:1: the first cell \(the label\) is empty"),
    ("\n\n", [], r"s.csv: no series rows"),
])
def test_bad_rows_name_the_file_and_line(tmp_path: Path, text: str, extra: list[str], match: str) -> None:
    p = tmp_path / "s.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        _bundle(p, *extra)


def test_bad_files_and_folders(tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("caf\xe9,1,2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv: not UTF-8 text"):
        _bundle(p)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_text("a,1,2\nb,3,4\n" * 4, encoding="utf-8")
    (tmp_path / "d" / "test.csv").write_text("c,1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test.csv: label 'c' has no training series"):
        _bundle(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds neither train.csv nor one"):
        _bundle(tmp_path / "empty")


def test_trains_from_the_cli(tmp_path: Path) -> None:
    from cnnkit.cli import main

    rng = np.random.default_rng(1)
    t = np.linspace(0, 6, 32)
    x = np.stack([np.sin(t * (1 + c)) + 0.1 * rng.normal(size=32) for c in np.arange(60) % 2])[:, None]
    folder = tmp_path / "waves"
    folder.mkdir()
    _write(folder / "train.csv", x[:40], np.arange(40) % 2, sep=",")
    _write(folder / "test.csv", x[40:], np.arange(40, 60) % 2, sep=",")
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--quiet"]
    for s in ("data.name=series-csv", f"data.root={folder}", "model.name=fcn1d", "train.epochs=2", "train.threads=1",
              "data.batch_size=8", "optim.name=adam", "optim.lr=0.001", "optim.momentum=0"):
        args += ["--set", s]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_count"] == 20 and 0 <= summary["test_accuracy"] <= 1

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import load_config
from cnnkit.data import build_data
from cnnkit.errors import DataError


def _images(root, n=12, labels=None):
    root.mkdir(parents=True, exist_ok=True)
    rows = ["file,label"]
    for i in range(n):
        Image.fromarray(np.full((6, 6), 20 * i, np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{labels(i) if labels else ('a;b' if i % 2 else 'b')}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _bundle(sets):
    cfg = load_config(None, sets)
    return build_data(cfg.data, input_shape=(1, 8, 8), device="cpu", seed=0)


def test_image_csv_multi_hot_targets(tmp_path):
    root = _images(tmp_path / "im")
    b = _bundle(["data.name=image-csv", f"data.root={root}", "data.test_fraction=0.25"])
    x, y = next(iter(b.train))
    assert x.shape[1:] == (1, 8, 8) and y.dtype == torch.float32 and y.shape[1] == 2
    assert b.class_names == ["a", "b"] and b.meta["targets"] == "labels" and b.model_kwargs == {"num_classes": 2}
    assert len(b.train.labels) == 9 and len(b.test.labels) == 3


def test_image_csv_value_columns(tmp_path):
    root = _images(tmp_path / "im")
    (root / "labels.csv").write_text("file,age,size\n" + "".join(f"{i}.png,{i},{i * 2}\n" for i in range(12)))
    b = _bundle(["data.name=image-csv", f"data.root={root}"])
    assert b.meta["targets"] == "values" and b.class_names == ["age", "size"] and b.train.labels.shape[1] == 2


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: (r / "extra.png").write_bytes((r / "0.png").read_bytes()), "1 image.* have no row, e.g. extra.png"),
        (lambda r: (r / "3.png").unlink(), "names '3.png', which is not a file"),
        (lambda r: (r / "labels.csv").write_text("name,label\n0.png,a\n"), "no 'file' column"),
        (lambda r: (r / "labels.csv").write_text("file,label\n../x.png,a\n"), "outside"),
        (lambda r: (r / "labels.csv").write_bytes(b"file,label\n0.png,\xff\n"), "not UTF-8"),
    ],
)
def test_label_file_that_does_not_match_is_one_line(tmp_path, edit, match):
    root = _images(tmp_path / "im")
    edit(root)
    with pytest.raises(DataError, match=match):
        _bundle(["data.name=image-csv", f"data.root={root}"])


def test_label_without_training_items_is_an_error(tmp_path):
    # "rare" is given to one image only: the one the fixed test split holds (found from a first build).
    root = _images(tmp_path / "im", labels=lambda i: "a")
    b = _bundle(["data.name=image-csv", f"data.root={root}", "data.targets=labels", "data.test_fraction=0.25"])
    test_pixel = int(b.test.images[0, 0, 4, 4])  # 20 * i (the 6x6 image is padded to 8x8)
    rare = test_pixel // 20
    _images(root, labels=lambda i: "a;rare" if i == rare else "a")
    with pytest.raises(DataError, match="label 'rare' has no item in the training split"):
        _bundle(["data.name=image-csv", f"data.root={root}", "data.targets=labels", "data.test_fraction=0.25"])


def test_npz_multi_hot_and_values(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (20, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "ml.npz", x_train=x, y_train=(rng.random((20, 3)) < 0.5).astype(np.int64))
    b = _bundle(["data.name=npz", f"data.root={tmp_path / 'ml.npz'}"])
    assert b.meta["targets"] == "labels" and b.train.labels.shape[1] == 3 and b.class_names == ["0", "1", "2"]
    np.savez(tmp_path / "reg.npz", x_train=x, y_train=rng.random(20).astype(np.float32))
    b = _bundle(["data.name=npz", f"data.root={tmp_path / 'reg.npz'}"])
    assert b.meta["targets"] == "values" and b.train.labels.shape[1:] == (1,)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=np.full((20, 2), 3))
    with pytest.raises(DataError, match="0/1 labels"):
        _bundle(["data.name=npz", f"data.root={tmp_path / 'bad.npz'}"])
    np.savez(tmp_path / "dims.npz", x_train=x, y_train=np.zeros((20, 2, 2), np.float32))
    with pytest.raises(DataError, match=r"shape \(N,\) or \(N, K\)"):
        _bundle(["data.name=npz", f"data.root={tmp_path / 'dims.npz'}"])

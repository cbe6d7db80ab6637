import numpy as np
import pytest
import torch

from cnnkit.config import DataConfig
from cnnkit.data import load_dataset
from cnnkit.errors import DataError


def test_digits_fixed_stratified_split():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits"), load_dataset("digits", split="test")
    assert len(train) + len(test) == 1797 and len(test) == round(0.25 * 1797)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    # 0..16 rescaled to 0..255 exactly: the value 16 becomes 255, 8 becomes round(127.5) = 128.
    ref = load_digits()
    all_images = torch.cat([train.images, test.images]).flatten(1).sort(dim=1).values
    expected = torch.from_numpy(np.rint(ref.images.reshape(1797, -1) * 255 / 16).astype(np.uint8)).sort(dim=1).values
    assert torch.equal(all_images.sort(dim=0).values, expected.sort(dim=0).values)
    counts = torch.bincount(test.labels, minlength=10).float()
    assert (counts - counts.mean()).abs().max() <= 2  # stratified: about 45 per class
    assert torch.equal(load_dataset("digits", split="test").images, test.images)  # fixed


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW", "float"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 3, 5, 6), dtype=np.uint8)
    if layout == "NHW":
        x = x[:, 0]
        stored = x
    elif layout == "NHWC":
        stored = x.transpose(0, 2, 3, 1)
    elif layout == "float":
        stored = x / 255.0
    else:
        stored = x
    y = np.arange(12) % 3
    p = _save(tmp_path / "d.npz", x_train=stored, y_train=y, x_test=stored[:4], y_test=y[:4])
    ds = load_dataset("npz", p)
    expect = torch.from_numpy(x if x.ndim == 4 else x[:, None])
    assert torch.equal(ds.images, expect) and ds.labels.tolist() == y.tolist()
    assert ds.class_names == ["0", "1", "2"] and len(load_dataset("npz", p, split="test")) == 4


def test_npz_without_test_and_with_class_names(tmp_path):
    x = np.zeros((20, 4, 4), np.uint8)
    y = np.arange(20) % 2
    p = _save(tmp_path / "d.npz", x_train=x, y_train=y, class_names=np.array(["no", "yes"]))
    cfg = DataConfig(name="npz", root=str(p), test_fraction=0.25)
    tr, te = load_dataset("npz", cfg=cfg), load_dataset("npz", split="test", cfg=cfg)
    assert (len(tr), len(te)) == (15, 5) and tr.class_names == ["no", "yes"]


def test_npz_errors(tmp_path):
    p = _save(tmp_path / "a.npz", x_train=np.zeros((3, 4, 4), np.uint8), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match="x_train has 3 images but y_train has 2 labels"):
        load_dataset("npz", p)
    p = _save(tmp_path / "b.npz", x_train=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DataError, match="no array 'y_train'"):
        load_dataset("npz", p)
    # Object arrays would need pickle: refused.
    p = _save(tmp_path / "c.npz", x_train=np.array([None, 1], dtype=object), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match="unreadable npz file .*c.npz"):
        load_dataset("npz", p)
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="d.npz"):
        load_dataset("npz", tmp_path / "d.npz")
    p = _save(tmp_path / "e.npz", x_train=np.full((2, 4, 4), 2.0), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        load_dataset("npz", p)

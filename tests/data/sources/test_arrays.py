import zipfile

import numpy as np
import pytest
import torch

from cnnkit.config import DataConfig
from cnnkit.data import load_dataset, load_npy
from cnnkit.errors import DataError


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
    with pytest.raises(DataError, match=r"c.npz is not a valid .npz array file \(it holds Python objects") as err:
        load_dataset("npz", p)
    assert "pickle" not in str(err.value)
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="d.npz"):
        load_dataset("npz", tmp_path / "d.npz")
    p = _save(tmp_path / "f.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.array([0, 2**40]))
    with pytest.raises(DataError, match="label 1099511627776 implies over 1000000 classes"):
        load_dataset("npz", p)
    p = _save(tmp_path / "e.npz", x_train=np.full((2, 4, 4), 2.0), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        load_dataset("npz", p)


def _corrupt_npy(path, kind):
    np.save(path, np.arange(10.0))
    raw = path.read_bytes()
    if kind == "garbage":
        path.write_bytes(b"hello, not an array")  # np.load alone would try this as a pickle
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated-header":
        path.write_bytes(raw[:30])
    elif kind == "truncated-data":
        path.write_bytes(raw[:-20])
    elif kind == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "npz":
        np.savez(path.with_suffix(".npz"), x=np.arange(3))
        path.write_bytes(path.with_suffix(".npz").read_bytes())


def test_load_npy_reads_an_array(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    out = load_npy(tmp_path / "a.npy")
    assert out.dtype == np.int16 and out.tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated-header", "truncated-data", "object", "npz"])
def test_load_npy_corrupt_is_one_line_without_pickle_advice(tmp_path, kind):
    p = tmp_path / "a.npy"
    _corrupt_npy(p, kind)
    with pytest.raises(DataError, match=r"a.npy is not a valid .npy array file \(.+\); re-save it with numpy.save") as err:
        load_npy(p)
    msg = str(err.value)
    assert "\n" not in msg and "pickle" not in msg.lower()


def test_load_npy_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.npy does not exist"):
        load_npy(tmp_path / "nope.npy")


@pytest.mark.parametrize("kind", ["garbage", "truncated", "bad-deflate", "not-npy-member", "npy"])
def test_npz_corrupt_is_one_line_without_pickle_advice(tmp_path, kind):
    p = tmp_path / "d.npz"
    np.savez_compressed(p, x_train=np.arange(4000, dtype=np.uint8).reshape(-1, 4, 4) % 7, y_train=np.zeros(250, int))
    raw = bytearray(p.read_bytes())
    if kind == "garbage":
        p.write_bytes(b"hello, not a zip")
    elif kind == "truncated":
        p.write_bytes(bytes(raw[: len(raw) // 2]))
    elif kind == "bad-deflate":
        raw[60:90] = b"\0" * 30
        p.write_bytes(bytes(raw))
    elif kind == "not-npy-member":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("x_train", b"raw bytes")
    else:
        np.save(tmp_path / "a.npy", np.arange(3))
        p.write_bytes((tmp_path / "a.npy").read_bytes())
    with pytest.raises(DataError, match=r"d.npz is not a valid .npz array file \(.+\); re-save it with numpy.savez") as err:
        load_dataset("npz", p)
    assert "\n" not in str(err.value) and "pickle" not in str(err.value).lower()

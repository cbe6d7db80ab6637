import csv

import pytest
import torch

from cnnkit.config import load_config
from cnnkit.data import build_data
from cnnkit.data.tokenize import Vocab
from cnnkit.errors import CnnkitError, DataError


def _folder(root, n=6):
    for c, word in (("neg", "bad"), ("pos", "good")):
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{i}.txt").write_text(f"a {word} film only{c}{i}")  # one word unique to each item
    return root


def _bundle(sets, shape=(8,)):
    cfg = load_config(None, sets)
    return build_data(cfg.data, input_shape=shape, device="cpu", seed=0)


def test_text_folder_bundle_and_vocabulary_from_training_items_only(tmp_path):
    root = _folder(tmp_path / "tf")
    b = _bundle(["data.name=text-folder", f"data.root={root}", "data.val_fraction=0.25", "data.test_fraction=0.25"])
    assert b.kind == "text" and b.class_names == ["neg", "pos"] and b.input_shape == (8,)
    x, y = next(iter(b.train))
    assert x.dtype == torch.long and x.shape[1] == 8 and y.dtype == torch.long
    vocab = Vocab.from_json(b.meta["vocab"])
    assert b.model_kwargs["vocab_size"] == len(vocab) and b.model_kwargs["seq_len"] == 8
    # Only the training items' words are in the vocabulary: each item's own word, for the 7 items of 12
    # left after the test (3) and validation (2 of 9) splits.
    own = [t for t in vocab.itos if t.startswith("only")]
    assert len(b.train.labels) == len(own) == 7 and len(b.val.labels) == 2 and len(b.test.labels) == 3
    assert {"good", "bad", "film"} <= set(vocab.itos)

def test_text_csv_multilabel_and_max_length_option(tmp_path):
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "text"])
        for i in range(12):
            w.writerow(["x;y" if i % 3 == 0 else ("x" if i % 3 == 1 else "y"), f"item, with a comma {i}"])
    b = _bundle(["data.name=text-csv", f"data.root={path}", "data.max_length=5"])
    assert b.meta["targets"] == "labels" and b.class_names == ["x", "y"] and b.input_shape == (5,)
    assert b.train.labels.shape[1] == 2 and b.train.labels.dtype == torch.float32


def test_text_csv_folder_with_test_file_and_char_tokenizer(tmp_path):
    for name, n in (("train.csv", 8), ("test.csv", 4)):
        rows = [["text", "label"]] + [[f"t{i}", str(i % 2 + 0.5)] for i in range(n)]
        with open(tmp_path / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    b = _bundle(["data.name=text-csv", f"data.root={tmp_path}", "data.tokenizer=char"], shape=(130,))
    assert b.meta["targets"] == "values" and len(b.test.labels) == 4 and b.input_shape == (130,)
    assert Vocab.from_json(b.meta["vocab"]).level == "char"


def test_non_utf8_file_is_named(tmp_path):
    root = _folder(tmp_path / "tf")
    (root / "pos" / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match=r"bad\.txt is not UTF-8"):
        _bundle(["data.name=text-folder", f"data.root={root}"])


def test_empty_class_and_missing_column_and_mismatched_test_labels(tmp_path):
    root = _folder(tmp_path / "tf")
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="empty holds no .txt"):
        _bundle(["data.name=text-folder", f"data.root={root}"])
    (tmp_path / "c.csv").write_text("body,label\nx,a\n")
    with pytest.raises(DataError, match="no column 'text'"):
        _bundle(["data.name=text-csv", f"data.root={tmp_path / 'c.csv'}"])
    d = tmp_path / "d"
    d.mkdir()
    (d / "train.csv").write_text("text,label\n" + "".join(f"x{i},a\n" for i in range(4)) + "".join(f"y{i},b\n" for i in range(4)))
    (d / "test.csv").write_text("text,label\nz,c\n")
    with pytest.raises(DataError, match="'c' is not a label of the training split"):
        _bundle(["data.name=text-csv", f"data.root={d}"])


def test_unknown_option_is_a_config_error(tmp_path):
    with pytest.raises(CnnkitError, match="tokeniser"):
        load_config(None, ["data.name=text-folder", f"data.root={tmp_path}", "data.tokeniser=char"])

"""Text datasets: ``text-csv`` and ``text-folder``, tokenized into fixed-length id sequences.

- ``text-csv``: ``data.root`` is a CSV file, or a folder holding ``train.csv`` (and optionally
  ``test.csv``), with a header row naming a text column and a label column (options ``text_column``,
  ``label_column``; default ``text`` and ``label``). The label cell holds one class, several labels
  (``sports;politics``, for ``task: multilabel``) or numbers (``task: regression``; see
  :mod:`cnnkit.data.targets` and the option ``targets``).
- ``text-folder``: one sub-folder of ``.txt`` files per class, ``root/<class>/*.txt`` or
  ``root/train/<class>`` + ``root/test/<class>`` (the layout of the IMDB and 20-newsgroups archives);
  each file is one item.

Files must be UTF-8; a file that is not is a one-line error naming it (and how many others fail too).
Without a test split one is carved with the fixed seed every source uses. The vocabulary
(:mod:`cnnkit.data.tokenize`: ``tokenizer: word`` or ``char``, ``min_count``, ``max_vocab``,
``max_length``) is built from the training items only (not validation, not test) and saved in the run's
``model.json`` (``data_meta.vocab``), so ``predict`` encodes raw strings exactly as training did.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, DatasetSpec, check_root
from ..loader import TensorLoader
from ..splits import subset_indices
from ..targets import TargetKind, Targets, carve, check_labels_present, parse_targets, validation_split
from ..tokenize import Vocab, build_vocab, encode

__all__ = ["TextOptions", "TextCsvOptions", "read_text_file", "read_text_csv", "scan_text_folder", "build_text_bundle", "vocab_of"]

_MAX_FILE_BYTES = 64 << 20
_MAX_CSV_BYTES = 1 << 30


class TextOptions(BaseModel):
    """Options of the text datasets (``data.<option>``)."""

    model_config = ConfigDict(extra="forbid")
    tokenizer: Literal["word", "char"] = "word"
    min_count: int = Field(1, ge=1, description="drop words seen fewer times in the training split")
    max_vocab: int | None = Field(None, ge=1, description="keep the most frequent words only")
    max_length: int | None = Field(None, ge=1, description="tokens per item (default: the model's input length)")
    lowercase: bool = True
    targets: TargetKind = "auto"


class TextCsvOptions(TextOptions):
    text_column: str = "text"
    label_column: str = "label"


def read_text_file(path: Path) -> str:
    """One UTF-8 text file (a leading byte-order mark is dropped).

    Raises:
        DataError: unreadable, larger than 64 MB, or not UTF-8 (naming the file and the byte).
    """
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise DataError(f"text file {path} is larger than {_MAX_FILE_BYTES >> 20} MB")
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read text file {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"text file {path} is not UTF-8 (invalid byte at offset {e.start}); re-save it as UTF-8") from None


def read_text_csv(path: Path, opts: TextCsvOptions) -> tuple[list[str], list[str]]:
    """``(texts, label cells)`` of a CSV file with a header row.

    Raises:
        DataError: missing, not UTF-8 (naming the line), no such column, or a row of another width.
    """
    if not path.is_file():
        raise DataError(f"text-csv: {path} not found; data.root must be a CSV file or a folder holding train.csv")
    if path.stat().st_size > _MAX_CSV_BYTES:
        raise DataError(f"text-csv: {path} is larger than {_MAX_CSV_BYTES >> 30} GB")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"text-csv: {path} is not UTF-8 (line {line}, byte {e.start}); re-save it as UTF-8") from None
    csv.field_size_limit(min(sys.maxsize, _MAX_CSV_BYTES))
    # newline="": quoted fields may hold new lines.
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"text-csv: {path} is empty; expected a header row ({opts.text_column},{opts.label_column})")
    header = [h.strip() for h in rows[0]]
    for col in (opts.text_column, opts.label_column):
        if col not in header:
            raise DataError(
                f"text-csv: {path} has no column {col!r} (found: {', '.join(header)[:80]}); "
                "set data.text_column / data.label_column"
            )
    ti, li = header.index(opts.text_column), header.index(opts.label_column)
    texts, cells = [], []
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(f"text-csv: {path}, row {n}: {len(r)} columns where the header has {len(header)}")
        texts.append(r[ti])
        cells.append(r[li])
    if not texts:
        raise DataError(f"text-csv: {path} has a header but no rows")
    return texts, cells


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _read_class_folders(folder: Path, names: list[str] | None) -> tuple[list[str], list[str]]:
    dirs = _class_dirs(folder)
    if not dirs:
        raise DataError(f"text-folder: {folder} has no class sub-folders (expected {folder}/<class>/*.txt)")
    texts, cells, bad = [], [], []
    for d in dirs:
        if names is not None and d.name not in names:
            raise DataError(f"text-folder: class folder {d} is not a training class ({', '.join(names)[:80]})")
        files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() == ".txt")
        if not files:
            raise DataError(f"text-folder: class folder {d} holds no .txt files; remove it or add files")
        for f in files:
            try:
                texts.append(read_text_file(f))
            except DataError as e:
                bad.append(str(e))
                continue
            cells.append(d.name)
    if bad:
        more = f" (and {len(bad) - 1} more file(s) like it)" if len(bad) > 1 else ""
        raise DataError(bad[0] + more)
    return texts, cells


def scan_text_folder(root: Path) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]] | None]:
    """``((texts, class cells) of train, those of test or None)`` of a text folder."""
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and _class_dirs(train_dir):
        train = _read_class_folders(train_dir, None)
        names = sorted(set(train[1]))
        test = _read_class_folders(test_dir, names) if test_dir.is_dir() else None
        return train, test
    return _read_class_folders(root, None), None


def _limit(n: int, limit: int | None, seed: int) -> np.ndarray:
    return np.arange(n) if limit is None else subset_indices(np.zeros(n, dtype=np.int64), limit, seed, stratified=False)


def _pick(texts: list[str], idx: np.ndarray) -> list[str]:
    return [texts[int(i)] for i in idx]


def build_text_bundle(
    cfg: DataConfig,
    opts: TextOptions,
    *,
    train: tuple[list[str], Targets],
    test: tuple[list[str], Targets],
    input_shape: tuple[int, ...],
    dataset: str,
    device: torch.device,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    """The :class:`~cnnkit.data.DataBundle` of tokenized texts with parsed targets (ids ``(N, L)`` int64)."""
    from ..build import DataBundle

    (tr_texts, tr_t), (te_texts, te_t) = train, test
    keep = _limit(len(tr_texts), cfg.limit_train, cfg.split_seed)
    tr_texts, tr_t = _pick(tr_texts, keep), tr_t.subset(keep)
    keep = _limit(len(te_texts), cfg.limit_test, cfg.split_seed)
    te_texts, te_t = _pick(te_texts, keep), te_t.subset(keep)
    train_idx, val_idx = validation_split(tr_t, cfg)
    check_labels_present(tr_t.subset(train_idx), dataset)
    length = opts.max_length or (int(input_shape[0]) if len(input_shape) == 1 else 56)
    # Only the items the model trains on shape the vocabulary: validation and test words stay unknown.
    vocab = build_vocab(
        _pick(tr_texts, train_idx), level=opts.tokenizer, min_count=opts.min_count, max_size=opts.max_vocab,
        lowercase=opts.lowercase, max_length=length,
    )
    ids = encode(tr_texts, vocab)
    common = dict(seed=seed, device=device, keep_on_device=cfg.device_data)
    idx = torch.as_tensor(train_idx)
    train_loader = TensorLoader(ids[idx], tr_t.y[idx], batch_size=cfg.batch_size, shuffle=True, rank=rank, world_size=world_size, **common)  # type: ignore[arg-type]
    val = None
    if val_idx is not None:
        vi = torch.as_tensor(val_idx)
        val = TensorLoader(ids[vi], tr_t.y[vi], batch_size=cfg.eval_batch_size, **common)  # type: ignore[arg-type]
    test_loader = TensorLoader(encode(te_texts, vocab), te_t.y, batch_size=cfg.eval_batch_size, **common)  # type: ignore[arg-type]
    k = len(tr_t.names) if tr_t.kind != "values" else int(np.prod(tr_t.y.shape[1:]))
    return DataBundle(
        train=train_loader, val=val, test=test_loader, num_classes=k, class_names=list(tr_t.names),
        input_shape=(length,), preprocessing={"input_shape": [length], "kind": "text"},
        train_indices=train_idx, val_indices=val_idx, dataset=dataset, loader_kind="memory", kind="text",
        model_kwargs={"num_classes": k, "vocab_size": len(vocab), "seq_len": length, "vocab": list(vocab.itos)},
        meta={"vocab": vocab.to_json(), "targets": tr_t.kind, "target_names": list(tr_t.names)},
    )


def _split_targets(texts: list[str], t: Targets, split: str, fraction: float) -> tuple[list[str], Targets]:
    idx = carve(t, split, fraction)
    return _pick(texts, idx), t.subset(idx)


def _build_text_csv(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device,
                    seed: int, rank: int = 0, world_size: int = 1) -> Any:
    root = check_root(cfg.root)
    if root is None:
        raise DataError("text-csv: data.root must point at a CSV file or a folder holding train.csv")
    opts = TextCsvOptions.model_validate(cfg.options())
    train_path, test_path = (root, None) if root.is_file() else (root / "train.csv", root / "test.csv")
    texts, cells = read_text_csv(train_path, opts)
    t = parse_targets(cells, kind=opts.targets, source=str(train_path))
    if test_path is not None and test_path.is_file():
        te_texts, te_cells = read_text_csv(test_path, opts)
        te_t = parse_targets(te_cells, kind=t.kind, source=str(test_path), names=None if t.kind == "values" else t.names)  # type: ignore[arg-type]
        train, test = (texts, t), (te_texts, te_t)
    else:
        train, test = _split_targets(texts, t, "train", cfg.test_fraction), _split_targets(texts, t, "test", cfg.test_fraction)
    return build_text_bundle(cfg, opts, train=train, test=test, input_shape=input_shape, dataset="text-csv",
                             device=device, seed=seed, rank=rank, world_size=world_size)


def _build_text_folder(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device,
                       seed: int, rank: int = 0, world_size: int = 1) -> Any:
    root = check_root(cfg.root)
    if root is None or not root.is_dir():
        raise DataError("text-folder: data.root must be a folder of class sub-folders holding .txt files")
    opts = TextOptions.model_validate(cfg.options())
    (texts, cells), test = scan_text_folder(root)
    t = parse_targets(cells, kind="classes", source=str(root))
    if test is not None:
        te_t = parse_targets(test[1], kind="classes", source=str(root / "test"), names=t.names)
        train, test_part = (texts, t), (test[0], te_t)
    else:
        train, test_part = _split_targets(texts, t, "train", cfg.test_fraction), _split_targets(texts, t, "test", cfg.test_fraction)
    return build_text_bundle(cfg, opts, train=train, test=test_part, input_shape=input_shape, dataset="text-folder",
                             device=device, seed=seed, rank=rank, world_size=world_size)


def vocab_of(meta: dict[str, Any], source: str) -> Vocab:
    """The vocabulary a text run saved in ``model.json`` (``data_meta.vocab``)."""
    return Vocab.from_json((meta or {}).get("vocab"), source=f"{source} (data_meta.vocab)")


DATASETS.add(
    "text-csv",
    DatasetSpec(
        "text-csv", "your texts in a CSV (columns text,label; several labels or numbers per row allowed)",
        needs_root=True, has_test_split=False, kind="text", build=_build_text_csv, options=TextCsvOptions,
    ),
)
DATASETS.add(
    "text-folder",
    DatasetSpec(
        "text-folder", "your .txt files, one sub-folder per class (the IMDB / 20-newsgroups layout)",
        needs_root=True, has_test_split=False, kind="text", build=_build_text_folder, options=TextOptions,
    ),
)

"""Predict classes for image files and ``.npy`` arrays with a run folder's model.

Inputs are PNG/JPEG files (decoded by :func:`cnnkit.data.folder.read_image`, the training data's decoder),
BMP/WebP files (Pillow restricted to those two formats), ``.npy`` arrays (:func:`cnnkit.data.load_npy`,
never unpickled) or folders of them, read recursively (hidden files and folders skipped). Every decoder
treats Pillow's decompression-bomb limit as an error. Each input is converted with the preprocessing
recorded in ``model.json`` (:func:`cnnkit.data.apply_preprocessing`), the same code path as the evaluation
loaders. A video model's run (``kind: clip``) reads clips instead (:mod:`cnnkit.evaluate.clip_inputs`).

``.npy`` layouts: ``(H, W)``, ``(C, H, W)``, ``(H, W, C)`` with ``C`` in 1/3/4 when the first axis is not
a channel count, or a batch ``(N, C, H, W)`` or ``(N, H, W)`` (one prediction per item, named
``file.npy[i]``; for a one-channel model a ``(3, H, W)`` array is three gray images). ``uint8`` arrays are
pixel values 0..255; float arrays must hold values in [0, 1].

The forward pass goes through an inference backend (:mod:`cnnkit.evaluate.backends`): ``auto`` probes
the routes on the first batch and keeps the fastest one whose top-1 matches eager fp32 there.

An input that cannot be read (missing, unsupported, corrupt, wrong shape) does not stop the others: it
gets a row with an ``"error"`` and is skipped; only when nothing at all can be read does :func:`predict`
raise.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data import apply_preprocessing, load_npy, read_image
from ..errors import CnnkitError, DataError
from ..runs import load_model
from ..runtime import resolve_device
from .backends import Backend, check_backend, run_backend
from .clip_inputs import is_clip_run, iter_clip_inputs
from .generate import refuse_unsupervised_run
from .series_predict import is_series_run, predict_series

__all__ = [
    "IMAGE_SUFFIXES",
    "OUTPUT_FORMATS",
    "expand_inputs",
    "iter_inputs",
    "read_input",
    "read_bytes",
    "array_items",
    "model_input",
    "load_inputs",
    "predict",
    "write_predictions",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_SUFFIXES = IMAGE_SUFFIXES + (".npy",)
_KINDS = "PNG, JPEG, BMP, WebP or .npy"
# read_image (the training data's decoder) takes PNG and JPEG; these two are decoded here.
_OTHER_FORMATS = {".bmp": "BMP", ".webp": "WEBP"}
_FORMAT_NAMES = {"BMP": "BMP", "WEBP": "WebP", "PNG": "PNG", "JPEG": "JPEG"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
OUTPUT_FORMATS = (".csv", ".json")
_COLUMNS = ("input", "label", "class", "probability", "top_k", "error")


def _folder_files(folder: Path, problems: list[tuple[Path, str]]) -> list[Path]:
    """The supported files under ``folder``, recursively, sorted; unreadable sub-folders go to ``problems``."""

    def on_error(exc: OSError) -> None:
        problems.append((Path(exc.filename or folder), f"cannot read folder {exc.filename or folder}: {exc.strerror or exc}"))

    found: list[Path] = []
    # os.walk does not follow symbolic links to folders, so a link cycle cannot loop.
    for root, dirs, files in os.walk(folder, onerror=on_error):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in _SUFFIXES]
    return sorted(found)


def _walk(inputs: list[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """``(file, None)`` for each file to read, or ``(input, why it gives nothing)``."""
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            problems: list[tuple[Path, str]] = []
            found = _folder_files(p, problems)
            yield from problems
            if not found and not problems:
                yield p, f"folder {p} holds no {_KINDS} files"
            for f in found:
                yield f, None
        elif p.is_file():
            if p.suffix.lower() not in _SUFFIXES:
                yield p, f"unsupported input {p}: expected a {_KINDS} file"
            else:
                yield p, None
        else:
            yield p, f"input not found: {p}"


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files as given, folders replaced by their supported files (recursively, sorted).

    Raises:
        CnnkitError: no inputs, or the first input that is missing, unsupported or an empty folder.
    """
    if not inputs:
        raise CnnkitError(f"no inputs given: pass {_KINDS} files or folders of them")
    files: list[Path] = []
    for path, error in _walk(inputs):
        if error is not None:
            raise DataError(error)
        files.append(path)
    return files


def _npy_items(path: Path, channels: int | None = None) -> list[tuple[str, torch.Tensor]]:
    return array_items(load_npy(path), str(path), channels=channels)


def array_items(arr: np.ndarray, name: str, *, channels: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """``[(name, raw (C, H, W) tensor)]`` for an array in one of the ``.npy`` layouts above (a batch
    ``(N, C, H, W)`` or ``(N, H, W)`` gives ``name[i]`` per item); ``cnnkit serve`` passes the arrays it
    receives here. ``channels``, the model's input channels, turns on stacks ``(N, H, W)`` and settles the
    one ambiguous layout: for a one-channel model a ``(3, H, W)`` array is three gray images, otherwise one
    RGB image. Without it (a caller that takes one image per request) a stack is refused.

    Raises:
        DataError: a dtype other than numbers, pixel values out of range, or a shape not listed above.
    """
    if arr.dtype.kind not in "uif":
        raise DataError(f"unreadable array {name}: expected numbers, found dtype {arr.dtype}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind in "ui":
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
                raise DataError(f"array {name}: integer pixels must lie in 0..255")
            arr = arr.astype(np.uint8)
        else:
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
                raise DataError(f"array {name}: float pixels must be finite and lie in [0, 1]")
    if arr.ndim == 2:
        return [(name, torch.from_numpy(arr[None].copy()))]
    if arr.ndim == 3:
        first, last = arr.shape[0], arr.shape[-1]
        if first not in (1, 3) and last in (1, 3, 4):  # (H, W, C)
            arr = np.transpose(arr[..., :3] if last == 4 else arr, (2, 0, 1))
        elif first == 1 or (first == 3 and channels != 1):  # (C, H, W)
            pass
        elif channels is None:  # a caller that takes one image (cnnkit serve): no stacks
            raise DataError(f"array {name} has shape {arr.shape}: expected (H, W), (C, H, W) or (H, W, C) with C 1 or 3")
        else:
            # (N, H, W): a stack of gray images. For a one-channel model a first axis of 3 is read so too:
            # an RGB (3, H, W) image is not what such a model was trained on; a stack of three is.
            if len(arr) == 0:
                raise DataError(f"array {name} has shape {arr.shape}: a stack (N, H, W) needs N >= 1")
            return [(f"{name}[{i}]", torch.from_numpy(np.ascontiguousarray(arr[i : i + 1]))) for i in range(len(arr))]
        return [(name, torch.from_numpy(np.ascontiguousarray(arr)))]
    if arr.ndim == 4:
        if arr.shape[1] not in (1, 3) or len(arr) == 0:
            raise DataError(f"array {name} has shape {arr.shape}: a batch must be (N, C, H, W) with N >= 1 and C 1 or 3")
        return [(f"{name}[{i}]", torch.from_numpy(np.ascontiguousarray(arr[i]))) for i in range(len(arr))]
    raise DataError(f"array {name} has shape {arr.shape}: expected 2 to 4 dimensions")


def _read_other_image(path: Path) -> torch.Tensor:
    """A BMP or WebP file as uint8 ``(C, H, W)``, C = 1 for gray files, else 3 (alpha dropped), as
    :func:`~cnnkit.data.folder.read_image` decodes PNG and JPEG."""
    return _decode_image(path, str(path), (_OTHER_FORMATS[path.suffix.lower()],))


def _decode_image(source: Path | io.BytesIO, name: str, formats: tuple[str, ...], max_pixels: int | None = None) -> torch.Tensor:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse both, as read_image does.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as im:
                if max_pixels is not None and im.width * im.height > max_pixels:
                    # Checked on the header, before any pixel is decoded.
                    raise DataError(f"image {name} is {im.width}x{im.height}: more than the limit of {max_pixels} pixels")
                gray = im.mode in _GRAY_MODES
                im.load()
                arr = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"unreadable image {name}: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:  # UnidentifiedImageError is an OSError
        if isinstance(e, DataError):
            raise
        kinds = " or ".join(_FORMAT_NAMES.get(f, f) for f in formats)
        reason = f"not a valid {kinds} file" if "cannot identify" in str(e) else str(e)
        raise DataError(f"unreadable image {name}: {reason}") from None
    x = torch.from_numpy(arr.copy())
    return x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1).contiguous()


def read_bytes(data: bytes, name: str = "upload", *, max_pixels: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """:func:`read_input` for a file's content in memory (what ``cnnkit serve`` receives): a PNG, JPEG,
    BMP or WebP image, or a ``.npy`` array (never unpickled), told apart by the content, not by a name.

    Images are decoded as :func:`read_input` decodes files (the same Pillow calls and mode conversion), so
    the same bytes give the same tensor. ``max_pixels`` refuses larger images from their header, before
    any pixel is decoded (Pillow's decompression-bomb limit applies as well).

    Raises:
        DataError: content that is none of these, or is corrupt, too large or of an unusable shape.
    """
    if data[:6] == b"\x93NUMPY":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            reason = "it holds Python objects" if "allow_pickle" in str(exc) else "corrupt or truncated"
            raise DataError(f"unreadable array {name}: {reason}") from None
        return array_items(arr, name)
    return [(name, _decode_image(io.BytesIO(data), name, ("PNG", "JPEG", "BMP", "WEBP"), max_pixels))]


def read_input(path: str | Path, *, channels: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """``[(name, raw (C, H, W) uint8 or float 0..1 tensor)]`` for one file (several for a ``.npy`` batch;
    ``channels`` as in :func:`array_items`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _npy_items(path, channels)
    if suffix in _OTHER_FORMATS:
        return [(str(path), _read_other_image(path))]
    return [(str(path), read_image(path))]


def _model_input(name: str, raw: torch.Tensor, preprocessing: dict[str, Any]) -> torch.Tensor:
    want = tuple(preprocessing.get("input_shape") or ())
    try:
        x = apply_preprocessing(raw[None] if raw.ndim == 3 else raw, preprocessing)
    except CnnkitError as exc:
        raise DataError(f"input {name}: {exc}") from None
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"input {name} (shape {tuple(raw.shape)}) cannot be converted to the model input {want}: {exc}") from None
    if want and tuple(x.shape[1:]) != want:
        raise DataError(f"input {name} became shape {tuple(x.shape[1:])}, but the model expects {want}")
    return x


def _channels(preprocessing: dict[str, Any]) -> int | None:
    """The model's input channels for an image model (``(C, H, W)`` input), else None."""
    shape = list(preprocessing.get("input_shape") or ())
    return int(shape[0]) if len(shape) == 3 else None


def iter_inputs(
    inputs: list[str | Path], preprocessing: dict[str, Any]
) -> Iterator[tuple[str, torch.Tensor | None, torch.Tensor | None, str | None]]:
    """``(name, raw, model input, None)`` for every readable image or array under ``inputs`` (folders walked),
    ``(name, raw or None, None, error)`` for each one that cannot be read or brought to the model's input."""
    channels = _channels(preprocessing)
    for path, error in _walk(inputs):
        if error is not None:
            yield str(path), None, None, error
            continue
        try:
            items = read_input(path, channels=channels)
        except CnnkitError as exc:
            yield str(path), None, None, str(exc)
            continue
        for name, raw in items:
            try:
                yield name, raw, _model_input(name, raw, preprocessing), None
            except CnnkitError as exc:
                yield name, raw, None, str(exc)


def model_input(raw: torch.Tensor, preprocessing: dict[str, Any], name: str = "input") -> torch.Tensor:
    """One raw ``(C, H, W)`` input (from :func:`read_input` / :func:`read_bytes`) as a ``(1, *input_shape)``
    model-input batch, converted exactly as :func:`predict` converts it; a stack ``(N, C, H, W)`` of inputs
    of one shape and dtype becomes ``(N, *input_shape)`` in one pass (``cnnkit serve``'s batches).

    Raises:
        DataError: the input cannot be converted to the model's input shape.
    """
    return _model_input(name, raw, preprocessing)


def load_inputs(inputs: list[str | Path], preprocessing: dict[str, Any]) -> tuple[list[str], torch.Tensor]:
    """Read and convert inputs to one model-input batch ``(N, *input_shape)`` with ``preprocessing``.

    Raises:
        CnnkitError: the first input that cannot be read or converted.
    """
    names: list[str] = []
    xs: list[torch.Tensor] = []
    for path in expand_inputs(inputs):
        for name, raw in read_input(path, channels=_channels(preprocessing)):
            names.append(name)
            xs.append(_model_input(name, raw, preprocessing))
    return names, torch.cat(xs)


def _output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise CnnkitError(
            f"cannot write predictions to {path}: the format comes from the extension; use a name ending in "
            f"{' or '.join(OUTPUT_FORMATS)}"
        )
    return suffix


def _table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        top = r.get("top") or []
        rows.append({
            "input": r["input"],
            "label": r["label"] if "label" in r else (top[0]["name"] if top else None),
            "class": top[0]["class"] if top else None,
            "probability": top[0]["probability"] if top else None,
            "top_k": top,
            "error": r.get("error"),
        })
    return rows


def write_predictions(results: list[dict[str, Any]], path: str | Path) -> Path:
    """Write :func:`predict`'s results as a table, one row per input, in the format of ``path``'s extension.

    Columns: ``input``, ``label`` (the top-1 class name), ``class`` (its index), ``probability`` (its
    probability), ``top_k`` and ``error`` (why the input was skipped; empty otherwise). In ``.csv`` the
    ``top_k`` cell reads ``name (p); name (p); ...``; in ``.json`` (a list of row objects) it is the list of
    ``{"class", "name", "probability"}``. The file is replaced atomically.

    Raises:
        CnnkitError: an extension other than ``.csv`` or ``.json``, or a file that cannot be written.
    """
    path = Path(path)
    fmt = _output_format(path)
    if any("top" not in r and set(r) - {"input", "error"} for r in results):
        return _write_task_rows(results, path, fmt)
    rows = _table_rows(results)

    def write(f: Any) -> None:
        if fmt == ".json":
            json.dump(rows, f, indent=2)
            f.write("\n")
            return
        w = csv.DictWriter(f, fieldnames=_COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({
                **{k: "" if v is None else v for k, v in row.items()},
                "top_k": "; ".join(f"{t['name']} ({t['probability']:.4f})" for t in row["top_k"]),
            })

    return _replace_file(path, write)


def _replace_file(path: Path, write: Callable[[Any], None]) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, then replace it atomically;
    on failure nothing is left behind and the error is one line."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CnnkitError(f"cannot write predictions to {path}: {e.strerror or e}") from None
    return path


def _write_task_rows(results: list[dict[str, Any]], path: Path, fmt: str) -> Path:
    """Rows of a task other than classification (forecasts, anomaly scores, regression values, ...): the
    columns are the rows' own keys in first-seen order; in ``.csv`` a list cell reads ``v1; v2; ...`` and a
    mapping is JSON."""
    keys = ["input"] + list(dict.fromkeys(k for r in results for k in r if k not in ("input", "error"))) + ["error"]

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (list, tuple)):
            return "; ".join(json.dumps(e) if isinstance(e, (dict, list)) else str(e) for e in v)
        return json.dumps(v) if isinstance(v, dict) else v

    def write(f: Any) -> None:
        if fmt == ".json":
            json.dump([{k: r.get(k) for k in keys} for r in results], f, indent=2)
            f.write("\n")
            return
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in results:
            w.writerow({k: cell(r.get(k)) for k in keys})

    return _replace_file(path, write)


@torch.no_grad()
def predict(
    run_dir: str | Path,
    inputs: list[str | Path],
    *,
    top_k: int = 5,
    batch_size: int = 64,
    device: str | None = None,
    output: str | Path | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    texts: list[str] | None = None,
    backend: str = "auto",
    on_backend: Callable[[Backend], None] | None = None,
) -> list[dict[str, Any]]:
    """Top-``k`` classes with probabilities for each input.

    Runs of other tasks and kinds present their outputs through the task (:func:`cnnkit.evaluate.tasks.task_rows`:
    a multi-label run lists the labels over their thresholds, a regression run its values); a text run
    reads ``texts`` (raw strings) and text files with one input per line (``inputs``), encoded with the
    run's saved vocabulary.

    An input that cannot be read or converted is skipped, not fatal: it gets ``{"input", "error"}`` in the
    results, and ``on_skip(input, error)`` is called as it happens (the CLI prints it to stderr).

    Args:
        output: also write the results as a table (:func:`write_predictions`); the extension
            (``.csv`` or ``.json``) is checked before any input is read.
        batch_size: inputs are decoded and run this many at a time (a folder never sits in memory whole).
        backend: the inference route (:data:`cnnkit.evaluate.backends.BACKENDS`) for image and clip
            runs. ``auto`` chooses among the fp32 routes on the first batch (``torch-bf16`` only by
            name). Other kinds (text, series, segmentation) run eager fp32.
        on_backend: called once with the backend chosen (its ``probe`` says what ``auto`` measured).

    Returns:
        ``[{"input": name, "top": [{"class": index, "name": class_name, "probability": p}, ...]}, ...]``
        (``{"input": name, "error": message}`` for a skipped input), in the order of ``inputs`` with
        folders expanded in sorted order.

    Raises:
        CnnkitError: bad arguments, or no input could be read (the message names the first failure).
    """

    check_backend(backend)
    if top_k < 1:
        raise CnnkitError(f"Expected top_k >= 1. Received: top_k={top_k}")
    if batch_size < 1:
        raise CnnkitError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
    if output is not None:
        _output_format(output)
    if not inputs and not texts:
        raise CnnkitError(f"no inputs given: pass {_KINDS} files or folders of them")
    loaded = load_model(run_dir, device=resolve_device(device))
    refuse_unsupervised_run(loaded.info, run_dir, "predict")
    if (loaded.info.get("task") or {}).get("name") == "segmentation":
        from .segmentation import predict_masks, write_mask_table

        # Masks are images: they go to a folder (beside --output, or RUN/predictions), the table to --output.
        folder = Path(output).with_suffix("") if output is not None else Path(run_dir) / "predictions"
        masks = predict_masks(loaded, inputs, out=folder, on_skip=on_skip)
        if output is not None:
            write_mask_table(masks, output)
        return masks
    if is_series_run(loaded.info):  # .ts / .npy / .csv series; rows as the task presents them
        rows = predict_series(loaded, inputs, top_k=top_k, batch_size=batch_size, on_skip=on_skip)
        if output is not None:
            write_predictions(rows, output)
        return rows
    from .tasks import run_kind, run_task, task_rows, uses_task_path

    task = run_task(loaded.info) if uses_task_path(loaded.info) else None
    if run_kind(loaded.info) == "text":
        return _predict_text(loaded, task, inputs, texts, top_k=top_k, batch_size=batch_size, output=output, on_skip=on_skip)
    if texts:
        raise CnnkitError(f"--text is for text runs; {run_dir} takes {run_kind(loaded.info)} inputs")
    if not loaded.preprocessing:
        raise CnnkitError(f"{Path(run_dir) / 'model.json'} records no preprocessing; cannot convert inputs")
    # fp32 routes only: predict's probabilities (and cnnkit serve's, tested to 1e-6 against them) stay
    # eager fp32's to rounding; bf16 keeps the top-1 on the probe but not the order of the other classes.
    run = run_backend(loaded, backend=backend, exact=True)
    results: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], torch.Tensor]] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        fresh = run.chosen is None
        out = run(x)
        if fresh and on_backend is not None and run.chosen is not None:
            on_backend(run.chosen)
        return out

    def skip(name: str, error: str) -> None:
        results.append({"input": name, "error": error})
        if on_skip is not None:
            on_skip(name, error)

    def flush() -> None:
        if not pending:
            return
        if task is not None:  # multi-label, regression: the task presents its outputs
            for (row, _), r in zip(pending, task_rows(task, forward(torch.cat([x for _, x in pending])),
                                                      loaded.class_names, top_k=top_k)):
                row.update(r)
            pending.clear()
            return
        probs = torch.softmax(forward(torch.cat([x for _, x in pending])).float(), dim=1).cpu()
        cls_names = loaded.class_names or [str(n) for n in range(probs.shape[1])]
        p, c = probs.topk(min(top_k, probs.shape[1]), dim=1)
        for (row, _), pj, cj in zip(pending, p, c):
            row["top"] = [
                {"class": int(ci), "name": str(cls_names[int(ci)]), "probability": float(pi)} for pi, ci in zip(pj, cj)
            ]
        pending.clear()

    def add(name: str, x: torch.Tensor) -> None:
        row: dict[str, Any] = {"input": name}
        results.append(row)
        pending.append((row, x))
        if len(pending) >= batch_size:
            flush()

    if is_clip_run(loaded.preprocessing):  # a video model: clips (.npy or folders of frames), not images
        for name, x, error in iter_clip_inputs(inputs, loaded.preprocessing):
            if error is not None:
                skip(name, error)
            else:
                add(name, x)  # type: ignore[arg-type]
        inputs = []
    # Streamed in batches: a large folder never sits in memory as one tensor.
    for name, _, x, error in iter_inputs(inputs, loaded.preprocessing):
        if error is not None:
            skip(name, error)
        else:
            add(name, x)  # type: ignore[arg-type]
    flush()
    failed = [r for r in results if "error" in r]
    if len(failed) == len(results):
        if len(failed) == 1:
            raise DataError(failed[0]["error"])
        raise DataError(f"none of the {len(failed)} inputs could be read; the first: {failed[0]['error']}")
    if output is not None:
        write_predictions(results, output)
    return results


def _predict_text(
    loaded: Any, task: Any, inputs: list[str | Path], texts: list[str] | None, *, top_k: int, batch_size: int,
    output: str | Path | None, on_skip: Callable[[str, str], None] | None,
) -> list[dict[str, Any]]:
    """:func:`predict` for text runs: strings and text files (one input per line)."""
    from ..tasks import create_task
    from .tasks import task_rows
    from .text import encode_texts, read_text_inputs, run_vocab

    vocab = run_vocab(loaded)
    task = task or create_task("classification")
    items, problems = read_text_inputs(list(inputs), texts)
    results: list[dict[str, Any]] = []
    for name, error in problems:
        results.append({"input": name, "error": error})
        if on_skip is not None:
            on_skip(name, error)
    if not items:
        first = problems[0][1] if problems else "no text inputs"
        raise DataError(first if len(problems) <= 1 else f"none of the {len(problems)} inputs could be read; the first: {first}")
    model = loaded.model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    ids = encode_texts(items, vocab)
    for i in range(0, len(items), batch_size):
        rows = task_rows(task, model(ids[i : i + batch_size].to(dev)), loaded.class_names, top_k=top_k)
        results += [{"input": name, "text": text, **r} for (name, text), r in zip(items[i : i + batch_size], rows)]
    if output is not None:
        write_predictions(results, output)
    return results

"""Shift invariance: the same CNN with MaxPool2d and with MaxBlurPool2d (Zhang 2019) on Fashion-MNIST.

The article: "layers with a stride greater than one ignore the Nyquist-Shannon sampling theorem and might
lead to aliasing of the input signal ... several other partial solutions have been proposed, such as
anti-aliasing before downsampling operations". Zhang, "Making Convolutional Networks Shift-Invariant
Again" (ICML 2019), replaces ``MaxPool(k=2, s=2)`` by ``MaxPool(k=2, s=1)`` followed by a blurred
subsampling (``cnnkit.layers.MaxBlurPool2d``) and reports higher accuracy *and* consistency.

Each network (two conv/pool stages, then two linear layers: the flatten + linear head keeps the
classifier itself position-sensitive, as in Zhang's VGG experiments) is trained with ``cnnkit.train.fit``
on ``--train-images`` Fashion-MNIST training images for ``--epochs`` epochs, without shift augmentation,
and audited with ``cnnkit.explain.audit`` on the first ``--test-images`` test images:

- accuracy on the unshifted test images;
- consistency: P(top-1 unchanged) between two random circular shifts of up to ``--max-shift`` pixels
  (``--pairs`` pairs per image; Zhang 2019, Sec. 4.1);
- the one-pixel equivariance error of the last pooling layer's output (stride 4; see the audit's docs).

Mean ± std over ``--seeds`` seeds; the ratio column is against MaxPool2d measured in the same run.

    python benchmarks/shift_invariance.py [--seeds 3] [--epochs 2] [--train-images 10000] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cnnkit.config import validate_config
from cnnkit.explain import audit
from cnnkit.train import fit as _fit


def fit(cfg: Any, **kwargs: Any) -> dict[str, Any]:
    """``cnnkit.train.fit`` without its closing "test accuracy / run folder" lines (they would interleave
    with the table)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return _fit(cfg, **kwargs)


def spec(pool: str) -> dict[str, Any]:
    return {
        "input": [1, 28, 28],
        "layers": [
            {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"relu": {}},
            {pool: {"kernel_size": 2}},                                   # (B, 16, 14, 14)
            {"conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}}, {"relu": {}},
            {pool: {"kernel_size": 2}},                                   # (B, 32, 7, 7)
            {"flatten": {}},
            {"linear": {"out_features": 64}}, {"relu": {}},
            {"linear": {"out_features": 10}},
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=10000)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: the trainer's)")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--max-shift", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="cnnkit-shift-") if args.out is None else None
    root = Path(tmp.name) if tmp is not None else args.out
    t0 = time.perf_counter()
    pools = {"MaxPool2d": "max_pool2d", "MaxBlurPool2d": "max_blur_pool2d"}
    res: dict[str, dict[str, list[float]]] = {name: {"acc": [], "cons": [], "eq": [], "sec": []} for name in pools}
    for seed in range(args.seeds):
        for name, layer in pools.items():
            cfg = validate_config({
                "name": f"{layer}-{seed}",
                "seed": seed,
                "model": {"name": None, "spec": spec(layer)},
                "data": {"name": "fashion-mnist", "limit_train": args.train_images, "batch_size": 128},
                "train": {"epochs": args.epochs, "log_every": 10_000, "threads": args.threads,
                          "checkpoint": {"every_epochs": None, "keep_last": 1}},
                "optim": {"name": "adam", "lr": 1e-3},
            })
            t = time.perf_counter()
            s = fit(cfg, out=root / cfg.name, overwrite=True, quiet=True)
            res[name]["sec"].append(time.perf_counter() - t)
            a = audit(s["run_dir"], shifts=args.pairs, max_shift=args.max_shift, limit=args.test_images, seed=seed)
            res[name]["acc"].append(a["accuracy"])
            res[name]["cons"].append(a["consistency"])
            last_pool = [r for r in a["layers"] if "Pool" in r["type"]][-1]
            res[name]["eq"].append(last_pool["error_one_pixel"])

    def ms(v: list[float]) -> str:
        return f"{statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.4f}"

    print(f"Fashion-MNIST, {args.train_images} training images, {args.epochs} epochs, no shift augmentation; "
          f"audit on {args.test_images} test images, circular shifts up to {args.max_shift} px, "
          f"{args.pairs} pairs per image; mean ± std over {args.seeds} seeds")
    head = (f"{'pooling':<14} | {'accuracy':>17} | {'consistency':>17} | {'ratio':>6} | "
            f"{'1-px equivariance err':>21} | {'train s':>7}")
    print(head)
    print("-" * len(head))
    base = statistics.mean(res["MaxPool2d"]["cons"])
    for name in pools:
        r = res[name]
        print(f"{name:<14} | {ms(r['acc']):>17} | {ms(r['cons']):>17} | {statistics.mean(r['cons']) / base:>5.3f}x | "
              f"{ms(r['eq']):>21} | {statistics.mean(r['sec']):>7.1f}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

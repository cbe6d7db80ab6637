"""Self-supervised pre-training: FCMAE on Fashion-MNIST's training images (labels unused), then fine-tuning
with 1%, 10% and 100% of the labels, against the same ConvNeXt V2 trained from scratch on the same labels.

The article: self-supervised learning "using sparse patches with a high-mask ratio and a global response
normalization layer" (ConvNeXt V2's FCMAE, Woo et al. 2023).

Protocol (everything through ``cnnkit.train.fit``, as ``cnnkit train`` runs it, in one process):

1. pre-train ``configs/fcmae-fashion-mnist.yaml`` (``--pretrain-epochs``, on the training images,
   labels unused) and report its test reconstruction loss on the masked patches;
2. for each label fraction (a seeded stratified subset of the training split: ``data.limit_train``, the
   subset picked by ``data.split_seed = seed``, identical for both variants), train
   ``configs/convnextv2-fashion-mnist.yaml``
   - ``scratch``: from a random initialization,
   - ``fcmae``: with ``--init-from`` the pre-training run (every encoder tensor; the head starts fresh),
   for the epochs given per fraction (``--epochs``: small subsets get more epochs);
3. report the test accuracy on the 10,000 test images, mean ± std over ``--seeds`` seeds, and the difference.

    python benchmarks/self_supervised.py [--pretrain-epochs 1] [--fractions 0.01 0.1 1]
                                         [--epochs 20 4 1] [--seeds 1] [--threads 1] [--limit-test N]
                                         [--train-images N]

``--train-images N`` runs the same protocol on a seeded stratified N-image subset of the training split
(pre-training on its images, the fractions of its labels) when the full 60,000 do not fit the time.
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

from cnnkit.config import load_config
from cnnkit.train import fit as _fit

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 60_000


def fit(cfg: Any, **kwargs: Any) -> dict[str, Any]:
    """``cnnkit.train.fit`` without its closing lines (they would interleave with the table)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return _fit(cfg, quiet=True, **kwargs)


def _sets(**kv: Any) -> list[str]:
    return [f"{k}={v}" for k, v in kv.items() if v is not None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pretrain-epochs", type=int, default=1)
    ap.add_argument("--train-images", type=int, default=TRAIN_IMAGES,
                    help="the training set the fractions are of (a seeded stratified subset; default: all 60,000)")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    ap.add_argument("--epochs", type=int, nargs="+", default=[20, 4, 1], help="fine-tuning epochs, one per fraction")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit-test", type=int, default=None, help="test images (default: all 10,000)")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    args = ap.parse_args()
    if len(args.epochs) != len(args.fractions):
        ap.error("give one --epochs value per --fraction")

    tmp = tempfile.TemporaryDirectory(prefix="cnnkit-ssl-") if args.out is None else None
    root = Path(tmp.name) if tmp is not None else args.out
    common = _sets(**{"train.threads": args.threads, "data.limit_test": args.limit_test})
    t0 = time.perf_counter()
    pre_cfg = load_config(ROOT / "configs" / "fcmae-fashion-mnist.yaml", [
        *common, *_sets(**{"train.epochs": args.pretrain_epochs,
               "data.limit_train": args.train_images if args.train_images < TRAIN_IMAGES else None}),
    ])
    pre = fit(pre_cfg, out=root / "fcmae", overwrite=True)
    n_pre = args.train_images
    print(f"FCMAE pre-training: {n_pre} images, {args.pretrain_epochs} epoch(s), test reconstruction loss "
          f"(masked patches, normalised pixels) {pre['test_reconstruction_loss']:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    results: dict[tuple[float, str], list[float]] = {}
    seconds: dict[tuple[float, str], list[float]] = {}
    for fraction, epochs in zip(args.fractions, args.epochs):
        n = round(fraction * args.train_images)
        for seed in range(args.seeds):
            for variant, init in (("scratch", None), ("fcmae", root / "fcmae")):
                sets = _sets(**{"seed": seed, "data.split_seed": seed, "train.epochs": epochs,
                                "data.limit_train": n if n < TRAIN_IMAGES else None})
                cfg = load_config(ROOT / "configs" / "convnextv2-fashion-mnist.yaml", [*common, *sets])
                t = time.perf_counter()
                s = fit(cfg, out=root / f"{variant}-{fraction}-{seed}", overwrite=True, init_from=init)
                results.setdefault((fraction, variant), []).append(float(s["test_accuracy"]))
                seconds.setdefault((fraction, variant), []).append(time.perf_counter() - t)
                print(f"  {variant:<7} {100 * fraction:g}% labels, seed {seed}: test accuracy {s['test_accuracy']:.4f} "
                      f"({seconds[(fraction, variant)][-1]:.0f} s)", flush=True)

    def ms(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{100 * statistics.mean(values):.2f} ± {100 * sd:.2f}"

    test = args.limit_test or 10_000
    print(f"\nFashion-MNIST test accuracy (%, {test} test images), convnextv2_fmnist, mean ± std over {args.seeds} "
          f"seed(s); label fractions of {args.train_images} training images")
    head = f"| {'labels':>14} | {'epochs':>6} | {'scratch':>15} | {'FCMAE + fine-tune':>17} | {'difference':>10} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for fraction, epochs in zip(args.fractions, args.epochs):
        a, b = results[(fraction, "scratch")], results[(fraction, "fcmae")]
        diff = 100 * (statistics.mean(b) - statistics.mean(a))
        label = f"{100 * fraction:g}% ({round(fraction * args.train_images)})"
        print(f"| {label:>14} | {epochs:>6} | {ms(a):>15} | {ms(b):>17} | {diff:>+9.2f} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s (measured on a loaded machine)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

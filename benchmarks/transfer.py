"""Transfer learning: pretrain on Fashion-MNIST, fine-tune on a few labelled digits, against training from
scratch on the same digits.

The article (section "Transfer learning"): "A common technique is to train the network on a larger data
set from a related domain. Once the network parameters have converged an additional training step is
performed using the in-domain data to fine-tune the network weights ... this technique allows
convolutional network architectures to successfully be applied to problems with tiny training sets."

Protocol (all through ``cnnkit.train.fit`` with configs, as ``cnnkit train`` would run it):

1. pretrain a small CNN (two conv/pool stages, 28x28 input) on ``--pretrain-images`` Fashion-MNIST
   training images for ``--pretrain-epochs`` epochs (seed 0);
2. for 10 and 50 labelled digits per class (scikit-learn's 8x8 digits resized to 28x28 by the data
   pipeline; a seeded stratified subset of the training split, ``data.limit_train``), train
   - ``scratch``: the same network from a random initialization,
   - ``fine-tune``: initialized from the pretrained run (``init_from``; every tensor whose name and shape
     match, i.e. all of them: both data sets have 10 classes), all layers trained,
   - ``frozen`` (with ``--frozen``): as fine-tune with ``train.freeze=features`` (only the head is trained);
3. report the test accuracy on the fixed digits test split (449 images), mean ± std over 3 seeds (the
   seed also picks the labelled subset, identical across the three variants), and the ratio to scratch.

    python benchmarks/transfer.py [--seeds 3] [--pretrain-epochs 2] [--pretrain-images 10000] [--steps 100]
                                  [--frozen] [--threads N]
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
from cnnkit.train import fit as _fit


def fit(cfg: Any, **kwargs: Any) -> dict[str, Any]:
    """``cnnkit.train.fit`` without its closing "test accuracy / run folder" lines (they would interleave
    with the table)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return _fit(cfg, **kwargs)

SPEC = {
    "input": [1, 28, 28],
    "layers": [
        {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"max_pool2d": {"kernel_size": 2}},                                   # (B, 16, 14, 14)
        {"conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"max_pool2d": {"kernel_size": 2}},                                   # (B, 32, 7, 7)
        {"flatten": {}},
        {"linear": {"out_features": 64}}, {"relu": {}},
        {"linear": {"out_features": 10}},
    ],
}


def _cfg(name: str, data: dict[str, Any], epochs: int, seed: int, *, lr: float, threads: int | None,
         freeze: str | None = None) -> Any:
    return validate_config({
        "name": name,
        "seed": seed,
        "model": {"name": None, "spec": SPEC},
        "data": {"name": "digits", **data},
        "train": {"epochs": epochs, "freeze": freeze, "log_every": 10_000, "threads": threads,
                  "checkpoint": {"every_epochs": None, "keep_last": 1}},
        "optim": {"name": "adam", "lr": lr},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--pretrain-images", type=int, default=10000)
    ap.add_argument("--per-class", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per fine-tuning / scratch run")
    ap.add_argument("--frozen", action="store_true", help="also fine-tune only the head (train.freeze=features)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: the trainer's)")
    ap.add_argument("--out", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="cnnkit-transfer-") if args.out is None else None
    root = Path(tmp.name) if tmp is not None else args.out
    t0 = time.perf_counter()
    pre_cfg = _cfg("pretrain", {"name": "fashion-mnist", "limit_train": args.pretrain_images, "batch_size": 128},
                   args.pretrain_epochs, 0, lr=1e-3, threads=args.threads)
    pre = fit(pre_cfg, out=root / "pretrain", overwrite=True, quiet=True)
    print(f"pretrained on {args.pretrain_images} Fashion-MNIST images, {args.pretrain_epochs} epochs: "
          f"test accuracy {pre['test_accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)")

    variants = {"scratch": (None, None), "fine-tune": (root / "pretrain", None)}
    if args.frozen:
        variants["frozen"] = (root / "pretrain", "features")
    results: dict[tuple[int, str], list[float]] = {}
    for per_class in args.per_class:
        n = 10 * per_class
        # the same number of optimizer steps whatever the subset size: small sets get more epochs
        batch = min(32, n)
        epochs = max(1, round(args.steps / max(1, n // batch)))
        for seed in range(args.seeds):
            data = {"limit_train": n, "split_seed": seed, "batch_size": batch}
            for variant, (init, freeze) in variants.items():
                cfg = _cfg(f"{variant}-{per_class}-{seed}", data, epochs, seed, lr=1e-3, threads=args.threads, freeze=freeze)
                s = fit(cfg, out=root / cfg.name, overwrite=True, init_from=init, quiet=True)
                results.setdefault((per_class, variant), []).append(float(s["test_accuracy"]))

    print(f"\nDigits test accuracy (449 images), mean ± std over {args.seeds} seeds; "
          f"small CNN, Adam lr 1e-3, ~{args.steps} steps per run")
    head = f"{'labels/class':>12} | {'variant':<10} | {'accuracy':>17} | {'vs scratch':>10}"
    print(head)
    print("-" * len(head))
    for per_class in args.per_class:
        base = statistics.mean(results[(per_class, "scratch")])
        for variant in variants:
            accs = results[(per_class, variant)]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            print(f"{per_class:>12} | {variant:<10} | {f'{statistics.mean(accs):.4f} ± {sd:.4f}':>17} | "
                  f"{statistics.mean(accs) / base:>9.3f}x")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

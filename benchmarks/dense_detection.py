"""Detection part of ``benchmarks/dense.py``: COCO mAP reached against wall time on the generated scenes,
images/s for training and inference, and peak memory, for Faster R-CNN's three heads (RoIAlign, RoIPool,
SPP-net's pyramid) trained the same way.

Each head trains ``--epochs`` epochs on ``--train`` scenes (Adam, cosine, horizontal flips moving the
boxes, as ``configs/detection-faster-rcnn.yaml``) and is evaluated with pycocotools on ``--test`` scenes
after every epoch: one table row per (head, epoch) with the cumulative training seconds, mAP@[.5:.95] and
mAP@0.5. Then inference images/s (mean ± std over ``--repeats`` timed passes over the test scenes, after
one warm-up pass) and training images/s, each with its ratio to the RoIAlign head (the baseline measured
in the same run), and the process's peak resident memory. Timing numbers taken on a loaded machine say so
(load average printed).

Usage:
    python benchmarks/dense_detection.py                       # the default budget (a few minutes per head)
    python benchmarks/dense_detection.py --train 64 --test 32 --epochs 1 --repeats 2   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cnnkit.config import load_config  # noqa: E402
from cnnkit.data import build_data  # noqa: E402
from cnnkit.models import create_model  # noqa: E402
from cnnkit.tasks.coco_eval import coco_map  # noqa: E402

HEADS = {"align": ("faster_rcnn", {"pool": "align"}), "max": ("faster_rcnn", {"pool": "max"}), "spp": ("faster_rcnn_spp", {})}


def _data(n_train: int, n_test: int, batch: int):
    cfg = load_config(str(ROOT / "configs" / "detection-faster-rcnn.yaml"),
                      [f"data.scenes.num_train={n_train}", f"data.scenes.num_test={n_test}", f"data.batch_size={batch}"])
    return cfg, build_data(cfg.data, input_shape=(1, 64, 64), device="cpu", seed=cfg.seed)


@torch.no_grad()
def _evaluate(model: torch.nn.Module, loader) -> tuple[dict[str, float], float]:
    model.eval()
    dets, targets, n = [], [], 0
    t0 = time.perf_counter()
    for x, y in loader:
        dets.extend(model(x).float())
        targets.extend(y.float())
        n += len(x)
    seconds = time.perf_counter() - t0
    model.train()
    return coco_map(dets, targets, num_classes=10, image_size=(64, 64)), n / seconds


def run_head(head: str, bundle, cfg, *, epochs: int, repeats: int) -> dict:
    name, kwargs = HEADS[head]
    torch.manual_seed(0)
    model = create_model(name, num_classes=bundle.num_classes, in_channels=bundle.input_shape[0], **kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    steps = epochs * len(bundle.train)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rows, train_seconds, seen = [], 0.0, 0
    model.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for x, y in bundle.train.epoch_batches(epoch):
            loss = model(x, y).total()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(x)
        train_seconds += time.perf_counter() - t0
        metrics, _ = _evaluate(model, bundle.test)
        rows.append({"epoch": epoch + 1, "seconds": train_seconds, **metrics})
    _evaluate(model, bundle.test)  # warm-up
    rates = [_evaluate(model, bundle.test)[1] for _ in range(repeats)]
    return {"head": head, "rows": rows, "train_ips": seen / train_seconds, "infer_ips": rates}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=600)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, bundle = _data(args.train, args.test, args.batch)
    print(f"detection: {args.train} training / {args.test} test scenes (64x64, 10 digit classes), {args.epochs} epochs, "
          f"{args.threads} thread(s); load average {os.getloadavg()[0]:.1f} (timings measured on a loaded machine when high)")
    results = [run_head(h, bundle, cfg, epochs=args.epochs, repeats=args.repeats) for h in args.heads]
    print(f"\n{'head':<6} {'epoch':>5} {'train s':>8} {'mAP@[.5:.95]':>13} {'mAP@0.5':>8}")
    for r in results:
        for row in r["rows"]:
            print(f"{r['head']:<6} {row['epoch']:>5} {row['seconds']:>8.1f} {row['map']:>13.4f} {row['map50']:>8.4f}")
    base = results[0]
    b_inf = statistics.mean(base["infer_ips"])
    print(f"\n{'head':<6} {'train img/s':>11} {'ratio':>6} {'infer img/s (mean ± std)':>25} {'ratio':>6}")
    for r in results:
        m = statistics.mean(r["infer_ips"])
        sd = statistics.stdev(r["infer_ips"]) if len(r["infer_ips"]) > 1 else 0.0
        print(f"{r['head']:<6} {r['train_ips']:>11.1f} {r['train_ips'] / base['train_ips']:>6.2f} "
              f"{m:>17.1f} ± {sd:<5.1f} {m / b_inf:>6.2f}")
    print(f"\npeak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return results


if __name__ == "__main__":
    main()

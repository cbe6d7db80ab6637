"""Video models on Moving-MNIST direction labels: accuracy and clips/s, against a single-frame 2-D CNN.

The article: video CNNs "perform convolutions in both time and space", or "fuse the features of two
convolutional neural networks, one for the spatial and one for the temporal stream", with "LSTM recurrent
units incorporated after the CNN". Whether a model uses time is measured on labels that need it: the
quadrant of a bouncing digit's direction of motion (``moving-mnist``, 4 classes, chance 25%), which no
single frame shows. The single-frame CNN (Karpathy et al. 2014) on the same clips must stay near chance;
a model that beats it by far uses motion.

Protocol (all through ``cnnkit.train.fit`` with configs, as ``cnnkit train`` runs them): for each model
(``c3d`` small + batch norm, ``two_stream`` small with its stream losses, ``cnn_lstm`` reading out its
last state, ``single_frame``)
and each seed, train on ``--n-train`` generated clips (``--frames`` x ``--canvas`` x ``--canvas``, the same
clips for every seed: the seed changes the initialization, order and augmentation) for ``--epochs`` epochs
(Adam 1e-3 (2e-3 for the LSTM), cosine, batch 32, the same crop/flip augmentation for every frame of a
clip), then report

- test accuracy on ``--n-test`` clips of unseen digits, mean ± std over seeds;
- inference clips/s: batches of 64 clips, eval mode, after warm-up, the median of ``--repeats`` timings,
  and its ratio to the single-frame CNN measured in the same run;
- training clips/s (from the run's epoch times), mean over seeds.

    python benchmarks/video.py [--seeds 3] [--epochs 6] [--n-train 2000] [--n-test 500] [--frames 8]
                               [--canvas 32] [--models c3d,two_stream,cnn_lstm,single_frame] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cnnkit.config import validate_config
from cnnkit.runs import load_model
from cnnkit.train import fit as _fit

MODELS: dict[str, dict[str, Any]] = {
    "c3d": {"model": {"name": "c3d", "variant": "small", "batch_norm": True}},
    "two_stream": {"model": {"name": "two_stream", "variant": "small"}, "task": {"name": "classification", "aux_weight": 1.0}},
    "cnn_lstm": {"model": {"name": "cnn_lstm", "p": 0.0, "readout": "last"}, "optim": {"name": "adam", "lr": 0.002}},
    "single_frame": {"model": {"name": "single_frame"}},
}


def fit(cfg: Any, **kwargs: Any) -> dict[str, Any]:
    """``cnnkit.train.fit`` without its closing lines (they would interleave with the table)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return _fit(cfg, **kwargs)


def config(name: str, seed: int, args: argparse.Namespace) -> Any:
    entry = MODELS[name]
    model = {**entry["model"], "input_size": [args.frames, args.canvas, args.canvas]}
    raw = {
        "name": f"video-{name}", "seed": seed, "model": model,
        "data": {"name": "moving-mnist", "sprites": args.sprites, "n_train": args.n_train, "n_test": args.n_test,
                 "batch_size": 32, "augment": {"crop_padding": 2, "hflip": True}},
        "train": {"epochs": args.epochs, "threads": args.threads, "checkpoint": {"every_epochs": args.epochs}},
        "optim": entry.get("optim", {"name": "adam", "lr": 0.001}),
        "schedule": {"name": "cosine"},
    }
    if "task" in entry:
        raw["task"] = entry["task"]
    return validate_config(raw)


@torch.no_grad()
def inference_rate(run: Path, shape: tuple[int, ...], repeats: int) -> float:
    """Clips per second of the run's model on batches of 64 clips (eval mode, after 2 warm-up batches)."""
    model = load_model(run).model.eval()
    x = torch.randn(64, *shape)
    for _ in range(2):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 64 / statistics.median(times)


def train_rate(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["images_per_second"] for r in rows if "images_per_second" in r]
    return statistics.mean(rates) if rates else float("nan")


def _pm(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.mean(values), fmt)} ± {format(statistics.stdev(values), fmt)}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--canvas", type=int, default=32)
    p.add_argument("--sprites", default="auto")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = [m for m in args.models.split(",") if m]
    shape = (1, args.frames, args.canvas, args.canvas)
    results: dict[str, dict[str, list[float]]] = {n: {"acc": [], "infer": [], "train": [], "wall": []} for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name in names:
                out = Path(tmp) / f"{name}-{seed}"
                start = time.perf_counter()
                summary = fit(config(name, seed, args), out=out, quiet=True)
                results[name]["wall"].append(time.perf_counter() - start)
                results[name]["acc"].append(100 * summary["test_accuracy"])
                results[name]["infer"].append(inference_rate(out, shape, args.repeats))
                results[name]["train"].append(train_rate(out))
                print(f"  seed {seed} {name}: {results[name]['acc'][-1]:.1f}%", flush=True)
    base = statistics.mean(results["single_frame"]["infer"]) if "single_frame" in results else None
    print(f"\nMoving-MNIST direction (4 classes, chance 25%): {args.n_train} training / {args.n_test} test clips of "
          f"{args.frames}x{args.canvas}x{args.canvas}, {args.epochs} epochs, {args.seeds} seed(s), "
          f"{args.threads} thread(s)")
    print(f"{'model':<14} {'test accuracy %':>17} {'infer clips/s':>16} {'x single-frame':>15} {'train clips/s':>14} {'wall s':>8}")
    for name in names:
        r = results[name]
        ratio = f"{statistics.mean(r['infer']) / base:.2f}" if base else "-"
        print(f"{name:<14} {_pm(r['acc'], '.1f'):>17} {_pm(r['infer'], '.0f'):>16} {ratio:>15} "
              f"{statistics.mean(r['train']):>14.0f} {statistics.mean(r['wall']):>8.0f}")


if __name__ == "__main__":
    main()

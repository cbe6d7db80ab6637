"""Dense prediction on this machine: quality against wall time, throughput and peak memory.

Segmentation part (``--part segmentation``), on the generated scenes (64x64, 11 classes):

- ``quality``: each model trained with the segmentation task's loss under the same budget (Adam, batch 16,
  ``--seconds`` of training), test mIoU / pixel accuracy after every epoch with the elapsed wall time;
- ``speed``: training and inference images/s (mean ± std over ``--repeats`` blocks of ``--steps`` steps
  after a warm-up) and the peak resident memory of a training step, each model in its own process (so
  one model's peak does not hide another's), relative to the first model measured in the same run;
- ``paper-unet``: the paper's U-Net (depth 4, 64 base channels, unpadded) at its 572x572 tile, batch 1: the
  training-memory estimate the model checks before its first step (``UNet.activation_bytes``) against the
  measured peak of one training step, and what batch would be refused on this machine.

Detection part (``--part detection``, ``dense_detection.py``): Faster R-CNN with its RoIAlign, RoIPool and
SPP-net heads trained ``--det-epochs`` epochs on the scenes, COCO mAP after every epoch against the training
seconds, training and inference images/s relative to the RoIAlign head, and peak memory.

Each part is a function of ``argparse.Namespace`` that prints its tables, registered in ``PARTS``.

Timings on a shared CPU are pessimistic and noisy: the load average is printed with every table.

Usage:
    python benchmarks/dense.py --part segmentation                     # all three, ~15 min on 2 busy cores
    python benchmarks/dense.py --part segmentation --only speed --steps 3 --repeats 2
    python benchmarks/dense.py --part segmentation --only quality --seconds 120 --models unet fcn8s
    python benchmarks/dense.py --part detection --num-train 64 --num-test 32 --det-epochs 1 --repeats 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cnnkit.config import load_config  # noqa: E402
from cnnkit.data import build_data  # noqa: E402
from cnnkit.models import create_model  # noqa: E402
from cnnkit.tasks import create_task  # noqa: E402

# name -> builder kwargs (11 classes, 1 channel: the scenes' digits); the recipes' settings.
SEG_MODELS: dict[str, dict[str, Any]] = {
    "unet": {"name": "unet", "depth": 3, "base_width": 16, "padding": "same", "batch_norm": True},
    "unet-valid-tile": {"name": "unet", "depth": 3, "base_width": 16, "padding": "valid", "overlap_tile": True, "batch_norm": True},
    "fcn8s": {"name": "fcn", "variant": "8s", "width_divisor": 8, "hidden_features": 256, "batch_norm": True, "dropout": 0.1},
    "fcn32s": {"name": "fcn", "variant": "32s", "width_divisor": 8, "hidden_features": 256, "batch_norm": True, "dropout": 0.1},
    "segnet": {"name": "segnet", "depth": 3, "width_divisor": 4},
}


def _load() -> str:
    try:
        return "load " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "load ?"


def _model(key: str) -> torch.nn.Module:
    kw = dict(SEG_MODELS[key])
    return create_model(kw.pop("name"), num_classes=11, in_channels=1, **kw)


def _scenes(num_train: int, num_test: int) -> Any:
    cfg = load_config(None, [
        "task=segmentation", "data.name=scenes", f"data.num_train={num_train}", f"data.num_test={num_test}",
        "data.batch_size=16", "data.eval_batch_size=50", "data.augment.translate=4",
    ])
    return build_data(cfg.data, input_shape=(1, 64, 64), device="cpu", seed=0)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _speed_child(key: str, steps: int, repeats: int, batch: int, queue: Any) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = _model(key)
    task = create_task("segmentation")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 1, 64, 64)
    y = torch.randint(0, 11, (batch, 64, 64))
    base = _rss_mib()

    def train_step() -> None:
        loss = task.train_step(model, x, y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(fn: Callable[[], None]) -> list[float]:
        fn()  # warm-up
        out = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            out.append(batch * steps / (time.perf_counter() - t))
        return out

    model.train()
    train = timed(train_step)
    peak = _rss_mib() - base
    model.eval()
    with torch.no_grad():
        infer = timed(lambda: model(x))
    queue.put({"train": train, "infer": infer, "peak_mib": peak, "params": sum(p.numel() for p in model.parameters())})


def _in_child(target: Callable[..., None], *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _ms(values: list[float]) -> str:
    return f"{statistics.mean(values):7.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:5.1f}"


def seg_speed(args: argparse.Namespace) -> None:
    print(f"\n## Segmentation throughput, 64x64 scenes, batch {args.batch}, 1 thread ({_load()})\n")
    print("| model | params | train img/s | infer img/s | train ratio | peak MiB (train step) |")
    print("|---|---:|---:|---:|---:|---:|")
    base = None
    for key in args.models:
        r = _in_child(_speed_child, key, args.steps, args.repeats, args.batch)
        mean = statistics.mean(r["train"])
        base = base or mean
        print(f"| {key} | {r['params']:,} | {_ms(r['train'])} | {_ms(r['infer'])} | {mean / base:.2f} | {r['peak_mib']:.0f} |", flush=True)


@torch.no_grad()
def _miou(task: Any, model: torch.nn.Module, loader: Any) -> tuple[float, float]:
    model.eval()
    state = task.metric_state(torch.device("cpu"))
    for x, y in loader.epoch_batches(0):
        task.update_metrics(state, task.eval_step(model, x, y))
    model.train()
    m = task.compute_metrics(state)
    return m["miou"], m["accuracy"]


def seg_quality(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    data = _scenes(args.num_train, args.num_test)
    print(f"\n## Segmentation quality against wall time: {args.num_train} training scenes, {args.num_test} test, "
          f"Adam 2e-3, batch 16, {args.seconds:.0f} s budget, 1 thread ({_load()})\n")
    print("| model | epoch | wall s | test mIoU | pixel acc |")
    print("|---|---:|---:|---:|---:|")
    for key in args.models:
        torch.manual_seed(0)
        model = _model(key)
        task = create_task("segmentation", num_classes=11)
        opt = torch.optim.Adam(model.parameters(), 2e-3)
        start, epoch = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            for x, y in data.train.epoch_batches(epoch):
                loss = task.train_step(model, x, y).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            epoch += 1
            elapsed = time.perf_counter() - start
            miou, acc = _miou(task, model, data.test)
            print(f"| {key} | {epoch} | {elapsed:.0f} | {miou:.3f} | {acc:.3f} |", flush=True)


def _paper_unet_child(queue: Any) -> None:
    torch.set_num_threads(1)
    model = create_model("unet").train()
    x = torch.randn(1, 1, 572, 572)
    y = torch.randint(0, 2, (1, 572, 572))
    task = create_task("segmentation")
    base = _rss_mib()
    t = time.perf_counter()
    step = task.train_step(model, x, y)
    step.loss.backward()
    seconds = time.perf_counter() - t
    queue.put({"peak_mib": _rss_mib() - base, "seconds": seconds, "out": list(step.outputs.shape),
               "estimate_mib": model.activation_bytes(1, 572, 572) / 2**20,
               "params_mib": sum(p.numel() for p in model.parameters()) * 4 / 2**20})


def seg_paper_unet(args: argparse.Namespace) -> None:
    from cnnkit.models.unet import _free_bytes

    r = _in_child(_paper_unet_child)
    free = _free_bytes(torch.device("cpu")) or 0
    per_image = r["estimate_mib"] * 2**20
    print(f"\n## The paper's U-Net at 572x572 (depth 4, 64 channels, unpadded), one training step, 1 thread ({_load()})\n")
    print("| output | estimate (activations) | measured peak over the built model | gradients + weights | step s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {r['out']} | {r['estimate_mib']:.0f} MiB | {r['peak_mib']:.0f} MiB | {2 * r['params_mib']:.0f} MiB | {r['seconds']:.1f} |")
    print(f"\nMemAvailable now {free / 2**30:.1f} GiB: training batches above {int(free // per_image)} images of 572x572 "
          "are refused before the first step (the paper trains on one tile per batch).")


SEGMENTATION = {"speed": seg_speed, "quality": seg_quality, "paper-unet": seg_paper_unet}


def segmentation(args: argparse.Namespace) -> None:
    for name in args.only or list(SEGMENTATION):
        SEGMENTATION[name](args)


def detection(args: argparse.Namespace) -> None:
    """Faster R-CNN's heads: mAP against wall time, images/s, peak memory (``dense_detection.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import dense_detection

    dense_detection.main([
        "--train", str(args.num_train), "--test", str(args.num_test), "--batch", str(args.batch),
        "--repeats", str(args.repeats), "--epochs", str(args.det_epochs),
    ])


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {"segmentation": segmentation, "detection": detection}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=sorted(PARTS), action="append", help="which part(s); default: all")
    p.add_argument("--only", choices=sorted(SEGMENTATION), action="append", help="segmentation: these measurements only")
    p.add_argument("--models", nargs="+", default=list(SEG_MODELS), choices=list(SEG_MODELS))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=180.0)
    p.add_argument("--num-train", type=int, default=800)
    p.add_argument("--num-test", type=int, default=200)
    p.add_argument("--det-epochs", type=int, default=10, help="detection: training epochs per head")
    args = p.parse_args(argv)
    for part in args.part or list(PARTS):
        PARTS[part](args)


if __name__ == "__main__":
    main()

"""Training throughput and FLOP/s utilization on this machine: LeNet-5, ResNet-20 and the fast recipe's net.

For each model, precision/memory format and execution mode (eager, ``torch.compile``), times full training
steps (forward, cross-entropy, backward, Nesterov SGD step) on a fixed random batch and reports:

- images/s (mean ± std over ``--repeats`` timed blocks of ``--steps`` steps, after ``--warmup`` steps);
- the ratio to the same model's fp32 NCHW eager row (the baseline measured in the same run);
- FLOP/s utilization: FLOPs per step (``torch.utils.flop_counter.FlopCounterMode``: the matmul and
  convolution FLOPs of forward + backward, counted once in fp32; element-wise ops are not counted) over the
  step time, as a fraction of the dense matmul peak of the same dtype measured on this machine first.

Short runs; on a shared CPU every number is pessimistic (load average printed alongside). Threads default
to the physical cores.

Usage:
    python benchmarks/throughput.py
    python benchmarks/throughput.py --models airbench_fast --no-compile --batch 512
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import cnnkit.models.airbench  # noqa: F401  (registers airbench_fmnist)
from cnnkit.models._registry import create_model

# (name, builder, input shape): the Fashion-MNIST-sized variants this toolkit trains.
FAST_KWARGS = {"widths": (32, 64, 128), "whiten_kernel_size": 4, "whiten_stride": 2, "whiten_padding": 1}


def _models() -> dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]]:
    out: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {}
    try:
        import cnnkit.models.lenet

        out["lenet5"] = (lambda: create_model("lenet5", variant="modern"), (1, 32, 32))
    except ImportError:
        pass
    try:
        import cnnkit.models.resnet  # noqa: F401

        out["resnet20"] = (lambda: create_model("resnet20", in_channels=1), (1, 28, 28))
    except ImportError:
        pass
    out["airbench_fast"] = (lambda: create_model("airbench_fmnist", **FAST_KWARGS), (1, 28, 28))
    out["airbench"] = (lambda: create_model("airbench_fmnist"), (1, 28, 28))
    return out


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def matmul_peak(dtype: torch.dtype, sizes: tuple[int, ...] = (512, 1024), trials: int = 5) -> float:
    """Best dense square matmul FLOP/s in ``dtype`` over ``sizes`` and ``trials`` (2 n^3 FLOPs per product).

    Each trial runs ~20 GFLOP so that thread start-up and timer resolution do not count; the best trial
    is the machine's attainable peak (a busy neighbour only ever makes a trial slower).
    """
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        for _ in range(2):
            a @ b
        reps = max(1, int(2e10 / (2 * n**3)))
        for _ in range(trials):
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def _make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> Callable[[], None]:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9, nesterov=True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def flops_per_step(build: Callable[[], nn.Module], shape: tuple[int, ...], batch: int) -> int:
    model = build()
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return int(counter.get_total_flops())


def time_steps(step: Callable[[], None], *, warmup: int, steps: int, repeats: int) -> list[float]:
    """Seconds per step for each of ``repeats`` blocks."""
    for _ in range(warmup):
        step()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        out.append((time.perf_counter() - t) / steps)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="lenet5,resnet20,airbench_fast,airbench")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (compiling is slow)")
    args = p.parse_args(argv)

    from cnnkit.runtime import physical_cores

    torch.set_num_threads(args.threads or physical_cores())
    available = _models()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        if n not in available:
            raise SystemExit(f"unknown or unavailable model {n!r}; available: {', '.join(available)}")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {_load()}")
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"measured matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    variants = [("fp32", False, "eager"), ("fp32", True, "eager"), ("bf16", False, "eager"), ("bf16", True, "eager")]
    if not args.no_compile:
        variants += [("fp32", False, "compiled"), ("bf16", True, "compiled")]

    header = ["model", "precision", "format", "mode", "images/s", "vs fp32 NCHW eager", "GFLOP/step", "GFLOP/s", "% of peak", "load"]
    rows: list[list[str]] = []
    for name in names:
        build, shape = available[name]
        flops = flops_per_step(build, shape, args.batch)
        base: float | None = None
        for precision, channels_last, mode in variants:
            torch.manual_seed(0)
            model = build()
            x, y = torch.randn(args.batch, *shape), torch.randint(0, 10, (args.batch,))
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
            if mode == "compiled":
                model = torch.compile(model)
            step = _make_step(model, x, y, precision == "bf16")
            try:
                secs = time_steps(step, warmup=args.warmup + (2 if mode == "compiled" else 0), steps=args.steps,
                                  repeats=args.repeats)
            except Exception as exc:  # noqa: BLE001  (a backend that cannot compile this model: report, go on)
                rows.append([name, precision, "NHWC" if channels_last else "NCHW", mode, f"failed: {type(exc).__name__}"])
                continue
            ips = [args.batch / s for s in secs]
            mean_ips = statistics.mean(ips)
            if base is None:
                base = mean_ips
            flops_s = flops / statistics.mean(secs)
            rows.append([
                name, precision, "NHWC" if channels_last else "NCHW", mode,
                f"{mean_ips:.0f} ± {statistics.stdev(ips) if len(ips) > 1 else 0:.0f}",
                f"{mean_ips / base:.2f}x", f"{flops / 1e9:.2f}", f"{flops_s / 1e9:.1f}",
                f"{100 * flops_s / peaks[precision]:.0f}%", _load(),
            ])
            print("  ".join(rows[-1]), flush=True)
    print()
    widths = [max(len(r[i]) if i < len(r) else 0 for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Inference speed per backend: images/s and latency (median, p99) at batch 1 and 64 for LeNet-5,
ResNet-20 and the airbench net, with the ratio to onnxruntime measured in the same run.

Each model (seed-0 random weights: speed does not depend on the values) is saved as a run folder and
exported with ``cnnkit export``, then run through :mod:`cnnkit.evaluate.backends` exactly as ``cnnkit
predict --backend ...`` runs it. ``auto`` (fp32 routes, as the CLI runs it) gets a row naming the route its
probe chose, with that route's timings and the probe's own cost.

Timing: every backend is warmed up, then ``--rounds`` interleaved rounds (each backend in turn, a fixed
number of calls each), so a change of machine load hits every backend alike. images/s is mean ± std over
the rounds (batch x calls / round time); latency median and p99 are over all calls. The run is
deterministic in what it does (fixed calls per round); on a shared machine record ``uptime`` beside it.

    python benchmarks/inference.py                 # ~1-2 min on a quiet 2-core machine
    python benchmarks/inference.py --threads 1     # a machine shared with other jobs
    python benchmarks/inference.py --compile       # adds torch.compile (minutes of compiling)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cnnkit.evaluate.backends import LazyBackend, clear_backend_cache, run_backend
from cnnkit.export import export_onnx
from cnnkit.models import build_model
from cnnkit.runs import load_model, save_model
from cnnkit.runtime import physical_cores

MODELS = {"lenet5": (1, 32, 32), "resnet20": (3, 32, 32), "airbench_fmnist": (1, 28, 28)}
ROUTES = ["torch", "torch-cl", "torch-bf16", "onnxruntime"]
CALLS = {1: 40, 64: 4}  # calls per backend per round: batch 1 is microseconds, batch 64 milliseconds


def _make_run(root: Path, name: str, shape: tuple[int, ...]) -> Path:
    torch.manual_seed(0)
    build = {"name": name, "num_classes": 10}
    model = build_model(build).eval()
    run = root / name
    save_model(run, model, build=build, preprocessing={"input_shape": list(shape)})
    export_onnx(run)  # RUN/model.onnx, as `cnnkit export RUN` writes it
    return run


def _bench(run: Path, batch: int, rounds: int, compile_: bool) -> list[dict[str, object]]:
    loaded = load_model(run)
    shape = tuple(loaded.info["input_shape"])
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))
    routes = ROUTES + (["torch-compile"] if compile_ else [])
    backends: dict[str, LazyBackend] = {r: run_backend(loaded, backend=r) for r in routes}
    clear_backend_cache()  # auto probes afresh for every model and batch
    auto = run_backend(loaded, backend="auto", exact=True)  # as cnnkit predict/evaluate: fp32 routes
    t = time.perf_counter()
    auto(x)  # the probe: every route run and timed on this batch
    probe_s = time.perf_counter() - t
    # auto's row is its chosen route's row: a second onnxruntime session timed beside the first would be
    # slowed by the first one's spinning worker threads, which measures the benchmark, not the route.
    chosen_name = auto.chosen.name if auto.chosen is not None else "torch"
    ref = backends["torch"](x).argmax(1)
    agree = {k: float((b(x).argmax(1) == ref).float().mean()) for k, b in backends.items()}  # also warm-up
    for b in backends.values():
        b(x)
    lat: dict[str, list[float]] = {k: [] for k in backends}
    rate: dict[str, list[float]] = {k: [] for k in backends}
    n = CALLS[batch]
    for _ in range(rounds):
        for k, b in backends.items():
            start = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                b(x)
                lat[k].append(time.perf_counter() - t)
            rate[k].append(batch * n / (time.perf_counter() - start))
    ort = statistics.mean(rate["onnxruntime"])
    rows = []
    for name in [*backends, "auto"]:
        k = chosen_name if name == "auto" else name
        rows.append({
            "model": run.name, "batch": batch, "backend": k if name != "auto" else f"auto -> {k}",
            "ips": statistics.mean(rate[k]), "ips_sd": statistics.stdev(rate[k]) if len(rate[k]) > 1 else 0.0,
            "median_ms": 1e3 * statistics.median(lat[k]), "p99_ms": 1e3 * float(np.percentile(lat[k], 99)),
            "vs_ort": statistics.mean(rate[k]) / ort, "top1": agree[k],
            "probe_s": probe_s if name == "auto" else None,
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads (default: physical cores)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64], choices=sorted(CALLS))
    ap.add_argument("--compile", action="store_true", help="add torch.compile with freezing (slow to compile)")
    args = ap.parse_args()
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {threads} threads, load average {load:.2f} at start", flush=True)
    header = "| model | batch | backend | images/s | median ms | p99 ms | vs onnxruntime | top-1 = torch |"
    lines = [header, "|" + "---|" * 8]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            t = time.perf_counter()
            run = _make_run(Path(tmp), name, MODELS[name])
            print(f"{name}: exported in {time.perf_counter() - t:.1f} s", flush=True)
            for batch in args.batches:
                for r in _bench(run, batch, args.rounds, args.compile):
                    probe = f" (probe {r['probe_s']:.2f} s)" if r["probe_s"] is not None else ""
                    line = (f"| {r['model']} | {r['batch']} | {r['backend']}{probe} | {r['ips']:,.0f} ± {r['ips_sd']:,.0f} | "
                            f"{r['median_ms']:.3f} | {r['p99_ms']:.3f} | {r['vs_ort']:.2f}x | {r['top1']:.2f} |")
                    lines.append(line)
                    print(line, flush=True)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load:.2f} at start, {load_end:.2f} at the end\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

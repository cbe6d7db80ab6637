"""Time to accuracy on Fashion-MNIST: a tutorial-style PyTorch baseline vs cnnkit's fast recipe, end to end.

Every arm runs as a fresh Python process and the clock runs from just before the process is spawned to
the moment its test accuracy line arrives on the parent's pipe: interpreter start, imports, data loading,
model set-up, training and evaluation are all inside the measurement.

Arms:
    baseline   The classic two-convolution network of the PyTorch MNIST example (pytorch/examples,
               ``mnist/main.py``): conv 32 -> conv 64 -> max-pool -> dropout -> fc 128 -> dropout -> fc 10,
               a per-sample ``Dataset`` + ``DataLoader`` (batch 64), fp32, NCHW, Adadelta lr=1.0 with
               StepLR(gamma=0.7), test accuracy printed after every epoch as the example does. It runs
               until ``--baseline-seconds`` and is then stopped.
    engine     ``python -m cnnkit train CONFIG --set seed=S`` (the real engine, default
               ``configs/fashion-mnist-fast.yaml``): one test accuracy at the end of the run.
    standalone The same recipe as a ~60-line plain PyTorch loop (no cnnkit engine, only the model), to
               separate engine overhead from the recipe; optional.

Reported per arm over ``--seeds`` seeds (mean ± std): end-to-end seconds, final accuracy, the baseline's
accuracy at the engine's end-to-end time (accuracy at equal wall time) and the time to each target accuracy
(``--targets``), with ratios to the baseline measured in the same run. A target the baseline did not reach
within its budget is reported as "> budget", and the ratio as a lower bound.

The machine should be idle: on a shared 2-core CPU every number here is pessimistic (``uptime`` load is
printed with each run).

Usage:
    python benchmarks/time_to_accuracy.py                       # 3 seeds, baseline + engine
    python benchmarks/time_to_accuracy.py --arms engine --seeds 1
    python benchmarks/time_to_accuracy.py --arms baseline,engine,standalone --baseline-seconds 300
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


# ------------------------------------------------------------------------------------------ child: data


def _read_idx(root: str, split: str) -> tuple[Any, Any]:
    """Fashion-MNIST IDX files -> (uint8 (N, 28, 28), int64 (N,)) numpy arrays."""
    import numpy as np

    prefix = "train" if split == "train" else "t10k"
    paths = {}
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        p = Path(root) / f"{prefix}-{kind}"
        paths[kind] = p if p.exists() else p.with_name(p.name + ".gz")

    def read(path: Path) -> bytes:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw

    x = np.frombuffer(read(paths["images-idx3-ubyte"]), np.uint8, offset=16).reshape(-1, 28, 28)
    y = np.frombuffer(read(paths["labels-idx1-ubyte"]), np.uint8, offset=8).astype(np.int64)
    return x, y


def _emit(**row: Any) -> None:
    print(json.dumps(row), flush=True)


# ------------------------------------------------------------------------------------------ child: baseline


def run_baseline(seed: int, root: str, epochs: int = 14) -> None:
    """pytorch/examples mnist/main.py, pointed at Fashion-MNIST; prints {"epoch", "test_accuracy"} lines."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            x = self.dropout2(F.relu(self.fc1(torch.flatten(self.dropout1(x), 1))))
            return F.log_softmax(self.fc2(x), dim=1)

    class FashionMNIST(torch.utils.data.Dataset):
        # What transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))]) does, one sample at a time
        # (tutorials copy MNIST's statistics). It skips torchvision's PIL round trip, which favours the baseline.
        def __init__(self, split: str) -> None:
            self.x, self.y = _read_idx(root, split)

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            img = torch.from_numpy(self.x[i].copy()).float().div(255).unsqueeze(0)
            return (img - 0.1307) / 0.3081, int(self.y[i])

    torch.manual_seed(seed)
    train = torch.utils.data.DataLoader(FashionMNIST("train"), batch_size=64, shuffle=True)
    test = torch.utils.data.DataLoader(FashionMNIST("test"), batch_size=1000)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += (model(x).argmax(1) == y).sum().item()
        _emit(epoch=epoch, test_accuracy=correct / len(test.dataset))
        scheduler.step()


# ------------------------------------------------------------------------------------------ child: standalone


def run_standalone(seed: int, root: str, config: str) -> None:
    """The recipe of ``config`` as a plain loop, without the engine's Trainer and loaders.

    The model, parameter groups, schedule function, EMA and batch augmentations come from cnnkit; data,
    loop and evaluation are written out here. Supports what the recipes use: Nesterov SGD, any schedule,
    label smoothing, bf16 + channels_last, hflip + translate/crop_padding, EMA, flip TTA.
    """
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT / "src"))
    import cnnkit.models.airbench  # noqa: F401  (registers the airbench models)
    from cnnkit.config import load_config
    from cnnkit.data.augment import random_flip, random_translate
    from cnnkit.models import build_model
    from cnnkit.runtime import physical_cores
    from cnnkit.train.ema import ModelEMA
    from cnnkit.train.optim import build_optimizer
    from cnnkit.train.schedules import apply_lr, build_schedule

    cfg = load_config(config, [f"seed={seed}"])
    torch.set_num_threads(cfg.train.threads or physical_cores())
    torch.manual_seed(seed)
    xtr, ytr = (torch.from_numpy(a.copy()) for a in _read_idx(root, "train"))
    xte, yte = (torch.from_numpy(a.copy()) for a in _read_idx(root, "test"))
    xtr, xte = xtr[:, None], xte[:, None]
    mean, std = xtr.float().mean() / 255, xtr.float().std() / 255
    bf16 = cfg.train.precision == "bf16"

    def prep(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)

    model = build_model(cfg.model.as_dict(), num_classes=10)
    if hasattr(model, "init_from_data"):
        model.init_from_data(prep(xtr[:5000]))
    model = model.to(memory_format=torch.channels_last)
    ema = ModelEMA(model, decay=cfg.train.ema.decay, every_steps=cfg.train.ema.every_steps) if cfg.train.ema else None
    opt = build_optimizer(model, cfg.optim)
    bs = cfg.data.batch_size
    spe = len(xtr) // bs
    total = cfg.train.epochs * spe
    schedule = build_schedule(cfg.schedule, lr=cfg.optim.lr, total_steps=total, steps_per_epoch=spe)
    aug = cfg.data.augment
    shift = aug.translate or aug.crop_padding
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(cfg.train.epochs):
        perm = torch.randperm(len(xtr))
        for i in range(spe):
            idx = perm[i * bs : (i + 1) * bs]
            x = xtr[idx].float()
            if shift:
                x = random_translate(x, shift, gen)  # zero fill = black background, before normalization
            if aug.hflip:
                x = random_flip(x, -1, gen)
            apply_lr(opt, schedule(step))
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(prep(x)), ytr[idx], label_smoothing=cfg.train.label_smoothing)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(model)
            step += 1
    net = ema.module if ema is not None else model
    net.eval()
    correct = 0
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for i in range(0, len(xte), 2000):
            x = prep(xte[i : i + 2000])
            logits = net(x).float()
            if cfg.train.tta != "none":
                logits = logits + net(x.flip(-1)).float()
            correct += int((logits.argmax(1) == yte[i : i + 2000]).sum())
    _emit(epoch=cfg.train.epochs, test_accuracy=correct / len(xte))


# ------------------------------------------------------------------------------------------ parent


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _timed(cmd: list[str], *, deadline_s: float | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; return its JSON/accuracy lines stamped with seconds since spawn, and the total seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    points: list[tuple[float, float]] = []
    killed = False
    assert proc.stdout is not None
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while True:
        timeout = None if deadline_s is None else max(0.0, deadline_s - (time.perf_counter() - start))
        if timeout == 0.0:
            proc.kill()
            killed = True
            break
        if not sel.select(timeout):
            continue
        line = proc.stdout.readline()
        if not line:
            break
        now = time.perf_counter() - start
        line = line.strip()
        if line.startswith("{"):
            points.append((now, float(json.loads(line)["test_accuracy"])))
        elif line.startswith("test accuracy:"):
            points.append((now, float(line.split(":")[1].strip().rstrip("%")) / 100))
    proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, None) and not killed:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"points": points, "seconds": time.perf_counter() - start, "killed": killed, "load": _load()}


def _time_to(points: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, a in points if a >= target), None)


def _acc_at(points: list[tuple[float, float]], t: float) -> float | None:
    """The last accuracy printed by time ``t`` (None if nothing was printed yet)."""
    seen = [a for s, a in points if s <= t]
    return seen[-1] if seen else None


def _ms(values: list[float | None], scale: float = 1.0, fmt: str = "{:.1f}") -> str:
    vals = [v * scale for v in values if v is not None]
    missing = len(values) - len(vals)
    if not vals:
        return "—"
    text = fmt.format(statistics.mean(vals))
    if len(vals) > 1:
        text += " ± " + fmt.format(statistics.stdev(vals))
    return text + (f" ({missing} n/a)" if missing else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", default="baseline,engine", help="comma-separated: baseline, engine, standalone")
    p.add_argument("--config", default="configs/fashion-mnist-fast.yaml")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--baseline-seconds", type=float, default=240.0, help="stop the baseline after this long")
    p.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.93])
    p.add_argument("--root", default=DEFAULT_DATA, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for the engine arm, e.g. --set train.threads=2 (repeatable)")
    p.add_argument("--json", default=None, help="also write all raw results to this JSON file")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="draw test accuracy against end-to-end seconds for every arm and seed into this PNG")
    p.add_argument("--engine-epochs", default="", metavar="E1,E2,...",
                   help="also run the engine recipe with these epoch budgets (its schedule scaled to each), "
                        "so the plot shows what the recipe reaches at shorter and longer wall times")
    p.add_argument("--child", choices=["baseline", "standalone"], help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child == "baseline":
        run_baseline(args.seed, args.root)
        return 0
    if args.child == "standalone":
        run_standalone(args.seed, args.root, args.config)
        return 0

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    sweep = [int(e) for e in args.engine_epochs.split(",") if e.strip()]
    if sweep and "engine" not in arms:
        raise SystemExit("--engine-epochs needs the engine arm")
    arms += [f"engine@{e}ep" for e in sweep]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    me = [sys.executable, str(Path(__file__).resolve())]
    with tempfile.TemporaryDirectory(prefix="tta-bench-") as tmp:
        for seed in range(args.seeds):
            for arm in arms:
                if arm == "baseline":
                    cmd = me + ["--child", "baseline", "--seed", str(seed), "--root", args.root]
                    r = _timed(cmd, deadline_s=args.baseline_seconds, env=env)
                elif arm == "standalone":
                    cmd = me + ["--child", "standalone", "--seed", str(seed), "--root", args.root, "--config", args.config]
                    r = _timed(cmd, env=env)
                elif arm == "engine" or arm.startswith("engine@"):
                    out = str(Path(tmp) / f"{arm}-{seed}")
                    cmd = [sys.executable, "-m", "cnnkit", "train", args.config, "--set", f"seed={seed}",
                           "--set", f"data.root={args.root}", "--out", out, "--overwrite"]
                    for item in args.overrides:
                        cmd += ["--set", item]
                    if arm.startswith("engine@"):
                        cmd += ["--set", f"train.epochs={arm[len('engine@'):-2]}"]
                    r = _timed(cmd, env=env)
                    summary = Path(out) / "summary.json"
                    if summary.is_file():
                        s = json.loads(summary.read_text())
                        r["train_seconds"] = s.get("train_seconds")
                else:
                    raise SystemExit(f"unknown arm {arm!r}; choose from baseline, engine, standalone")
                r["seed"] = seed
                results[arm].append(r)
                last = r["points"][-1] if r["points"] else (float("nan"), float("nan"))
                print(f"[seed {seed}] {arm:10s} {len(r['points'])} evals, last {100 * last[1]:.2f}% at {last[0]:.1f}s "
                      f"(process {r['seconds']:.1f}s{', stopped at budget' if r['killed'] else ''}; load {r['load']})",
                      flush=True)

    print()
    print(f"Fashion-MNIST, end to end (process spawn -> test accuracy printed), {args.seeds} seeds; threads: "
          f"baseline torch's default, engine as configured{' with ' + ' '.join(args.overrides) if args.overrides else ''}; "
          f"load average at the end: {_load()}")
    recipe = "engine" if "engine" in arms else ("standalone" if "standalone" in arms else None)
    recipe_times = [r["points"][-1][0] for r in results.get(recipe, []) if r["points"]] if recipe else []
    equal_t = statistics.mean(recipe_times) if recipe_times else None
    header = ["arm", "final acc %", "end-to-end s"]
    if equal_t is not None:
        header.append(f"acc % at {equal_t:.0f}s")
    header += [f"time to {100 * t:.0f}% (s)" for t in args.targets]
    rows = []
    for arm in arms:
        rs = results[arm]
        row = [arm, _ms([r["points"][-1][1] if r["points"] else None for r in rs], 100, "{:.2f}"),
               _ms([r["points"][-1][0] if r["points"] else None for r in rs])]
        if equal_t is not None:
            # For the recipe itself this is its own final accuracy, by construction.
            row.append(_ms([_acc_at(r["points"], equal_t) for r in rs], 100, "{:.2f}") if arm != recipe else "(final)")
        for t in args.targets:
            times = [_time_to(r["points"], t) for r in rs]
            cell = _ms(times)
            if arm == "baseline" and any(v is None for v in times):
                cell += f" [> {args.baseline_seconds:.0f}s budget in {sum(v is None for v in times)}]"
            row.append(cell)
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))

    if "baseline" in results and recipe:
        print()
        for t in args.targets:
            b = [_time_to(r["points"], t) for r in results["baseline"]]
            f = [_time_to(r["points"], t) for r in results[recipe]]
            fv = [v for v in f if v is not None]
            if not fv:
                print(f"speed-up to {100 * t:.0f}%: {recipe} did not reach it")
                continue
            bv = [v if v is not None else args.baseline_seconds for v in b]
            bound = ">= " if any(v is None for v in b) else ""
            print(f"speed-up to {100 * t:.0f}%: {bound}{statistics.mean(bv) / statistics.mean(fv):.2f}x "
                  f"(baseline {statistics.mean(bv):.1f}s{' (budget used for runs that did not reach it)' if bound else ''}"
                  f" vs {recipe} {statistics.mean(fv):.1f}s)")
        if equal_t is not None:
            bacc = [_acc_at(r["points"], equal_t) for r in results["baseline"]]
            facc = [r["points"][-1][1] for r in results[recipe] if r["points"]]
            bv = [v for v in bacc if v is not None]
            gap = f"{100 * (statistics.mean(facc) - statistics.mean(bv)):+.2f} points" if bv else "baseline printed nothing yet"
            print(f"accuracy at equal wall time ({equal_t:.0f}s): {recipe} {100 * statistics.mean(facc):.2f}% vs "
                  f"baseline {100 * statistics.mean(bv) if bv else float('nan'):.2f}% ({gap})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.plot:
        _plot(results, args.plot, targets=args.targets)
        print(f"plot: {args.plot}")
    return 0


def _plot(results: dict[str, list[dict[str, Any]]], path: str, *, targets: list[float]) -> None:
    """Accuracy against end-to-end seconds: the baseline's per-epoch evaluations as one line per seed, each
    engine run as a point (an epoch sweep joins its budgets' mean points into a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, r in enumerate(results.get("baseline", [])):
        if r["points"]:
            t, a = zip(*r["points"])
            ax.plot(t, [100 * v for v in a], "-o", ms=3, color="tab:gray", alpha=0.8,
                    label="tutorial baseline (per epoch)" if i == 0 else None)
    engine_arms = [a for a in results if a == "engine" or a.startswith("engine@") or a == "standalone"]
    sweep_means = []
    for arm in engine_arms:
        pts = [r["points"][-1] for r in results[arm] if r["points"]]
        if not pts:
            continue
        color = "tab:blue" if arm.startswith("engine") else "tab:orange"
        ax.scatter([t for t, _ in pts], [100 * a for _, a in pts], s=18, color=color, alpha=0.7,
                   label="cnnkit fast recipe (each run)" if arm == "engine" else (arm if arm == "standalone" else None))
        if arm.startswith("engine"):
            sweep_means.append((statistics.mean(t for t, _ in pts), 100 * statistics.mean(a for _, a in pts)))
    if len(sweep_means) > 1:
        sweep_means.sort()
        ax.plot(*zip(*sweep_means), "-", color="tab:blue", label="cnnkit recipe, mean per epoch budget")
    for t in targets:
        ax.axhline(100 * t, ls=":", color="k", lw=0.8)
    ax.axvline(60, ls="--", color="tab:red", lw=0.8, label="60 s")
    ax.set_xlabel("end-to-end seconds (process start to accuracy printed)")
    ax.set_ylabel("Fashion-MNIST test accuracy (%)")
    ax.set_ylim(85, 95)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())

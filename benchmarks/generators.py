"""DCGAN generators on Fashion-MNIST: transposed convolutions against upscale-then-convolve, in one run.

The article: "Deconvolution layers are used in image generators. By default, it creates periodic
checkerboard artifact, which can be fixed by upscale-then-convolve" (Odena, Dumoulin & Olah 2016).

Protocol (everything through ``cnnkit.train.fit`` with ``configs/dcgan-fashion-mnist.yaml``):

1. untrained generators: for ``--seeds`` initializations of each mode, the checkerboard energy (the
   share of spectral energy at the stride's period, 2 pixels) of 256 samples; white noise and the real
   test images measured alike;
2. each mode (``model.upsample: transpose | upsample_conv``) trained for ``--epochs`` on ``--train-images``
   training images: test FID (generated vs test images), the real-vs-real floor (training vs test images)
   and the untrained generator's FID (the ceiling), all on the features of the run's ``fid_net``, and
   the trained generator's checkerboard energy.

    python benchmarks/generators.py [--epochs 2] [--train-images 60000] [--seeds 5] [--base-width 64]
                                    [--threads 1] [--limit-test N]
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

import torch

from cnnkit.config import load_config
from cnnkit.data import load_dataset
from cnnkit.models.dcgan import dcgan
from cnnkit.tasks.gan_metrics import checkerboard_energy, checkerboard_white_level
from cnnkit.train import fit as _fit

ROOT = Path(__file__).resolve().parents[1]
MODES = ("transpose", "upsample_conv")


def fit(cfg: Any, **kwargs: Any) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):
        return _fit(cfg, quiet=True, **kwargs)


def ms(values: list[float], scale: float = 1.0, digits: int = 4) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * sd:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=None, help="default: all 60,000")
    ap.add_argument("--seeds", type=int, default=5, help="initializations per mode for the untrained measurement")
    ap.add_argument("--base-width", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    untrained: dict[str, list[float]] = {}
    for mode in MODES:
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            gan = dcgan(upsample=mode, base_width=args.base_width).eval()
            with torch.no_grad():
                untrained.setdefault(mode, []).append(float(checkerboard_energy(gan.generate(256)).mean()))
    real = load_dataset("fashion-mnist", None, split="test").images[:2000].float() / 255
    noise = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    print(f"Checkerboard energy (share of spectral energy at period 2; % of non-DC energy), 28x28, "
          f"ngf = {args.base_width}")
    print(f"| {'images':<34} | {'energy (%)':>15} |")
    print(f"|{'-' * 36}|{'-' * 17}|")
    for mode in MODES:
        print(f"| {f'untrained {mode} ({args.seeds} seeds)':<34} | {ms(untrained[mode], 100, 2):>15} |")
    print(f"| {'white noise (uniform)':<34} | {100 * float(checkerboard_energy(noise).mean()):>15.2f} |")
    print(f"| {'white noise (expected)':<34} | {100 * checkerboard_white_level(28, 28):>15.2f} |")
    print(f"| {'Fashion-MNIST test images':<34} | {100 * float(checkerboard_energy(real).mean()):>15.2f} |", flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="cnnkit-gan-") if args.out is None else None
    root = Path(tmp.name) if tmp is not None else args.out
    rows = {}
    for mode in MODES:
        sets = [f"model.upsample={mode}", f"model.base_width={args.base_width}", f"train.epochs={args.epochs}",
                f"train.threads={args.threads}"]
        if args.train_images:
            sets.append(f"data.limit_train={args.train_images}")
        if args.limit_test:
            sets.append(f"data.limit_test={args.limit_test}")
        t = time.perf_counter()
        rows[mode] = fit(load_config(ROOT / "configs" / "dcgan-fashion-mnist.yaml", sets), out=root / mode, overwrite=True)
        rows[mode]["_seconds"] = time.perf_counter() - t
        print(f"  trained {mode}: FID {rows[mode]['test_fid']:.3f} ({rows[mode]['_seconds']:.0f} s)", flush=True)

    n = args.train_images or 60_000
    print(f"\nTrained {args.epochs} epoch(s) on {n} images; FID on fid_net features "
          f"(fid_net acc: its test accuracy)")
    print(f"| {'upsample':<14} | {'FID':>8} | {'floor (real)':>12} | {'untrained':>9} | {'checkerboard %':>14} | {'fid_net acc':>11} |")
    print(f"|{'-' * 16}|{'-' * 10}|{'-' * 14}|{'-' * 11}|{'-' * 16}|{'-' * 13}|")
    for mode, s in rows.items():
        print(f"| {mode:<14} | {s['test_fid']:>8.3f} | {s['test_fid_real']:>12.3f} | {s['test_fid_untrained']:>9.3f} | "
              f"{100 * s['test_checkerboard']:>14.2f} | {100 * s['test_fid_net_accuracy']:>10.2f}% |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s (measured on a loaded machine)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

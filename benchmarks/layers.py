"""Forward + backward time of cnnkit's pooling and convolution layers next to torch baselines.

Pooling layers are compared with ``max_pool2d`` on the same input, convolution variants with a plain
``Conv2d`` of the same shape, every ratio measured in the same run. Times are wall-clock ms per
forward+backward (CUDA: synchronized), mean ± std over ``--repeats`` runs after ``--warmup`` runs.

    python benchmarks/layers.py                 # CPU, and CUDA when present
    python benchmarks/layers.py --device cpu --repeats 5 --batch 8
    python benchmarks/layers.py --compile       # also the pooling layers under torch.compile
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from cnnkit.layers import (
    AttentionPool,
    BlurPool2d,
    ChannelMaxPool2d,
    DepthwiseSeparableConv2d,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    LocallyConnected2d,
    LpPool2d,
    MaxBlurPool2d,
    MixedPool2d,
    MultiDilationConv2d,
    RoIPool,
    SoftmaxPool2d,
    SpatialPyramidPool2d,
    StochasticPool2d,
    Unpool2d,
    UpsampleConv2d,
)


def _time(fn: Callable[[], Tensor], x: Tensor, params: list[Tensor], repeats: int, warmup: int) -> list[float]:
    cuda = x.device.type == "cuda"
    times = []
    for i in range(warmup + repeats):
        x.grad = None
        for p in params:
            p.grad = None
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        out.backward(torch.ones_like(out))
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def _row(name: str, times: list[float], base: float | None) -> str:
    mean = statistics.fmean(times)
    std = statistics.stdev(times) if len(times) > 1 else 0.0
    ratio = f"{mean / base:6.2f}x" if base else "  1.00x (baseline)"
    return f"  {name:<44} {mean:9.2f} ± {std:7.2f} ms  {ratio}"


def bench_pooling(device: torch.device, b: int, c: int, s: int, repeats: int, warmup: int, compile_: bool) -> None:
    x = torch.randn(b, c, s, s, device=device).relu_().requires_grad_()  # non-negative: stochastic pool
    rois = torch.tensor([[i % b, 0, 0, s * 4 - 1, s * 4 - 1] for i in range(64)], dtype=torch.float32, device=device)
    rois[:, 1:3] += torch.arange(64, device=device)[:, None] % 16
    cases: list[tuple[str, nn.Module, Callable[[nn.Module], Tensor]]] = [
        ("max_pool2d(2) [torch]", nn.MaxPool2d(2), lambda m: m(x)),
        ("avg_pool2d(2) [torch]", nn.AvgPool2d(2), lambda m: m(x)),
        ("LpPool2d(p=2, 2)", LpPool2d(2, 2), lambda m: m(x)),
        ("LpPool2d(p=3, 3, stride=1, padding=1)", LpPool2d(3, 3, 1, 1), lambda m: m(x)),
        ("MixedPool2d(2, learnable)", MixedPool2d(2, learnable=True), lambda m: m(x)),
        ("SoftmaxPool2d(2, beta=1)", SoftmaxPool2d(2), lambda m: m(x)),
        ("SoftmaxPool2d(3, stride=2, padding=1)", SoftmaxPool2d(3, 2, 1), lambda m: m(x)),
        ("StochasticPool2d(2) train", StochasticPool2d(2).train(), lambda m: m(x)),
        ("StochasticPool2d(2) eval", StochasticPool2d(2).eval(), lambda m: m(x)),
        ("ChannelMaxPool2d(C/2)", ChannelMaxPool2d(c // 2), lambda m: m(x)),
        ("GlobalAvgPool2d", GlobalAvgPool2d(), lambda m: m(x)),
        ("GlobalMaxPool2d", GlobalMaxPool2d(), lambda m: m(x)),
        ("SpatialPyramidPool2d((1, 2, 4))", SpatialPyramidPool2d(), lambda m: m(x)),
        ("BlurPool2d(C, 3, 2)", BlurPool2d(c), lambda m: m(x)),
        ("MaxBlurPool2d(C)", MaxBlurPool2d(c), lambda m: m(x)),
        ("Unpool2d(2)", Unpool2d(2), lambda m: m(x)),
        ("RoIPool(7, 1/4), 64 RoIs", RoIPool(7, 0.25), lambda m: m(x, rois)),
        ("AttentionPool(C, 4 heads) [has a C x 4C FFN]", AttentionPool(c, 4), lambda m: m(x)),
    ]
    print(f"\nPooling, input ({b}, {c}, {s}, {s}) float32 on {device}: forward+backward, ratio to max_pool2d")
    base = None
    for name, module, call in cases:
        module.to(device)
        params = list(module.parameters())
        times = _time(lambda: call(module), x, params, repeats, warmup)
        print(_row(name, times, base), flush=True)
        if base is None:
            base = statistics.fmean(times)
    if not compile_:
        return
    print("\nSame, under torch.compile (inductor; compile time excluded), ratio to eager max_pool2d")
    for name, module, call in cases[2:]:
        if isinstance(module, (StochasticPool2d, RoIPool)) and module.training:
            continue  # the sign check / host sync split the graph; nothing for inductor to fuse
        compiled = torch.compile(module)
        t0 = time.perf_counter()
        _time(lambda: call(compiled), x, [], 1, 1)
        build = time.perf_counter() - t0
        times = _time(lambda: call(compiled), x, list(module.parameters()), repeats, warmup)
        print(_row(f"{name} [compiled in {build:.0f} s]", times, base), flush=True)


def bench_conv(device: torch.device, b: int, c: int, s: int, repeats: int, warmup: int, title: str,
               cases: list[tuple[str, nn.Module]]) -> None:
    x = torch.randn(b, c, s, s, device=device, requires_grad=True)
    print(f"\n{title}, input ({b}, {c}, {s}, {s}) float32 on {device}: forward+backward, ratio to Conv2d")
    base = None
    for name, module in cases:
        module.to(device)
        params = list(module.parameters())
        times = _time(lambda: module(x), x, params, repeats, warmup)
        print(_row(name, times, base), flush=True)
        if base is None:
            base = statistics.fmean(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--lc-channels", type=int, default=32, help="LocallyConnected2d has H*W times a conv's weights")
    ap.add_argument("--lc-size", type=int, default=28)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time the pooling layers under torch.compile")
    args = ap.parse_args()
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"))
    b, c, s, r, w = args.batch, args.channels, args.size, args.repeats, args.warmup
    lc_c, lc_s = args.lc_channels, args.lc_size
    for device in devices:
        torch.manual_seed(0)
        bench_pooling(device, b, c, s, r, w, args.compile)
        bench_conv(device, b, c, s, r, w, "Convolution variants", [
            ("Conv2d(C, C, 3, padding=1) [torch]", nn.Conv2d(c, c, 3, padding=1)),
            ("DepthwiseSeparableConv2d(C, C, 3, padding=1)", DepthwiseSeparableConv2d(c, c, 3, padding=1)),
            ("MultiDilationConv2d(C, C, 3, (1, 2, 3))", MultiDilationConv2d(c, c, 3)),
            ("UpsampleConv2d(C, C, 3) [4x the output pixels]", UpsampleConv2d(c, c, 3)),
        ])
        bench_conv(device, b, lc_c, lc_s, r, w, "Locally connected", [
            ("Conv2d(C, C, 3, padding=1) [torch]", nn.Conv2d(lc_c, lc_c, 3, padding=1)),
            ("LocallyConnected2d(C, C, 3, padding=1)", LocallyConnected2d(lc_c, lc_c, lc_s, 3, padding=1)),
        ])


if __name__ == "__main__":
    main()

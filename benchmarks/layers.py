"""Forward + backward time of cnnkit's pooling and convolution layers next to torch baselines.

Pooling layers are compared with ``max_pool2d`` on the same input, convolution variants with a plain
``Conv2d`` of the same shape, every ratio measured in the same run. Times are wall-clock ms per
forward+backward (CUDA: synchronized), mean ± std over ``--repeats`` runs after ``--warmup`` runs.

    python benchmarks/layers.py                 # CPU, and CUDA when present
    python benchmarks/layers.py --device cpu --repeats 5 --batch 8
    python benchmarks/layers.py --compile       # also the pooling layers under torch.compile
    python benchmarks/layers.py --device cpu --threads 1 --only pool --repeats 9   # pooling, 1 thread
    python benchmarks/layers.py --dtype bfloat16 # the same in bf16

Pooling arms are interleaved (each round times every arm once) and the ratio to ``max_pool2d`` is the
median of the per-round ratios, with its quartiles: robust to the load of a shared machine. The
"before:" rows are the plain autograd formulations the fused paths replaced, timed in the same rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
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
from cnnkit.layers.pooling import _lp_pool2d_plain, _softmax_pool2d_windows
from cnnkit.layers.stochastic_pool import _probability_weighting


def _once(fn: Callable[[], Tensor], x: Tensor, params: list[Tensor]) -> float:
    cuda = x.device.type == "cuda"
    x.grad = None
    for p in params:
        p.grad = None
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    out.float().backward(torch.ones_like(out, dtype=torch.float32))
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3


def _time(fn: Callable[[], Tensor], x: Tensor, params: list[Tensor], repeats: int, warmup: int) -> list[float]:
    return [t for i, t in enumerate(_once(fn, x, params) for _ in range(warmup + repeats)) if i >= warmup]


def _row(name: str, times: list[float], base: float | None) -> str:
    mean = statistics.fmean(times)
    std = statistics.stdev(times) if len(times) > 1 else 0.0
    ratio = f"{mean / base:6.2f}x" if base else "  1.00x (baseline)"
    return f"  {name:<44} {mean:9.2f} ± {std:7.2f} ms  {ratio}"


def _quartiles(v: list[float]) -> tuple[float, float, float]:
    if len(v) < 2:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


def _interleaved(cases: list[tuple[str, Callable[[], Tensor], list[Tensor]]], x: Tensor, repeats: int,
                 warmup: int) -> None:
    """Time every arm once per round, round after round, and print each arm's ratio to the first one.

    Under load (a shared machine) the time of one call swings by 2x; the arms of one round see about
    the same load, so the median over rounds of the per-round ratio is the steady figure.
    """
    for _ in range(warmup):
        for _, fn, params in cases:
            _once(fn, x, params)
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for arm, (_, fn, params) in zip(times, cases, strict=True):
            arm.append(_once(fn, x, params))
    print(f"  {'layer':<48} {'median ms':>9} {'mean ± std ms':>19}  ratio to first: median [quartiles]")
    for (name, _, _), arm in zip(cases, times, strict=True):
        ratios = [t / b for t, b in zip(arm, times[0], strict=True)]
        lo, med, hi = _quartiles(ratios)
        std = statistics.stdev(arm) if len(arm) > 1 else 0.0
        print(f"  {name:<48} {statistics.median(arm):9.1f} {statistics.fmean(arm):10.1f} ± {std:6.1f}"
              f"  {med:5.2f}x [{lo:.2f}, {hi:.2f}]", flush=True)


def _race_index(a: Tensor, k: int) -> Tensor:
    """The stochastic-pooling sampler before the fused one: an exponential race and ``max_pool2d`` indices."""
    race = torch.empty_like(a).exponential_().clamp_min_(torch.finfo(a.dtype).tiny)
    return F.max_pool2d(a / race, k, return_indices=True)[1]


def _reference_cases(x: Tensor, c: int) -> list[tuple[str, Callable[[], Tensor]]]:
    """The plain autograd formulations the fused paths replaced (also the paths torch.compile takes)."""
    def stochastic_race() -> Tensor:
        index = _race_index(x.detach(), 2)
        return x.flatten(2).gather(2, index.flatten(2)).view(index.shape)

    blur = BlurPool2d(c).to(x.device, x.dtype)
    return [
        ("  before: Lp p=3 3/1/1 via autograd", lambda: _lp_pool2d_plain(x, 3.0, (3, 3), (1, 1), (1, 1))),
        ("  before: Softmax 2x2 on a window copy", lambda: _softmax_pool2d_windows(x, (2, 2), (2, 2), (0, 0), 1.0)),
        ("  before: Softmax 3/2/1 on a window copy", lambda: _softmax_pool2d_windows(x, (3, 3), (2, 2), (1, 1), 1.0)),
        ("  before: Stochastic train, exponential race", stochastic_race),
        ("  before: Stochastic eval via autograd", lambda: _probability_weighting(x, (2, 2), (2, 2))),
        ("  before: MaxBlur with max_pool2d(2, 1)", lambda: blur(F.max_pool2d(x, 2, 1))),
    ]


def bench_pooling(device: torch.device, b: int, c: int, s: int, repeats: int, warmup: int, compile_: bool,
                  dtype: torch.dtype = torch.float32, only: str = "", reference: bool = True) -> None:
    x = torch.randn(b, c, s, s, device=device).relu_().to(dtype).requires_grad_()  # non-negative: stochastic pool
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
        ("Unpool2d(2) [4x the output]", Unpool2d(2), lambda m: m(x)),
        ("RoIPool(7, 1/4), 64 RoIs", RoIPool(7, 0.25), lambda m: m(x, rois.to(dtype))),
        ("AttentionPool(C, 4 heads) [has a C x 4C FFN]", AttentionPool(c, 4), lambda m: m(x)),
    ]
    for _, module, _ in cases:
        module.to(device, dtype)
    arms = [(name, (lambda m=module, f=call: f(m)), list(module.parameters())) for name, module, call in cases]
    if reference:
        arms += [(name, fn, []) for name, fn in _reference_cases(x, c)]
    arms = [arms[0]] + [a for a in arms[1:] if only.lower() in a[0].lower()]
    print(f"\nPooling, input ({b}, {c}, {s}, {s}) {str(dtype).removeprefix('torch.')} on {device}, "
          f"{torch.get_num_threads()} threads: forward+backward, arms interleaved over {repeats} rounds")
    _interleaved(arms, x, repeats, warmup)
    if not compile_:
        return
    base = statistics.median(_time(lambda: cases[0][2](cases[0][1]), x, [], repeats, warmup))
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
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="pooling input dtype")
    ap.add_argument("--only", choices=("all", "pool", "conv"), default="all")
    ap.add_argument("--filter", default="", help="only the pooling rows whose name contains this")
    ap.add_argument("--no-reference", action="store_true", help="skip the 'before:' rows")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"))
    b, c, s, r, w = args.batch, args.channels, args.size, args.repeats, args.warmup
    lc_c, lc_s = args.lc_channels, args.lc_size
    for device in devices:
        torch.manual_seed(0)
        if args.only in ("all", "pool"):
            bench_pooling(device, b, c, s, r, w, args.compile, getattr(torch, args.dtype), args.filter,
                          not args.no_reference)
        if args.only == "pool":
            continue
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

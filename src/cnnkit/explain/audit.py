"""Translation audit: how shift-invariant is a trained network's decision, and how shift-equivariant are
its feature maps?

Both use **circular** shifts (``torch.roll``): what leaves one border re-enters at the other, so no image
content is lost or invented and a network built from circularly padded stride-1 layers would be exactly
equivariant. The model's own layers usually pad with zeros (or not at all: a 'valid' convolution's output
is smaller than its input, so a circular shift of the input is not a circular shift of the output), so the
borders add an error even where the theory promises equivariance; that error is part of what is measured.

- **Consistency** (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again", Sec. 4.1): the
  probability that the top-1 class is the same for two independent random shifts of one image, each
  offset drawn uniformly from ``{-max_shift, ..., max_shift}`` per axis; ``shifts`` pairs per image.
- **Equivariance error** per convolution / pooling layer ``f`` with cumulative stride ``S`` (the product
  of the strides on the way from the input):
  ``||f(shift_s(x)) - shift_{s/S}(f(x))|| / ||f(x)||`` (Frobenius norms over the batch). When ``s`` is a
  multiple of ``S`` this is an exact comparison (``error_aligned``; the offsets used are reported, and may
  exceed ``max_shift`` when ``S > max_shift``). A one-pixel input shift is not a whole number of feature
  pixels when ``S > 1``; ``error_one_pixel`` compares against the nearer of the two neighbouring whole
  feature shifts (the smaller error): it is where aliasing from strided layers shows (the article's
  "layers with a stride greater than one ignore the Nyquist-Shannon sampling theorem").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from io import StringIO
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._text import safe_markup
from ..errors import CnnkitError
from ..runs import load_model, load_run_data, split_batches, split_loader
from ..runtime import resolve_device
from .attribution import no_leftover_hooks

__all__ = ["shift_batch", "shift_consistency", "equivariance_errors", "audit_model", "audit", "format_audit"]


def shift_batch(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Circularly shift image ``i`` of ``x`` ``(N, C, H, W)`` by ``dy[i]`` rows down and ``dx[i]`` columns right."""
    n, c, h, w = x.shape
    dev = x.device
    iy = (torch.arange(h, device=dev)[None, :] - dy.to(dev)[:, None]) % h  # (N, H)
    ix = (torch.arange(w, device=dev)[None, :] - dx.to(dev)[:, None]) % w  # (N, W)
    return x[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
             iy[:, None, :, None], ix[:, None, None, :]]


def _check(shifts: int, max_shift: int) -> None:
    if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 1:
        raise CnnkitError(f"Expected shifts >= 1. Received: shifts={shifts!r}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 1:
        raise CnnkitError(f"Expected max_shift >= 1. Received: max_shift={max_shift!r}")


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


@torch.no_grad()
def shift_consistency(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, shifts: int = 8, max_shift: int = 4, seed: int = 0
) -> dict[str, Any]:
    """Consistency and accuracy under random circular shifts (see the module docstring)."""
    _check(shifts, max_shift)
    gen = torch.Generator().manual_seed(seed)
    dev = _device(model)
    agree = total = correct0 = correct_shift = n_items = 0
    for x, y in batches:
        x, y = x.to(dev), torch.as_tensor(y).to(dev)
        n = len(x)
        if x.shape[-1] <= max_shift or x.shape[-2] <= max_shift:
            raise CnnkitError(f"Expected max_shift smaller than the input ({tuple(x.shape[-2:])}). Received: max_shift={max_shift}")
        correct0 += int((model(x).argmax(1) == y).sum())
        n_items += n
        for _ in range(shifts):
            d = torch.randint(-max_shift, max_shift + 1, (4, n), generator=gen)
            p1 = model(shift_batch(x, d[0], d[1])).argmax(1)
            p2 = model(shift_batch(x, d[2], d[3])).argmax(1)
            agree += int((p1 == p2).sum())
            correct_shift += int((p1 == y).sum())
            total += n
    if n_items == 0:
        raise CnnkitError("nothing to audit: the data split is empty")
    return {
        "consistency": agree / total,
        "accuracy": correct0 / n_items,
        "accuracy_shifted": correct_shift / total,
        "n_images": n_items,
        "n_pairs": total,
    }


_SPATIAL_RE = re.compile(r"conv|pool|subsampl", re.IGNORECASE)


def _is_spatial_layer(m: nn.Module) -> bool:
    """Convolutions and poolings (LeNet's trainable subsampling included); global/adaptive pools, whose
    output no longer has a spatial grid to shift, are not."""
    name = type(m).__name__
    return bool(_SPATIAL_RE.search(name)) and "Global" not in name and "Adaptive" not in name


def _local_stride(m: nn.Module, h_in: int, h_out: int) -> int:
    s = getattr(m, "stride", None)
    if isinstance(s, (tuple, list)) and s:
        s = s[0]
    if isinstance(s, int) and s >= 1:
        return s
    # No stride attribute: infer it from the sizes (a 5x5 'valid' convolution, 14 -> 10, rounds to 1).
    return max(1, round(h_in / max(h_out, 1)))


def _trace(model: nn.Module, x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Outputs and cumulative strides of the outermost conv/pool layers for input ``x``.

    Every module is hooked to follow the stride along the tensors: a module's output stride is its input's
    stride (looked up by tensor identity) times its own stride. Hooks fire innermost first, so an output
    already produced by a child (the last layer of a Sequential, an in-place activation) keeps the stride
    the child gave it.
    """
    modules = dict(model.named_modules())
    spatial = {n for n, m in modules.items() if n and _is_spatial_layer(m)}
    # Outermost only: a composite (e.g. a conv block class) is reported once, not again for its parts.
    report = {n for n in spatial if not any(n.startswith(p + ".") for p in spatial)}
    stride_of: dict[int, int] = {id(x): 1}
    record: dict[str, dict[str, Any]] = {}
    last = [1]
    alive: list[torch.Tensor] = []  # keeps traced outputs alive so their ids are not reused

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
            if not isinstance(out, torch.Tensor) or out.ndim != 4 or not inputs or not isinstance(inputs[0], torch.Tensor):
                return
            inp = inputs[0]
            if id(out) in stride_of:
                s = stride_of[id(out)]
            else:
                # Unknown input (made by a functional op between modules): the last traced stride.
                s_in = stride_of.get(id(inp), last[0])
                s = s_in * (_local_stride(m, inp.shape[-2], out.shape[-2]) if inp.ndim == 4 else 1)
                stride_of[id(out)] = s
                alive.append(out)
            last[0] = s
            if name in report:
                record[name] = {"out": out.detach(), "stride": s, "type": type(m).__name__}
        return hook

    with no_leftover_hooks(model):
        handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items() if n]
        try:
            model(x)
        finally:
            for h in handles:
                h.remove()
    # in forward order (dicts keep insertion order; hooks fired in execution order)
    return record


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@torch.no_grad()
def equivariance_errors(
    model: nn.Module, x: torch.Tensor, *, shifts: int = 8, max_shift: int = 4, seed: int = 0
) -> list[dict[str, Any]]:
    """Per conv/pool layer: cumulative stride, aligned-shift error and one-pixel-shift error (module docstring)."""
    _check(shifts, max_shift)
    dev = _device(model)
    x = x.to(dev)
    ref = _trace(model, x)
    gen = torch.Generator().manual_seed(seed)
    h, w = x.shape[-2:]
    results: list[dict[str, Any]] = []
    by_stride: dict[int, list[str]] = {}
    for name, r in ref.items():
        by_stride.setdefault(r["stride"], []).append(name)
    errs: dict[str, dict[str, Any]] = {n: {"aligned": [], "offsets": [], "one_pixel": None} for n in ref}
    for s, names in by_stride.items():
        k_max = max(1, max_shift // s)
        for _ in range(shifts):
            while True:
                ky, kx = (int(v) for v in torch.randint(-k_max, k_max + 1, (2,), generator=gen))
                if ky or kx:
                    break
            dy, dx = ky * s, kx * s
            if abs(dy) >= h or abs(dx) >= w:
                continue
            shifted = _trace(model, torch.roll(x, (dy, dx), dims=(-2, -1)))
            for n in names:
                if n in shifted and shifted[n]["out"].shape == ref[n]["out"].shape:
                    errs[n]["aligned"].append(_rel_err(shifted[n]["out"], torch.roll(ref[n]["out"], (ky, kx), dims=(-2, -1))))
                    errs[n]["offsets"].append([dy, dx])
        if s > 1:
            shifted = _trace(model, torch.roll(x, (0, 1), dims=(-2, -1)))
            for n in names:
                if n in shifted:
                    errs[n]["one_pixel"] = min(
                        _rel_err(shifted[n]["out"], torch.roll(ref[n]["out"], (0, k), dims=(-2, -1))) for k in (0, 1)
                    )
    for name, r in ref.items():
        e = errs[name]
        aligned = sum(e["aligned"]) / len(e["aligned"]) if e["aligned"] else None
        results.append({
            "layer": name,
            "type": r["type"],
            "stride": r["stride"],
            "shape": list(r["out"].shape[1:]),
            "error_aligned": aligned,
            "aligned_offsets": e["offsets"],
            # For stride 1 every shift is aligned, so the one-pixel error is the aligned error.
            "error_one_pixel": e["one_pixel"] if r["stride"] > 1 else aligned,
        })
    return results


def audit_model(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    shifts: int = 8,
    max_shift: int = 4,
    seed: int = 0,
    equivariance_images: int = 256,
) -> dict[str, Any]:
    """Consistency over all ``batches`` plus feature-map equivariance errors on the first
    ``equivariance_images`` images."""
    _check(shifts, max_shift)
    was_training = model.training
    model.eval()
    kept: list[torch.Tensor] = []
    n_kept = 0

    def tee() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal n_kept
        for x, y in batches:
            if n_kept < equivariance_images:
                kept.append(x[: equivariance_images - n_kept].cpu())
                n_kept += len(kept[-1])
            yield x, y

    try:
        result = shift_consistency(model, tee(), shifts=shifts, max_shift=max_shift, seed=seed)
        layers = equivariance_errors(model, torch.cat(kept), shifts=shifts, max_shift=max_shift, seed=seed) if kept else []
    finally:
        model.train(was_training)
    return {"shifts": shifts, "max_shift": max_shift, "shift_mode": "circular", "seed": seed, **result, "layers": layers}


def audit(
    run_dir: str | Path,
    *,
    shifts: int = 8,
    max_shift: int = 4,
    data: str | None = None,
    limit: int | None = None,
    split: str = "test",
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """Translation audit of a run folder's model on a split of its data (``limit``: first N images)."""

    _check(shifts, max_shift)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise CnnkitError(f"Expected limit >= 1. Received: limit={limit!r}")
    loaded = load_model(run_dir, device=resolve_device(device))
    run = load_run_data(run_dir, loaded, data=data)
    loader = split_loader(run, split)
    batches = split_batches(loader, loaded.preprocessing, batch_size=int(run.cfg.data.eval_batch_size), limit=limit)
    result = audit_model(loaded.model, batches, shifts=shifts, max_shift=max_shift, seed=seed)
    result.update({"run_dir": str(run_dir), "data": run.cfg.data.name, "split": split})
    return result


def format_audit(result: dict[str, Any]) -> str:
    """The audit as text tables."""


    from rich.console import Console  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)
    from rich.table import Table  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)


    # Layer names and types come from a run's model, which may be someone else's: sanitised, and escaped
    # so that "[...]" is text rather than rich markup.
    buf = StringIO()
    con = Console(file=buf, width=120, force_terminal=False, color_system=None)
    t = Table(title=f"Shift consistency ({safe_markup(result['shift_mode'], 40)} shifts up to {result['max_shift']} px, "
                    f"{result['shifts']} pairs per image, n={result['n_images']})", min_width=70)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("consistency P(top-1 unchanged)", f"{result['consistency']:.4f}")
    t.add_row("accuracy (unshifted)", f"{result['accuracy']:.4f}")
    t.add_row("accuracy (shifted)", f"{result['accuracy_shifted']:.4f}")
    con.print(t)
    if result.get("layers"):
        lt = Table(title="Feature-map equivariance error ||f(shift x) - shift f(x)|| / ||f(x)||")
        for col in ("layer", "type", "stride", "shape", "aligned shift", "1-pixel shift"):
            lt.add_column(col, justify="left" if col in ("layer", "type") else "right")
        for r in result["layers"]:
            fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            lt.add_row(safe_markup(r["layer"], 80), safe_markup(r["type"], 80), safe_markup(r["stride"], 40), "x".join(map(str, r["shape"])),
                       fmt(r["error_aligned"]), fmt(r["error_one_pixel"]))
        con.print(lt)
    return buf.getvalue().rstrip("\n")

"""Inference backends: the routes a trained model's forward pass can take, and ``auto``, which times the
routes on the caller's own batch and keeps the fastest one that agrees with the reference.

Routes (every torch route runs under :func:`torch.inference_mode`, so no autograd bookkeeping):

- ``"torch"``: eager fp32, NCHW. The reference every other route is checked against.
- ``"torch-cl"``: eager fp32 with the model and its input in channels-last (NHWC) memory, the layout
  oneDNN's convolutions run natively; NCHW convs pay a reorder around each call.
- ``"torch-bf16"``: channels-last plus bf16 autocast (Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep
  Learning Training", arXiv:1905.12322: fp32's 8-bit exponent with a 7-bit mantissa, so no loss scaling,
  but about 3 significant digits). On CPUs with AVX-512 BF16 or AMX this doubles matmul throughput.
- ``"torch-compile"``: :func:`torch.compile` (Ansel et al. 2024, "PyTorch 2", ASPLOS) with inductor's
  ``freezing``, which folds the weights into the graph as constants (conv + BN folded, weights pre-packed
  for oneDNN). Compiling takes seconds to a minute per batch shape, so it runs only when asked for.
- ``"onnxruntime"``: the ONNX graph ``cnnkit export`` writes (``RUN/model.onnx``), run by onnxruntime's
  CPU provider with as many threads as torch uses.

``auto`` (:func:`select_backend`): each candidate route runs the probe batch once (warm-up), a route whose
top-1 differs from ``"torch"`` on any item of the probe is dropped (outputs that are not class scores must
agree to ``rtol=1e-3`` instead, which bf16 does not), then the survivors are timed in interleaved rounds
(so a change of machine load hits every route alike) and the one with the fastest call wins. The choice
is cached per process for the model, batch shape and thread count, so a server probes once.

Limits: the probe is a sample. A bf16 route that keeps every top-1 on the probe can still flip an item
elsewhere whose top two scores are closer than bf16's rounding; callers that report accuracy
(``evaluate``) therefore let ``auto`` choose among the fp32 routes only (:data:`EXACT_ROUTES`), whose
outputs differ from the reference by float rounding order alone.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CnnkitError, did_you_mean
from ..runtime import autocast_context

__all__ = [
    "ROUTES", "BACKENDS", "AUTO_ROUTES", "EXACT_ROUTES", "Backend", "LazyBackend", "check_backend",
    "make_backend", "select_backend", "run_onnx_source", "run_backend", "clear_backend_cache",
]

ROUTES = ("torch", "torch-cl", "torch-bf16", "torch-compile", "onnxruntime")
BACKENDS = ("auto", *ROUTES)
# torch-compile is left out of auto: its compile time (seconds to a minute per batch shape on a laptop CPU)
# is more than a predict or evaluate call saves; a long-lived process can pass it in `routes`.
AUTO_ROUTES = ("torch", "torch-cl", "torch-bf16", "onnxruntime")
EXACT_ROUTES = ("torch", "torch-cl", "onnxruntime")
_APPROXIMATE = {"torch-bf16"}
_PROBE_BUDGET_S = 1.0  # timing stops after this many seconds once every route has run _MIN_ROUNDS times
_MIN_ROUNDS, _MAX_ROUNDS = 3, 50
_CHOICES: dict[tuple[Any, ...], str] = {}  # auto's choices in this process (see select_backend)


@dataclass
class Backend:
    """A route's forward pass: ``backend(x)`` returns ``model(x)``'s fp32 outputs on ``x``'s device.

    ``probe`` holds what ``auto`` measured: ``{"seconds": {route: fastest s}, "rejected": {route: why},
    "skipped": {route: why}, "cached": bool}``; None for a route asked for by name.
    """

    name: str
    run: Callable[[torch.Tensor], torch.Tensor]
    probe: dict[str, Any] | None = field(default=None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)

    def describe(self) -> dict[str, Any]:
        """JSON-able: the route and, for ``auto``, its probe."""
        return {"name": self.name, "probe": self.probe}


class LazyBackend:
    """A backend chosen on the first batch it is called with (that batch is the probe), then reused.

    ``evaluate`` and ``predict`` stream their batches; this lets them probe on real data without reading
    ahead. ``chosen`` is None until the first call.
    """

    def __init__(self, choose: Callable[[torch.Tensor], Backend]) -> None:
        self._choose = choose
        self.chosen: Backend | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.chosen is None:
            self.chosen = self._choose(x)
        return self.chosen(x)


def check_backend(name: str) -> str:
    """``name`` if it is a backend name, else a :class:`CnnkitError` with close matches."""
    if name not in BACKENDS:
        raise CnnkitError(f"unknown backend {name!r}{did_you_mean(str(name), BACKENDS)}; choose one of {', '.join(BACKENDS)}")
    return name


def clear_backend_cache() -> None:
    """Forget ``auto``'s choices (they are kept for the life of the process)."""
    _CHOICES.clear()


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _torch_route(model: nn.Module, *, channels_last: bool, bf16: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    device = _device_of(model)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast_context("bf16" if bf16 else "fp32", device):
            out = model(x).float()
        # An inference tensor refuses in-place updates outside inference mode; callers get a plain one.
        return out.clone()

    return run


def _compiled_route(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    device = _device_of(model)
    # options= are inductor config patches for this compile only; the process-wide config is untouched.
    compiled = torch.compile(model, options={"freezing": True})

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            try:
                out = compiled(x.to(device)).float()
            except Exception as exc:  # dynamo/inductor raise many types; the user needs one line
                text = str(exc).strip().splitlines()
                raise CnnkitError(f"torch.compile failed: {text[0][:300] if text else type(exc).__name__}") from None
        return out.clone()

    return run


def _onnx_route(source: str | Path | bytes, threads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnkitError("the onnxruntime backend needs onnxruntime; install it with: pip install 'cnnkit[export]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # the same thread count as torch, so the comparison is fair
    opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types; one line for the user
        where = "the exported graph" if isinstance(source, bytes) else str(source)
        raise CnnkitError(f"onnxruntime cannot load {where}: {str(exc).strip().splitlines()[0][:300]}") from None
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {name: x.detach().cpu().float().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.device)

    return run


def make_backend(
    name: str, model: nn.Module, *, onnx: str | Path | bytes | None = None, threads: int | None = None,
    _channels_last_model: nn.Module | None = None,
) -> Backend:
    """The route ``name`` (one of :data:`ROUTES`) for ``model`` (in eval mode); ``onnx`` is the exported
    graph (a path or its bytes) for ``"onnxruntime"``. ``model`` itself is never changed: channels-last
    routes run a copy.

    Raises:
        CnnkitError: an unknown name, ``"onnxruntime"`` without ``onnx`` or without onnxruntime installed.
    """
    check_backend(name)
    if name == "auto":
        raise CnnkitError("make_backend builds one route; use select_backend for auto")
    model.eval()
    if name == "torch":
        return Backend(name, _torch_route(model, channels_last=False, bf16=False))
    if name == "torch-compile":
        return Backend(name, _compiled_route(model))
    if name == "onnxruntime":
        if onnx is None:
            raise CnnkitError("the onnxruntime backend needs the exported model; write it with: cnnkit export RUN")
        return Backend(name, _onnx_route(onnx, threads or torch.get_num_threads()))
    cl = _channels_last_model or _channels_last_copy(model)
    return Backend(name, _torch_route(cl, channels_last=True, bf16=name == "torch-bf16"))


def _channels_last_copy(model: nn.Module) -> nn.Module:
    # torch's stubs omit Module.to's memory_format keyword, which it accepts
    return copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _agrees(ref: torch.Tensor, out: torch.Tensor, approximate: bool) -> str | None:
    """None when ``out`` may stand in for ``ref``, else why not."""
    if out.shape != ref.shape:
        return f"output shape {tuple(out.shape)} instead of {tuple(ref.shape)}"
    if not torch.isfinite(out).all() and torch.isfinite(ref).all():
        return "non-finite outputs"
    if ref.ndim == 2 and ref.shape[1] >= 2:  # class scores: the decision is the top-1
        flipped = int((out.argmax(1) != ref.argmax(1)).sum())
        return f"top-1 differs on {flipped} of {len(ref)} probe items" if flipped else None
    # Not class scores (regression, maps): agree in value. bf16 (~3 digits) is not eligible here.
    if approximate or not torch.allclose(out, ref, rtol=1e-3, atol=1e-4):
        return f"outputs differ by up to {float((out - ref).abs().max()):.3g}"
    return None


def _time_routes(runs: dict[str, Backend], x: torch.Tensor) -> dict[str, float]:
    """Seconds per call of each route on ``x``: the fastest of interleaved rounds (warm-up done by the
    caller). The minimum, not the median: on a shared machine other jobs only ever add time to a call, so
    the fastest call is the best estimate of what the route costs (as :mod:`timeit` advises)."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    start = time.perf_counter()
    for r in range(_MAX_ROUNDS):
        for k, b in runs.items():
            t = time.perf_counter()
            b(x)
            times[k].append(time.perf_counter() - t)
        if r + 1 >= _MIN_ROUNDS and time.perf_counter() - start > _PROBE_BUDGET_S:
            break
    return {k: min(v) for k, v in times.items()}


def select_backend(
    model: nn.Module,
    probe: torch.Tensor,
    *,
    backend: str = "auto",
    routes: Sequence[str] = AUTO_ROUTES,
    onnx: str | Path | bytes | None = None,
    skipped: dict[str, str] | None = None,
    cache_key: Any = None,
) -> Backend:
    """The route ``backend`` names, or for ``"auto"`` the fastest of ``routes`` that agrees with
    ``"torch"`` on ``probe`` (a batch of real model input, of the shape the caller will run).

    Args:
        onnx: the exported graph for ``"onnxruntime"``; without it that route is skipped by ``auto``.
        skipped: routes the caller already knows cannot run, with the reason (kept in ``probe``).
        cache_key: identifies the model across calls (a run folder and its weights' mtime); with it the
            choice is remembered per process for this shape, dtype and thread count. None: no caching.

    Raises:
        CnnkitError: an unknown backend or route, or a named route that cannot run here.
    """
    check_backend(backend)
    for r in routes:
        if r not in ROUTES:
            raise CnnkitError(f"unknown route {r!r}{did_you_mean(str(r), ROUTES)}; choose from {', '.join(ROUTES)}")
    model.eval()
    if backend != "auto":
        return make_backend(backend, model, onnx=onnx)
    device = _device_of(model)
    skip = dict(skipped or {})
    candidates = [r for r in dict.fromkeys(("torch", *routes)) if r not in skip]
    if onnx is None and "onnxruntime" in candidates:
        candidates.remove("onnxruntime")
        skip["onnxruntime"] = "no exported model (write it with: cnnkit export RUN)"
    if device.type != "cpu" and "onnxruntime" in candidates:
        candidates.remove("onnxruntime")  # the CPU provider only; a GPU model stays on its device
        skip["onnxruntime"] = f"runs on the CPU; the model is on {device}"
    if probe.ndim != 4:  # channels-last is a 4-D layout; other inputs (series, clips) keep their own
        for r in ("torch-cl", "torch-bf16"):
            if r in candidates:
                candidates.remove(r)
                skip[r] = f"channels-last needs 4-D input; this model takes {probe.ndim}-D"
    key = None
    if cache_key is not None:
        key = (cache_key, tuple(probe.shape), probe.dtype, torch.get_num_threads(), tuple(candidates), str(device))
        if key in _CHOICES:
            name = _CHOICES[key]
            chosen = make_backend(name, model, onnx=onnx)
            chosen.probe = {"cached": True, "seconds": {}, "rejected": {}, "skipped": skip}
            return chosen
    cl = None
    if any(r in candidates for r in ("torch-cl", "torch-bf16")):
        cl = _channels_last_copy(model)  # one copy for both routes
    runs: dict[str, Backend] = {}
    rejected: dict[str, str] = {}
    ref = None
    for r in candidates:
        try:
            b = make_backend(r, model, onnx=onnx, _channels_last_model=cl)
            out = b(probe)  # also the warm-up: oneDNN primitives, onnxruntime's arena, compilation
        except CnnkitError as exc:
            rejected[r] = str(exc)
            continue
        if ref is None:  # "torch" comes first and is the reference
            ref = out
        else:
            why = _agrees(ref, out, r in _APPROXIMATE)
            if why is not None:
                rejected[r] = why
                continue
        runs[r] = b
    seconds = _time_routes(runs, probe) if len(runs) > 1 else {k: float("nan") for k in runs}
    name = min(runs, key=lambda k: seconds[k]) if len(runs) > 1 else "torch"
    if key is not None:
        _CHOICES[key] = name
    chosen = runs[name]
    chosen.probe = {"cached": False, "seconds": seconds, "rejected": rejected, "skipped": skip,
                    "batch": list(probe.shape), "threads": torch.get_num_threads()}
    return chosen


def run_onnx_source(run_dir: str | Path, *, model: nn.Module | None = None, input_shape: Sequence[int] | None = None,
                    export: bool = False) -> tuple[str | Path | bytes | None, str | None]:
    """The ONNX graph for a run folder's model: ``RUN/model.onnx`` when it is newer than the weights,
    else (``export=True``, a route asked for by name) the model exported in memory, nothing written.

    Returns:
        ``(path or bytes, None)``, or ``(None, why not)``.
    """
    root = Path(run_dir)
    path, weights = root / "model.onnx", root / "model.safetensors"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None, "onnxruntime is not installed (pip install 'cnnkit[export]')"
    if path.is_file() and weights.is_file() and path.stat().st_mtime_ns >= weights.stat().st_mtime_ns:
        return path, None
    why = f"{path} is older than the weights" if path.is_file() else f"no {path}"
    if not export or model is None or not input_shape:
        return None, f"{why} (write it with: cnnkit export {root})"
    from ..export.onnx import export_bytes  # here, not at the top: it imports onnx, needed only on this path

    return export_bytes(model, tuple(int(s) for s in input_shape), what=str(root)), None


def run_backend(loaded: Any, *, backend: str = "auto", exact: bool = False) -> LazyBackend:
    """The backend for a loaded run folder (:func:`cnnkit.runs.load_model`), chosen on its first batch.

    This is the entry point for callers that hold a run (``predict``, ``evaluate``, a server): ``auto``
    probes :data:`AUTO_ROUTES`, or :data:`EXACT_ROUTES` with ``exact`` (callers that report metrics, or
    whose outputs are not class scores), caching the choice per process for the run's weights.
    """
    check_backend(backend)
    model = loaded.model.eval()
    shape = loaded.info.get("input_shape") or (loaded.preprocessing or {}).get("input_shape")
    routes = EXACT_ROUTES if exact else AUTO_ROUTES
    weights = Path(loaded.path) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else None

    def choose(probe: torch.Tensor) -> Backend:
        onnx, why = None, None
        if backend in ("auto", "onnxruntime"):
            onnx, why = run_onnx_source(loaded.path, model=model, input_shape=shape, export=backend == "onnxruntime")
            if backend == "onnxruntime" and onnx is None:
                raise CnnkitError(f"backend onnxruntime: {why}")
        return select_backend(model, probe, backend=backend, routes=routes, onnx=onnx,
                              skipped={"onnxruntime": why} if why else None,
                              cache_key=(str(Path(loaded.path).resolve()), stamp))

    return LazyBackend(choose)

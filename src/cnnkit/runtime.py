"""Process-wide runtime settings for a run: device, CPU threads, determinism, precision contexts.

Deterministic mode (``train.deterministic: true``) sets ``torch.use_deterministic_algorithms(True)`` and
turns off cuDNN autotuning. Its limits: results are bit-identical only for the same machine type, torch
version, thread count, batch size and world size; some CUDA ops have no deterministic implementation and
then raise; on CUDA it also needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set here when absent) and runs slower.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from .errors import ConfigError

__all__ = ["physical_cores", "resolve_device", "setup_runtime", "autocast_context", "runtime_settings"]


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-thread siblings counted once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores: set[str] = set()
    for cpu in cpus:
        sib = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(sib.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """The one place a device name becomes a :class:`torch.device`, validated.

    ``"auto"`` (or None) is CUDA when available, else the CPU; a bare ``"cuda"`` becomes this process's GPU
    (``cuda:<local_rank>``, one GPU per process under torchrun). Unknown names and CUDA without a GPU raise
    :class:`~cnnkit.errors.ConfigError`.
    """
    if name is None or str(name) == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {str(name)!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(name)!r} requested but no CUDA device is available; use cpu or auto")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    elif device.type not in ("cpu", "mps", "xpu"):
        raise ConfigError(f"unknown device {str(name)!r}; use auto, cpu or cuda[:N]")
    return device


def setup_runtime(*, threads: int | None, deterministic: bool, device: torch.device) -> None:
    """Thread count (default: physical cores), determinism, TF32 matmuls on CUDA when not deterministic."""
    n = threads or physical_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        if torch.are_deterministic_algorithms_enabled():  # the setter imports dynamo (~1.4 s): only when needed
            torch.use_deterministic_algorithms(False)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True


@contextlib.contextmanager
def runtime_settings(*, threads: int | None, deterministic: bool, device: torch.device) -> Iterator[None]:
    """:func:`setup_runtime` for the duration of a ``with`` block, then the caller's settings back.

    A library must not leave process-wide torch state changed once a call returns (a notebook that calls
    ``fit`` with ``train.threads: 1`` keeps its own thread count afterwards).
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), cudnn.benchmark,
             cudnn.deterministic, matmul.allow_tf32, cudnn.allow_tf32, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    setup_runtime(threads=threads, deterministic=deterministic, device=device)
    try:
        yield
    finally:
        n, det, bench, cdet, tf32, ctf32, ws = saved
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        if torch.are_deterministic_algorithms_enabled() != det:
            torch.use_deterministic_algorithms(det)
        cudnn.benchmark, cudnn.deterministic, matmul.allow_tf32, cudnn.allow_tf32 = bench, cdet, tf32, ctf32
        if ws is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


@contextlib.contextmanager
def _null() -> Iterator[None]:
    yield


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CPU (AMX/AVX-512 BF16 where present) or CUDA; fp16 autocast on CUDA only."""
    if precision == "fp32":
        return _null()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type != "cuda":
        raise ConfigError("config key train.precision: fp16 needs a CUDA device; use bf16 on CPU")
    return torch.autocast("cuda", dtype=torch.float16)

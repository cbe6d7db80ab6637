"""DistributedDataParallel plumbing: process-group setup from torchrun's environment, and small collectives.

``torchrun --nproc_per_node=N -m cnnkit train CONFIG`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` then joins the group with gloo on CPU or NCCL
on CUDA (one GPU per process, ``cuda:LOCAL_RANK``). Without those variables everything is a no-op with
rank 0 of 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ..errors import CnnkitError

__all__ = [
    "broadcast_json",
    "DistInfo",
    "OtherRankFailed",
    "init_distributed",
    "shutdown_distributed",
    "all_reduce_sum",
    "broadcast_str",
    "barrier",
    "all_gather_tensor",
    "run_on_main",
]

T = TypeVar("T")


class OtherRankFailed(CnnkitError):
    """Raised on the ranks other than 0 when rank 0 failed at something all ranks wait on (rank 0 says why).

    ``rank`` tells the command line not to repeat a message that rank 0 prints.
    """

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.rank = rank


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment variables (no-op when absent)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, initialized_here=True)


def shutdown_distributed(info: DistInfo, *, together: bool = False) -> None:
    """Destroy the process group this process created.

    Args:
        together: every rank reached the same point (a finished run, or a stop all ranks agreed on), so
            they meet at a barrier first. gloo can abort a process ("terminate called without an active
            exception") whose peer tears the group down while pairs are still in flight. After an error on
            one rank a barrier could pair with a peer's pending collective, so it is skipped.
    """
    if info.initialized_here and dist.is_initialized():
        if together and info.enabled:
            try:
                dist.barrier()
            except RuntimeError:  # a peer already left; tear down regardless
                pass
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """In-place sum over ranks (identity for one process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_tensor(tensor: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """The same-shaped ``tensor`` from every rank, in rank order."""
    if not info.enabled:
        return [tensor]
    out = [torch.empty_like(tensor) for _ in range(info.world_size)]
    dist.all_gather(out, tensor)
    return out


def broadcast_json(value: Any, info: DistInfo, device: torch.device) -> Any:
    """Rank 0's JSON-able ``value`` on every rank (evaluation results, computed on rank 0 only)."""
    if not info.enabled:
        return value
    comm = device if device.type == "cuda" else torch.device("cpu")
    text = broadcast_str(json.dumps(value) if info.is_main else None, info, comm)
    return json.loads(text)


def broadcast_str(text: str | None, info: DistInfo, device: torch.device) -> str:
    """Rank 0's ``text`` on every rank (used for the run folder name, which carries a timestamp)."""
    if not info.enabled:
        return text or ""
    data = (text or "").encode("utf-8") if info.is_main else b""
    length = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(length, 0)
    buf = torch.zeros(int(length.item()), dtype=torch.uint8, device=device)
    if info.is_main:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, 0)
    return bytes(buf.cpu().tolist()).decode("utf-8")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def run_on_main(fn: Callable[[], T], info: DistInfo, device: torch.device) -> T | None:
    """``fn()`` on rank 0 only (a run-folder write); every rank then learns whether it failed.

    An error on rank 0 (a :class:`CnnkitError` such as a full disk, or a bug) is raised there, and
    :class:`OtherRankFailed` on the other ranks, so that no rank waits forever in a later collective for
    one that has gone. Also a barrier. One process: just ``fn()``.
    """
    if not info.enabled:
        return fn()
    error: Exception | None = None
    result = None
    if info.is_main:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, once the other ranks know
            error = exc
    flag = torch.tensor([0.0 if error is None else 1.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.SUM)
    if error is not None:
        raise error
    if flag.item() > 0:
        raise OtherRankFailed("rank 0 could not write the run folder (its message says why)", info.rank)
    return result

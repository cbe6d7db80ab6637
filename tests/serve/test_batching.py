"""The request batcher: concurrent inputs run together up to max_batch, a lone one waits at most
max_wait_s, errors reach only the inputs they belong to, and batched answers equal one-at-a-time ones."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path

import pytest
import torch

from cnnkit.serve import Batcher, load_served_models
from cnnkit.serve.models import predict_raw, probabilities


@pytest.fixture()
def pool():  # type: ignore[no-untyped-def]
    with concurrent.futures.ThreadPoolExecutor(1) as p:
        yield p


def _gather(b: Batcher, xs: list) -> list:
    async def main() -> list:
        return await asyncio.gather(*(b.submit(x) for x in xs), return_exceptions=True)

    return asyncio.run(main())


def test_batches_fill_up_to_max_batch(pool) -> None:  # type: ignore[no-untyped-def]
    b = Batcher(lambda xs: [x + 1 for x in xs], executor=pool, max_batch=8, max_wait_s=0.05)
    assert _gather(b, list(range(20))) == list(range(1, 21))
    assert b.batch_sizes == [8, 8, 4]
    off = Batcher(lambda xs: [x + 1 for x in xs], executor=pool, max_batch=1, max_wait_s=0.05)
    assert _gather(off, list(range(5))) == list(range(1, 6)) and off.batch_sizes == [1] * 5


def test_a_lone_request_waits_at_most_max_wait(pool) -> None:  # type: ignore[no-untyped-def]
    b = Batcher(lambda xs: xs, executor=pool, max_batch=64, max_wait_s=0.05)
    t = time.perf_counter()
    assert _gather(b, [7]) == [7]
    assert time.perf_counter() - t < 2.0 and b.batch_sizes == [1]


def test_errors_reach_only_their_own_requests(pool) -> None:  # type: ignore[no-untyped-def]
    def fn(xs: list) -> list:
        return [ValueError(f"bad {x}") if x % 2 else x for x in xs]

    got = _gather(Batcher(fn, executor=pool, max_batch=8, max_wait_s=0.01), [0, 1, 2, 3])
    assert got[0] == 0 and got[2] == 2 and str(got[1]) == "bad 1" and str(got[3]) == "bad 3"

    def boom(xs: list) -> list:
        raise RuntimeError("the whole batch failed")

    b = Batcher(boom, executor=pool, max_batch=8, max_wait_s=0.01)
    assert all(isinstance(e, RuntimeError) for e in _gather(b, [1, 2]))
    assert _gather(Batcher(lambda xs: xs, executor=pool), [5]) == [5]  # a new batcher on the same pool still works


def test_arguments_are_checked(pool) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="max_batch >= 1"):
        Batcher(lambda xs: xs, executor=pool, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_s >= 0"):
        Batcher(lambda xs: xs, executor=pool, max_wait_s=-1)


def test_grouped_preprocessing_equals_one_at_a_time(run_a: Path) -> None:
    m = next(iter(load_served_models([run_a]).values()))
    g = torch.Generator().manual_seed(0)
    raws = [torch.randint(0, 256, (1, 8, 8), generator=g, dtype=torch.uint8) for _ in range(3)]
    raws += [torch.rand((1, 12, 10), generator=g), torch.randint(0, 256, (3, 8, 8), generator=g, dtype=torch.uint8)]
    raws.append(torch.zeros((2, 8, 8), dtype=torch.uint8))  # 2 channels: cannot become the model's 1
    out = predict_raw(m, raws)
    for raw, got in zip(raws[:-1], out[:-1]):
        want = probabilities(m, m.to_input(raw)[None])[0]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert isinstance(out[-1], Exception) and "channels" in str(out[-1])

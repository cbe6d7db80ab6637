"""Dynamic request batching: inputs that arrive together run through the model as one batch.

A request's input waits in a queue; one worker per model takes the first waiting input, then every other
one already queued, then waits up to ``max_wait_s`` for more, up to ``max_batch`` in all, and runs the
batch on the model thread. While a batch runs, new requests queue up and form the next one, so under load
batches fill without any waiting, and a lone request waits at most ``max_wait_s``. ``max_batch=1`` is
one-request-at-a-time inference (the baseline ``benchmarks/serve.py`` compares against).

This is the scheme of TorchServe's ``batchSize`` / ``maxBatchDelay`` and Triton's dynamic batcher
(``max_queue_delay_microseconds``): one knob for latency, one for the batch size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Batcher"]


class Batcher:
    """Runs ``fn`` on the list of inputs waiting together, on ``executor``, batching concurrent calls.

    Args:
        fn: the batch function: a list of inputs -> one result per input, in order (a result that is an
            exception is raised to that input's caller alone); called on the executor's thread.
        executor: where ``fn`` runs; a single thread serializes everything that touches the models.
        max_batch: the largest batch (>= 1).
        max_wait_s: how long a batch waits for more inputs once its first one is there (>= 0).

    Example:
        >>> import asyncio, concurrent.futures
        >>> pool = concurrent.futures.ThreadPoolExecutor(1)
        >>> b = Batcher(lambda xs: [2 * x for x in xs], executor=pool, max_batch=8, max_wait_s=0.01)
        >>> async def main():
        ...     return await asyncio.gather(*(b.submit(i) for i in range(5)))
        >>> asyncio.run(main()), b.batch_sizes
        ([0, 2, 4, 6, 8], [5])
        >>> pool.shutdown()
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        executor: concurrent.futures.Executor,
        max_batch: int = 32,
        max_wait_s: float = 0.002,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"Expected max_batch >= 1. Received: max_batch={max_batch}")
        if not max_wait_s >= 0:
            raise ValueError(f"Expected max_wait_s >= 0. Received: max_wait_s={max_wait_s}")
        self.fn = fn
        self.executor = executor
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.batch_sizes: list[int] = []  # the size of every batch run (the last 10,000), for tests and stats
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ensure_worker(self) -> asyncio.Queue[tuple[Any, asyncio.Future[Any]]]:
        loop = asyncio.get_running_loop()
        # One worker per event loop (a test client may run each request on a fresh loop).
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        assert self._queue is not None
        return self._queue

    async def submit(self, x: Any) -> Any:
        """``fn``'s result for ``x``, run in a batch with whatever else is waiting."""
        queue = self._ensure_worker()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await queue.put((x, fut))
        return await fut

    async def _collect(self, queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]]) -> list[tuple[Any, asyncio.Future[Any]]]:
        items = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(items) < self.max_batch:
            try:
                items.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return items

    async def _run(self, queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect(queue)
            items = [(x, f) for x, f in items if not f.cancelled()]  # clients that went away
            if not items:
                continue
            self.batch_sizes = self.batch_sizes[-9_999:] + [len(items)]
            try:
                out = await loop.run_in_executor(self.executor, self.fn, [x for x, _ in items])
            except Exception as exc:  # the batch's error goes to each of its requests; the worker lives on
                for _, f in items:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, f), row in zip(items, out):
                if f.done():
                    continue
                if isinstance(row, BaseException):
                    f.set_exception(row)
                else:
                    f.set_result(row)

    async def aclose(self) -> None:
        """Stop the worker (at server shutdown)."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, RuntimeError):
                pass
        self._worker = None

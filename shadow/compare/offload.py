"""Comparisons too heavy for the event loop, run in worker processes.

Lifting, walking and explaining two replies is pure Python: a 2 MB listing returned in
another order costs 100-700 ms of CPU. On the loop, every client request waits that long;
in a thread, the comparison still holds the GIL (the loop gets it back only every switch
interval), so it runs in a process pool instead. A pair is sent there when the two bodies
together reach `inline_bytes` and differ; the two Replies and the compiled rules cross
as one pickle (bytes are copied once, no JSON is re-encoded), the ReplyDiff comes back. Workers start with the first heavy pair (about a second).

Bounds: at most `max_pending` comparisons queued or running (past it, the exchange is
skipped with reason `compare_queue_full`), each given `timeout` seconds (past it,
`compare_timeout`; the worker finishes it in the background). A worker that dies fails
only the comparisons it held (`compare_failed`) and the pool is rebuilt; any other
failure to run one is the verifier's own (`raised`), and that exchange is still concluded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

from shadow.tasks import cancelled
from shadow.compare.replies import ReplyDiff, compare_replies
from shadow.compare.rules import ReplyRules
from shadow.verdict import Reply

Done = Callable[[ReplyDiff | None, str], None]
WORKER_NICENESS = 10
"""Workers run at a lower CPU priority than the proxy: on a busy machine the event loop
is served first, and a backlog of comparisons waits (bounded, then cut) instead."""


class Offload:
    """The process pool heavy comparisons run in. `submit` never waits."""

    def __init__(self, *, inline_bytes: int = 32768, workers: int = 1, timeout: float = 10.0,
                 max_pending: int = 32,
                 raised: Callable[[str, BaseException], None] | None = None) -> None:
        self.inline_bytes = inline_bytes
        self.raised = raised or (lambda operation, exc: None)
        self.workers = workers
        self.timeout = timeout
        self.max_pending = max_pending
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def pending(self) -> int:
        """Comparisons queued or running in the pool."""
        return len(self._tasks)

    def wants(self, primary: Reply, shadow: Reply) -> bool:
        """True when this pair is heavy enough to leave the loop (and not trivially equal)."""
        size = len(primary.body) + len(shadow.body)
        return size >= self.inline_bytes and primary.body != shadow.body

    def _ensure_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=os.nice, initargs=(WORKER_NICENESS,))
        return self._pool

    def submit(self, primary: Reply, shadow: Reply, rules: ReplyRules, done: Done) -> None:
        """Compare off the loop; `done(diff, "")` on the loop when finished, or
        `done(None, reason)` when the comparison was cut."""
        loop = asyncio.get_running_loop()
        if len(self._tasks) >= self.max_pending:
            loop.call_soon(done, None, "compare_queue_full")
            return
        task = loop.create_task(self._run(primary, shadow, rules, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, primary: Reply, shadow: Reply, rules: ReplyRules, done: Done) -> None:
        pool = self._ensure_pool()
        try:
            future = asyncio.get_running_loop().run_in_executor(
                pool, compare_replies, primary, shadow, rules)
            result = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            done(None, "compare_timeout")
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            done(None, "compare_failed")
        except asyncio.CancelledError:
            done(None, "compare_cancelled")
            raise
        except Exception as exc:  # the pool could not run it at all: the pair still concludes
            self.raised("compare_offload", exc)
            done(None, "compare_failed")
        else:
            done(result, "")

    async def drain(self, deadline: float) -> bool:
        """Wait up to `deadline` seconds for the comparisons in the pool; True if none is left."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=deadline)
        return not self._tasks

    async def close(self) -> None:
        """Cancel what is waiting, and stop the workers."""
        await cancelled(*self._tasks)
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

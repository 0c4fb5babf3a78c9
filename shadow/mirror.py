"""The mirror lane: where all shadow work runs, bounded and off the request path.

A lane is a bounded queue served by a fixed set of worker tasks that the lane owns (the
event loop keeps only weak references to tasks, so nothing here is fire-and-forget).
`submit()` never waits: when the queue is full the job is dropped, counted, and its
`on_drop` callback told why. Every job runs under the lane's timeout; a failure inside a
job is the verifier's own failure and goes to the `raised` hook, never to a client.

An ordered lane (`workers=1`) runs its jobs one at a time in submission order: that is
the shadow's write lane in strict row mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shadow.tasks import cancelled

log = logging.getLogger("shadow.mirror")

Job = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class _Item:
    job: Job
    on_drop: Callable[[str], None] | None


class MirrorLane:
    """A bounded queue of shadow jobs and the workers that run them."""

    def __init__(self, *, name: str, queue_size: int, workers: int, timeout: float,
                 raised: Callable[[str, BaseException], None],
                 on_depth: Callable[[int], None] | None = None,
                 on_dropped: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._workers_wanted = workers
        self._workers: list[asyncio.Task[None]] = []
        self._raised = raised
        self._on_depth = on_depth or (lambda depth: None)
        self._on_dropped = on_dropped or (lambda reason: None)
        self._busy = 0
        self._closing = False

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def busy(self) -> int:
        return self._busy

    def start(self) -> None:
        for index in range(self._workers_wanted):
            task = asyncio.get_running_loop().create_task(
                self._work(), name=f"shadow-lane-{self.name}-{index}")
            self._workers.append(task)

    def submit(self, job: Job, *, on_drop: Callable[[str], None] | None = None) -> bool:
        """Queue a job without waiting. Returns False (and reports the drop) when the lane
        is full or closing."""
        reason = "closing" if self._closing else None
        if reason is None:
            try:
                self._queue.put_nowait(_Item(job, on_drop))
            except asyncio.QueueFull:
                reason = "queue_full"
        if reason is not None:
            self._on_dropped(reason)
            if on_drop is not None:
                on_drop(reason)
            return False
        self._on_depth(self._queue.qsize())
        return True

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            self._on_depth(self._queue.qsize())
            self._busy += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await item.job()
            except TimeoutError:
                self._on_dropped("timeout")
                if item.on_drop is not None:
                    self._call_drop(item, "timeout")
            except asyncio.CancelledError:  # running at the drain deadline: dropped too
                self._on_dropped("cancelled")
                if item.on_drop is not None:
                    self._call_drop(item, "cancelled")
                raise
            except Exception as exc:  # the verifier's own failure
                self._raised(f"lane_{self.name}", exc)
            finally:
                self._busy -= 1
                self._queue.task_done()

    def _call_drop(self, item: _Item, reason: str) -> None:
        try:
            item.on_drop(reason)  # type: ignore[misc]
        except Exception as exc:
            self._raised(f"lane_{self.name}_drop", exc)

    async def drain(self, deadline: float) -> bool:
        """Stop taking work, wait up to `deadline` seconds for queued and running jobs, then
        cancel what is left. Returns True when everything finished in time."""
        self._closing = True
        finished = True
        try:
            async with asyncio.timeout(deadline):
                await self._queue.join()
        except TimeoutError:
            finished = False
        await cancelled(*self._workers)
        self._workers.clear()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            self._on_dropped("shutdown")
            if item.on_drop is not None:
                self._call_drop(item, "shutdown")
        return finished

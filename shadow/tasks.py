"""Background tasks a part owns and must stop: the one way they are cancelled."""

from __future__ import annotations

import asyncio


async def cancelled(task: asyncio.Task | None) -> None:
    """Cancel `task` (if any) and wait until it has ended; its cancellation is not an
    error of the caller's."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

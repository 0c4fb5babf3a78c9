"""Background tasks a part owns and must stop: the one way they are cancelled."""

from __future__ import annotations

import asyncio


async def cancelled(*tasks: asyncio.Task | None) -> None:
    """Cancel each of `tasks` (None is skipped) and wait until all have ended; their
    cancellation is not an error of the caller's."""
    owned = [task for task in tasks if task is not None]
    for task in owned:
        task.cancel()
    await asyncio.gather(*owned, return_exceptions=True)

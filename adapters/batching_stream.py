"""The worker's Faust streams, whose batches sleep until an event comes.

Faust's ``Stream.take_events`` wakes every ``within`` seconds to see whether its buffer holds anything: at
10 ms, 100 wakes a second for each agent that takes batches, idle or busy, at about 70 µs of CPU each on these
cores (mode's wait makes three tasks and a timer each time). Between two fetches of the embedded broker
(150 ms apart) nearly all of them find nothing. ``batches`` keeps take_events' buffer and acks; it waits for
the first event without a timeout, then gathers for at most ``within`` seconds or ``size`` events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from mode.utils.futures import notify


class BatchingStream(faust.Stream):
    async def batches(self, size: int, within: float) -> AsyncIterator[list[Any]]:
        """The stream's events, ``size`` at most at a time: those that came within ``within`` seconds of the
        first. Each is acknowledged once the block that took its batch is done, as take_events does."""
        events: list[Any] = []
        arrived, full, consumed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        consuming: asyncio.Future | None = None

        # Runs in the stream's passive drain, for each event as it comes.
        async def add_to_batch(value: Any) -> Any:
            nonlocal consuming
            try:
                if consuming is not None:
                    try:
                        await consuming
                    finally:
                        consuming = None
                if self.current_event is None:
                    raise RuntimeError("a batched stream found no current event")
                events.append(self.current_event)
                arrived.set()
                if len(events) >= size:
                    full.set()
                    consumed.clear()
                    await self.wait(consumed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.exception("Error adding to a batch: %r", exc)
                await self.crash(exc)
            return value

        enable_acks = self.enable_acks
        self.enable_acks = False
        self.add_processor(add_to_batch)
        self._enable_passive(aiter(self.channel))
        try:
            while not self.should_stop:
                if await self.wait_for_stopped(arrived):
                    break
                await self.wait_for_stopped(full, timeout=within)
                # What comes while the batch is taken waits for the next one.
                consuming = self.loop.create_future()
                taken = list(events)
                try:
                    yield taken
                finally:
                    events.clear()
                    arrived.clear()
                    full.clear()
                    for event in taken:
                        await self.ack(event)
                    notify(consuming)
                    consumed.set()
        finally:
            self.enable_acks = enable_acks
            self._processors.remove(add_to_batch)

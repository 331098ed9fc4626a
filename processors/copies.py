"""Copy orders -> copies: each made, stored and reported to the fan-in; a source that cannot be read fails
its copies, not the job."""

from __future__ import annotations

import asyncio

from adapters.courier import error_info
from adapters.objects import copy_key
from adapters.worker_app import WorkerApp
from media.uniquify import make_copy
from media.uniquify.source import DecodedSources
from schemas.messages import CopyMade, CopyOrder, CopyProgress
from schemas.topics import COPIES, COPY_TASKS

# Decoded pixels kept by a worker (3 bytes a pixel): seven 12 MP sources (36 MB each), three of 24 MP or
# one of 50 MP (150 MB). A larger source is decoded again for each of its copies.
DECODED_BYTES_KEPT = 256 * 1024 * 1024


class Copier:
    """Makes one app's copies. A job's copies of one source usually follow each other: each source is read
    and decoded once, not once per copy."""

    def __init__(self, app: WorkerApp) -> None:
        self.store = app.store
        self.sources = DecodedSources(DECODED_BYTES_KEPT)

    async def make(self, order: CopyOrder) -> CopyMade:
        """The copy, stored; or, when its source cannot be read, why."""
        try:
            source = await asyncio.to_thread(self.sources.get, order.source_key, self.store.get_bytes)
            donor = await asyncio.to_thread(self.store.get_bytes, order.donor_key) if order.donor_key else None
            result = await asyncio.to_thread(make_copy, source, order.task, order.params, donor)
        except Exception as exc:  # noqa: BLE001 - the copy fails with its reason; the job goes on
            return CopyMade(job_id=order.job_id, task=order.task, error=error_info(exc))
        key = copy_key(order.job_id, order.task)
        await asyncio.to_thread(self.store.put_bytes, key, result.data, "image/jpeg")
        return CopyMade(job_id=order.job_id, task=order.task, object_key=key, entry=result.entry(order.task))


def register(app: WorkerApp) -> None:
    copier = Copier(app)

    @app.agent(app.topic_of(COPY_TASKS))
    async def make_copies(stream):
        async for _, order in app.courier.messages(stream, CopyOrder):
            made = await copier.make(order)
            await app.courier.publish(COPIES, order.job_id, CopyProgress(event=made))

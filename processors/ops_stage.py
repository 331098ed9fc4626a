"""Media -> one result per op: reads each original once and runs every op the job asked for on it.

The ops are processors/ops/; each result goes to its op's topic (schemas.topics.RESULTS). The work runs in
threads, so the event loop keeps heartbeating while exiftool or a decoder is busy.
"""

from __future__ import annotations

import asyncio

from adapters.worker_app import WorkerApp
from processors.ops import registry
from schemas.messages import MediaReady
from schemas.topics import MEDIA, RESULTS


class OpsStage:
    """Runs a job's ops for one app; callable by any stage that has a MediaReady in hand."""

    def __init__(self, app: WorkerApp) -> None:
        self.app = app
        self.ops = registry()

    async def run(self, media: MediaReady) -> None:
        """Every op of the job, or the job failed with the first failure's code."""
        try:
            data = await asyncio.to_thread(self.app.store.get_bytes, media.object_key)
            await self.apply(media, data)
        except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
            await self.app.courier.report_failure(media.job_id, exc)

    async def apply(self, media: MediaReady, data: bytes) -> None:
        """Every op of the job on ``data``, the original's bytes; raises the first failure."""
        for op in media.ops:
            result = await self.ops[op](self.app, media, data)
            await self.app.courier.publish(RESULTS[op], media.job_id, result)


def register(app: WorkerApp) -> None:
    stage = OpsStage(app)

    @app.agent(app.topic_of(MEDIA))
    async def process_media(stream):
        async for _, media in app.courier.messages(stream, MediaReady):
            await stage.run(media)

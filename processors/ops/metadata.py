"""metadata: one document with everything exiftool, Pillow and PyAV read (media/metadata.py)."""

from __future__ import annotations

import asyncio

from adapters.objects import result_key
from adapters.worker_app import WorkerApp
from media.metadata import extract_metadata
from schemas.messages import MediaReady, MetadataResult, Op, utcnow

OP = Op.METADATA


async def run(app: WorkerApp, media: MediaReady, data: bytes) -> MetadataResult:
    document = await asyncio.to_thread(extract_metadata, data, media.name, app.exiftool)
    return MetadataResult(
        job_id=media.job_id, name=media.name, object_key=result_key(media.job_id, OP),
        metadata=document, extracted_at=utcnow(),
    )  # fmt: skip

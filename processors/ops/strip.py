"""strip: a lossless copy without metadata (media/strip/), stored under tmp/ behind an expiring link."""

from __future__ import annotations

import asyncio

from adapters.links import sign
from adapters.objects import stripped_key
from adapters.worker_app import WorkerApp
from media.strip import strip_metadata
from schemas.messages import MediaReady, Op, StrippedFile, utcnow

OP = Op.STRIP


async def run(app: WorkerApp, media: MediaReady, data: bytes) -> StrippedFile:
    cleaned = await asyncio.to_thread(strip_metadata, data, frozenset(media.options.keep), app.exiftool)
    key = stripped_key(media.job_id, media.name)
    await asyncio.to_thread(app.store.put_bytes, key, cleaned.data, media.mime)
    url, expires_at = sign(app.settings, key, media.name)
    return StrippedFile(
        job_id=media.job_id, name=media.name, object_key=key, download_url=url, expires_at=expires_at,
        size=len(cleaned.data), format=cleaned.format, removed=cleaned.removed, kept=cleaned.kept,
        stripped_at=utcnow(),
    )  # fmt: skip

"""phash: the image's perceptual hashes as displayed (media/phash.py)."""

from __future__ import annotations

import asyncio

from adapters.worker_app import WorkerApp
from media.phash import phash_image
from schemas.messages import MediaReady, Op, PHashRecord, utcnow

OP = Op.PHASH


async def run(app: WorkerApp, media: MediaReady, data: bytes) -> PHashRecord:
    hashed = await asyncio.to_thread(phash_image, data)
    return PHashRecord(
        job_id=media.job_id, name=media.name, phash=hashed.hash, mirrored_phash=hashed.mirrored_hash,
        algorithm=hashed.algorithm, algorithm_version=hashed.algorithm_version, sha256=hashed.sha256,
        width=hashed.width, height=hashed.height, hashed_at=utcnow(), owner=media.owner,
    )  # fmt: skip

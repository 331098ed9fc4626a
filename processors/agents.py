"""What flows through the processors: jobs → media (originals in the object store) → one topic per op.

The agents only move messages; the work is in pure functions run in a thread so the event loop
keeps heartbeating while exiftool or a decoder is busy. Every failure ends the job with a code.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import hashlib

from processors import delivery
from processors.app import (
    app, copies_topic, copy_tasks_topic, jobs_topic, media_topic, metadata_topic, phash_topic, settings, stripped_topic,
    uniquify_jobs_topic,
)
from processors.exiftool import ExifTool
from processors.media_type import check_media
from processors.metadata import extract_metadata
from processors.phash import phash_image
from processors.strip import strip_metadata
from processors.uniquify import CopyTask, UniquifyParams, make_copy, plan_copies
from processors.urlguard import fetch
from schemas.messages import (
    CopyMade, CopyOrder, CopyPlanned, CopyProgress, JobRequest, MediaReady, MetadataResult, Op,
    PHashRecord, RemoteUrl, Status, StrippedFile, UniquifyJob, Upload, utcnow,
)
from sink.downloads import sign
from sink.objects import ObjectStore, copy_key, original_key, result_key, stripped_key

store = ObjectStore(settings)
# One exiftool per worker process, kept open; only process_media (concurrency 1) uses it.
exiftool = ExifTool(settings.exiftool_path, settings.exiftool_timeout)
atexit.register(exiftool.close)


@app.agent(jobs_topic)
async def prepare_media(stream):
    async for _, request in delivery.messages(stream, JobRequest):
        await delivery.report(request.job_id, Status.PROCESSING)
        try:
            media = await ready_media(request)
        except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
            await delivery.report_failure(request.job_id, exc)
            continue
        await delivery.publish(media_topic, request.job_id, media)


async def ready_media(request: JobRequest) -> MediaReady:
    """Uploads are stored already; URLs are fetched through the guard and stored like uploads."""
    source = request.source
    if isinstance(source, RemoteUrl):
        fetched = await fetch(source.url, settings)
        kind = check_media(fetched.body)
        source = Upload(
            object_key=original_key(request.job_id),
            size=len(fetched.body),
            sha256=hashlib.sha256(fetched.body).hexdigest(),
            mime=kind.mime,
        )
        await asyncio.to_thread(store.put_bytes, source.object_key, fetched.body, kind.mime)
    return MediaReady(
        job_id=request.job_id, ops=request.ops, options=request.options, name=request.name,
        object_key=source.object_key, size=source.size, sha256=source.sha256, mime=source.mime, owner=request.owner,
    )  # fmt: skip


@app.agent(media_topic)
async def process_media(stream):
    """Reads each original once and runs every op the job asked for on it."""
    async for _, media in delivery.messages(stream, MediaReady):
        try:
            data = await asyncio.to_thread(store.get_bytes, media.object_key)
            for op in media.ops:
                await OPERATIONS[op](media, data)
        except Exception as exc:  # noqa: BLE001
            await delivery.report_failure(media.job_id, exc)


async def extract(media: MediaReady, data: bytes) -> None:
    document = await asyncio.to_thread(extract_metadata, data, media.name, exiftool)
    result = MetadataResult(
        job_id=media.job_id, name=media.name, object_key=result_key(media.job_id, Op.METADATA),
        metadata=document, extracted_at=utcnow(),
    )  # fmt: skip
    await delivery.publish(metadata_topic, media.job_id, result)


async def hash_image(media: MediaReady, data: bytes) -> None:
    hashed = await asyncio.to_thread(phash_image, data)
    record = PHashRecord(
        job_id=media.job_id, name=media.name, phash=hashed.hash, mirrored_phash=hashed.mirrored_hash,
        algorithm=hashed.algorithm, algorithm_version=hashed.algorithm_version, sha256=hashed.sha256,
        width=hashed.width, height=hashed.height, hashed_at=utcnow(), owner=media.owner,
    )  # fmt: skip
    await delivery.publish(phash_topic, media.job_id, record)


async def strip(media: MediaReady, data: bytes) -> None:
    cleaned = await asyncio.to_thread(strip_metadata, data, frozenset(media.options.keep), exiftool)
    key = stripped_key(media.job_id, media.name)
    await asyncio.to_thread(store.put_bytes, key, cleaned.data, media.mime)
    url, expires_at = sign(settings, key, media.name)
    record = StrippedFile(
        job_id=media.job_id, name=media.name, object_key=key, download_url=url, expires_at=expires_at,
        size=len(cleaned.data), format=cleaned.format, removed=cleaned.removed, kept=cleaned.kept,
        stripped_at=utcnow(),
    )  # fmt: skip
    await delivery.publish(stripped_topic, media.job_id, record)


OPERATIONS = {Op.METADATA: extract, Op.PHASH: hash_image, Op.STRIP: strip}


@app.agent(uniquify_jobs_topic)
async def plan_uniquify(stream):
    """Fans a job out: the plan to the fan-in first, then one order per copy."""
    async for _, job in delivery.messages(stream, UniquifyJob):
        await delivery.report(job.job_id, Status.PROCESSING)
        params = UniquifyParams.model_validate(job.params)
        tasks = plan_copies(params, [source.name for source in job.sources], job.seed)
        planned = CopyPlanned(job_id=job.job_id, expected=len(tasks), job=job)
        await delivery.publish(copies_topic, job.job_id, CopyProgress(event=planned))
        for task in tasks:
            await delivery.order_copy(job, task.model_dump())


@app.agent(copy_tasks_topic)
async def make_copies(stream):
    async for _, order in delivery.messages(stream, CopyOrder):
        made = await make_one_copy(order)
        await delivery.publish(copies_topic, order.job_id, CopyProgress(event=made))


async def make_one_copy(order: CopyOrder) -> CopyMade:
    """The copy, stored; or, when its source cannot be read, why: that fails this copy, not the job."""
    task = CopyTask.model_validate(order.task)
    try:
        source = await asyncio.to_thread(source_bytes, order.source_key)
        donor = await asyncio.to_thread(store.get_bytes, order.donor_key) if order.donor_key else None
        result = await asyncio.to_thread(make_copy, source, task, UniquifyParams.model_validate(order.params), donor)
    except Exception as exc:  # noqa: BLE001 - the copy fails with its reason; the job goes on
        return CopyMade(job_id=order.job_id, task=order.task, error=delivery.error_info(exc))
    key = copy_key(order.job_id, order.task)
    await asyncio.to_thread(store.put_bytes, key, result.data, "image/jpeg")
    return CopyMade(job_id=order.job_id, task=order.task, object_key=key, entry=result.entry(task))


@functools.lru_cache(maxsize=4)
def source_bytes(key: str) -> bytes:
    """A job's copies of one source usually follow each other: read each source once, not once per copy."""
    return store.get_bytes(key)

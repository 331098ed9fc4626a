"""Jobs, in one hop: the original read from the object store (an upload) or fetched through the guard and
stored (a URL), every op of the job run on it here (processors/ops_stage.py), then one status event that
ends the job with each op's outcome. A job whose original cannot be had fails with the reason's code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from adapters.objects import original_key
from adapters.urlguard import fetch
from adapters.worker_app import WorkerApp
from media.accepts import check_accepted
from media.media_type import check_media
from processors.ops_stage import OpsStage
from schemas.job_state import ended
from schemas.messages import JobRequest, MediaReady, Op, RemoteUrl, Upload
from schemas.status_events import OpOutcome
from schemas.topics import JOBS, STATUS

# Jobs are taken in batches and run together: their object-store calls and decoders overlap (exiftool takes
# them one at a time), and what they publish goes out in one produce request per partition, one batch object
# on the embedded broker where each job made its own. A batch runs in groups whose originals fit in memory.
# Jobs come a fetch at a time (one every fetch wait on the embedded broker), so waiting longer than the records
# of one fetch take to arrive adds latency and gathers no more jobs (with a 100 ms fetch wait, 20 ms instead of
# 50 cut the open loop's p99 from 168 to 118 ms; docs/benchmarks.md).
JOB_BATCH = 16
JOB_BATCH_WITHIN = 0.01
ORIGINALS_IN_MEMORY = 256 * 1024 * 1024
# A job's end carries its documents up to this many bytes of them (a camera JPEG's metadata is ~12 KiB): ingest
# answers ?wait from them, not from the store, which saved a GET and ~1 ms of CPU a job (docs/benchmarks.md).
# Beyond it the status topic would carry what the result topics already do, for few jobs.
DOCUMENTS_CARRIED_BYTES = 64 * 1024


def register(app: WorkerApp) -> None:
    courier = app.courier
    stage = OpsStage(app)

    @app.agent(app.topic_of(JOBS))
    async def run_jobs(stream):
        async for requests in courier.batches(stream, JobRequest, JOB_BATCH, JOB_BATCH_WITHIN):
            async with courier.holding():
                for group in in_memory_groups(requests, app.settings.max_upload_bytes, ORIGINALS_IN_MEMORY):
                    await asyncio.gather(*(run_job(app, stage, request) for request in group))


def in_memory_groups(requests: list[JobRequest], url_bytes: int, budget: int) -> Iterator[list[JobRequest]]:
    """``requests`` in order, in groups whose originals together fit ``budget`` bytes (a URL's original counted
    at ``url_bytes``, the most a fetch takes); a job larger than the budget is a group of its own."""
    group: list[JobRequest] = []
    held = 0
    for request in requests:
        size = request.source.size if isinstance(request.source, Upload) else url_bytes
        if group and held + size > budget:
            yield group
            group, held = [], 0
        group.append(request)
        held += size
    if group:
        yield group


async def run_job(app: WorkerApp, stage: OpsStage, request: JobRequest) -> None:
    courier = app.courier
    await courier.report_taken(request)
    try:
        media, data = await ready_media(app, request)
    except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
        await courier.report_failure(request.job_id, exc)
        return
    outcomes, documents = await stage.apply(media, data)
    # The end names the job's owner and ops too: a reader that missed the job's earlier events (the
    # embedded broker can lose a batch to a reader: docs/topics.md) still folds a whole, owned job.
    end = ended(request.job_id, outcomes).model_copy(update={
        "owner": request.owner, "ops": request.ops, "documents": carried(outcomes, documents),
    })  # fmt: skip
    await courier.publish(STATUS, request.job_id, end)


def carried(outcomes: dict[Op, OpOutcome], documents: dict[Op, Any]) -> dict[Op, Any] | None:
    """The documents the job's end carries: all of them when they are small together, else none (each is read
    from the object store by who needs it)."""
    if not documents or sum(outcomes[op].size or 0 for op in documents) > DOCUMENTS_CARRIED_BYTES:
        return None
    return documents


async def ready_media(app: WorkerApp, request: JobRequest) -> tuple[MediaReady, bytes]:
    """The job's original, stored, and its bytes."""
    source = request.source
    if isinstance(source, RemoteUrl):
        fetched = await fetch(source.url, app.settings)
        data = fetched.body
        kind = check_media(data)
        # A URL job meets the rule an upload meets at ingest: refused when no op of the job takes the file.
        check_accepted(kind, request.ops)
        source = Upload.of(original_key(request.job_id), data, kind.mime)
        await asyncio.to_thread(app.store.put_bytes, source.object_key, data, kind.mime)
    else:
        data = await asyncio.to_thread(app.store.get_bytes, source.object_key)
    media = MediaReady(
        job_id=request.job_id, ops=request.ops, options=request.options, name=request.name,
        object_key=source.object_key, size=source.size, sha256=source.sha256, mime=source.mime, owner=request.owner,
    )  # fmt: skip
    return media, data

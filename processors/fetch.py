"""Jobs, in one hop: the original read from the object store (an upload) or fetched through the guard and
stored (a URL), every op of the job run on it here (processors/ops_stage.py), then one status event that
ends the job with each op's outcome. A job whose original cannot be had fails with the reason's code."""

from __future__ import annotations

import asyncio

from adapters.objects import original_key
from adapters.urlguard import fetch
from adapters.worker_app import WorkerApp
from media.accepts import check_accepted
from media.media_type import check_media
from processors.ops_stage import OpsStage
from schemas.job_state import ended
from schemas.messages import JobRequest, MediaReady, RemoteUrl, Upload
from schemas.topics import JOBS, STATUS


def register(app: WorkerApp) -> None:
    courier = app.courier
    stage = OpsStage(app)

    @app.agent(app.topic_of(JOBS))
    async def run_jobs(stream):
        async for _, request in courier.messages(stream, JobRequest):
            await courier.report_taken(request)
            try:
                media, data = await ready_media(app, request)
            except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
                await courier.report_failure(request.job_id, exc)
                continue
            outcomes = await stage.apply(media, data)
            # The end names the job's owner and ops too: a reader that missed the job's earlier events (the
            # embedded broker can lose a batch to a reader: docs/topics.md) still folds a whole, owned job.
            end = ended(request.job_id, outcomes).model_copy(update={"owner": request.owner, "ops": request.ops})
            await courier.publish(STATUS, request.job_id, end)


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

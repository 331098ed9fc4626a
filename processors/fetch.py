"""Jobs -> media: an upload is in the object store already; a URL is fetched through the guard and stored
like one. Every failure ends the job with its code."""

from __future__ import annotations

import asyncio

from adapters.objects import original_key
from adapters.urlguard import fetch
from adapters.worker_app import WorkerApp
from media.media_type import check_media
from schemas.messages import JobRequest, MediaReady, RemoteUrl, Status, Upload
from schemas.topics import JOBS, MEDIA


def register(app: WorkerApp) -> None:
    courier = app.courier

    @app.agent(app.topic_of(JOBS))
    async def prepare_media(stream):
        async for _, request in courier.messages(stream, JobRequest):
            await courier.report(request.job_id, Status.PROCESSING)
            try:
                media = await ready_media(app, request)
            except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
                await courier.report_failure(request.job_id, exc)
                continue
            await courier.publish(MEDIA, request.job_id, media)


async def ready_media(app: WorkerApp, request: JobRequest) -> MediaReady:
    source = request.source
    if isinstance(source, RemoteUrl):
        fetched = await fetch(source.url, app.settings)
        kind = check_media(fetched.body)
        source = Upload.of(original_key(request.job_id), fetched.body, kind.mime)
        await asyncio.to_thread(app.store.put_bytes, source.object_key, fetched.body, kind.mime)
    return MediaReady(
        job_id=request.job_id, ops=request.ops, options=request.options, name=request.name,
        object_key=source.object_key, size=source.size, sha256=source.sha256, mime=source.mime, owner=request.owner,
    )  # fmt: skip

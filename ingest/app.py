"""The ingest HTTP service: an app factory that only wires clients, routes and the error middleware."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from ingest import (
    apidocs, auth, compat_exiftools, compat_imagekit, compat_imgfactory, compat_media_metadata, compat_qiniu, deletion,
    downloads, events, health, jobs, keys, page, preview, similar, uniquify,
)  # fmt: skip
from ingest.accesslog import RedactingAccessLogger
from ingest.metrics import METRICS, IngestMetrics, ObservedPublisher, metrics_page, middleware as metrics_middleware
from ingest.errors import RenderError, error_middleware
from adapters.kafka import create_topics
from ingest.status import JobStatus, StatusWatcher
from ingest.workers import Workers
from schemas.settings import Settings, get_settings
from adapters.apikeys import KeyStore
from adapters.logs import configure as configure_logging
from adapters.metrics import instrument_store
from adapters.objects import ObjectStore

MULTIPART_OVERHEAD = 1024 * 1024
# The drop-in routes of the reference APIs, and their error renderers by route-name prefix (ingest/errors.py).
COMPAT = (compat_media_metadata, compat_imgfactory, compat_exiftools, compat_imagekit, compat_qiniu)
DIALECTS: dict[str, RenderError] = {module.DIALECT: module.render_error for module in COMPAT}


async def kafka_clients(app: web.Application):
    settings = app[keys.SETTINGS]
    app[keys.PUBLISHER] = ObservedPublisher(settings, app[METRICS])
    app[keys.WATCHER] = StatusWatcher(settings, on_end=app[keys.GUARD].job_ended)
    await app[keys.PUBLISHER].start()
    await app[keys.WATCHER].start()
    yield
    await app[keys.WATCHER].stop()
    await app[keys.PUBLISHER].stop()


async def http_client(app: web.Application):
    async with aiohttp.ClientSession() as session:
        app[keys.WORKERS] = Workers(app[keys.SETTINGS], session)
        app[keys.JOB_STATUS] = JobStatus(app[keys.WORKERS], app[keys.STORE], app[keys.WATCHER])
        yield


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    metrics = IngestMetrics()
    store = instrument_store(ObjectStore(settings), metrics.registry)
    guard = auth.Guard(settings, KeyStore(store))
    # The metrics middleware sees every answer as sent; inside it the error middleware, so the guard's refusals
    # are rendered in the route's dialect.
    app = web.Application(
        middlewares=[metrics_middleware(metrics), error_middleware(DIALECTS), auth.middleware(guard)],
        client_max_size=settings.max_upload_bytes + MULTIPART_OVERHEAD,
    )
    app[keys.SETTINGS] = settings
    app[keys.STORE] = store
    app[keys.GUARD] = guard
    app[METRICS] = metrics
    app.cleanup_ctx.extend([kafka_clients, http_client, events.event_feed])
    app.router.add_post("/v1/jobs", jobs.create_job)
    app.router.add_get("/v1/jobs", jobs.list_jobs)
    app.router.add_get("/v1/jobs/{job_id}", jobs.get_job)
    app.router.add_get("/v1/jobs/{job_id}/preview", preview.job_preview)
    # A stream answers HEAD only once it ends: GET alone.
    app.router.add_get("/v1/events", events.job_events, allow_head=False)
    app.router.add_delete("/v1/jobs/{job_id}", deletion.delete_job)
    app.router.add_get("/v1/jobs/{job_id}/similar", similar.similar_to_job)
    app.router.add_get("/v1/similar", similar.similar_to_hash)
    app.router.add_post("/v1/similar", similar.similar_to_image)
    app.router.add_get("/v1/phash/distance", similar.distance)
    app.router.add_get("/v1/downloads/{token}", downloads.download)
    app.router.add_post("/v1/uniquify", uniquify.create_uniquify_job)
    app.router.add_post("/v1/uniquify/single", uniquify.uniquify_one)
    app.router.add_post("/v1/exif-donors", uniquify.create_donor)
    app.router.add_get("/v1/exif-donors", uniquify.list_donors)
    app.router.add_delete("/v1/exif-donors/{donor_id}", uniquify.delete_donor)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics_page)
    for module in COMPAT:
        module.add_routes(app.router)
    app.router.add_get("/openapi.json", apidocs.openapi_json)
    app.router.add_get("/docs", apidocs.docs_page)
    app.router.add_get("/docs/static/{name}", apidocs.docs_asset)
    app.router.add_get("/", page.page)
    app.router.add_get("/web/{name}", page.asset)
    return app


def run(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    # Partitioned as the topics are, whatever the setting says now (adapters/kafka.py).
    settings = asyncio.run(create_topics(settings))
    web.run_app(create_app(settings), host=settings.ingest_host, port=settings.ingest_port, print=None,
                access_log_class=RedactingAccessLogger)  # fmt: skip

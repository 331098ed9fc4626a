"""The ingest service's ``GET /metrics``: requests by route and status and their durations (a middleware),
jobs accepted by op (the publisher, which every route that makes a job goes through) and the object
store's calls (adapters/metrics.py). Each app has its own registry.

The middleware also makes the request being handled known to the publisher, which marks it with the job it
published: the access log line (ingest/accesslog.py) names the job a POST created.
"""

from __future__ import annotations

import contextvars
import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from adapters.metrics import CONTENT_TYPE, DURATION_BUCKETS, exposition
from ingest import auth
from ingest.publisher import Publisher
from schemas.messages import JobRecord, Message
from schemas.settings import Settings

JOB_ID = web.RequestKey("job_id", str)
HANDLING: contextvars.ContextVar[web.Request] = contextvars.ContextVar("handling")
# What a route is when aiohttp matched none: one label, whatever path was asked.
UNMATCHED = "unmatched"


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "medialane_http_requests", "Requests by method, route (its template, never the path) and status.",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "medialane_http_request_duration_seconds", "Requests' time to their answer, by method and route.",
            ["method", "route"], registry=self.registry, buckets=DURATION_BUCKETS,
        )  # fmt: skip
        self.accepted = Counter(
            "medialane_jobs_accepted", "Jobs published, once under each op they ask for.", ["op"], registry=self.registry
        )  # fmt: skip


METRICS = web.AppKey("metrics", IngestMetrics)


def route_of(request: web.BaseRequest) -> str:
    # Not the match_info property: it asserts when aiohttp refused the request before routing.
    match_info = getattr(request, "_match_info", None)
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else UNMATCHED


def middleware(metrics: IngestMetrics):
    @web.middleware
    async def observe(request: web.Request, handler) -> web.StreamResponse:
        token = HANDLING.set(request)
        start, status = time.perf_counter(), 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            HANDLING.reset(token)
            route = route_of(request)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.request_seconds.labels(request.method, route).observe(time.perf_counter() - start)

    return observe


class ObservedPublisher(Publisher):
    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        super().__init__(settings)
        self.metrics = metrics

    async def submit(self, record: JobRecord, topic: str, job: Message) -> None:
        await super().submit(record, topic, job)
        for op in record.ops:
            self.metrics.accepted.labels(op.value).inc()
        if (request := HANDLING.get(None)) is not None:
            request[JOB_ID] = record.job_id


@auth.public
async def metrics_page(request: web.Request) -> web.Response:
    body = exposition(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

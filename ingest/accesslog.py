"""The ingest access log: one line a request, with its method, route, status, duration, the caller's key id and
the job it made or asked about, and with secrets taken out: API keys and signatures in query strings (and,
for whatever else reaches a line, the formatter's redaction: adapters/logs.py), and the path variables of
public routes (a download link's token, the job id exiftools.com's public routes take), which are the only
credential those routes ask for.

A logged URL lets whoever reads the log replay it, so a key or a link never reaches the log.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from adapters.logs import REDACTED, redact_query, redact_url
from ingest.auth import CALLER, is_public
from ingest.metrics import JOB_ID, route_of


def redacted_target(request: web.BaseRequest) -> str:
    path = request.path
    # Not the match_info property: it asserts, and a request aiohttp refused before routing (a bad
    # header or a too-long line, answered 400) has none.
    match_info = getattr(request, "_match_info", None)
    if match_info is not None and is_public(match_info.handler):
        for value in filter(None, match_info.values()):
            path = path.replace(value, REDACTED)
    query = request.query_string
    return f"{path}?{redact_query(query)}" if query else path


def job_of(request: web.BaseRequest) -> str | None:
    """The job the request made (ingest/metrics.py marks it) or names in its path, unless the path's job id is a
    public route's credential."""
    match_info = getattr(request, "_match_info", None)
    named = match_info.get("job_id") if match_info is not None and not is_public(match_info.handler) else None
    return request.get(JOB_ID) or named


class RedactingAccessLogger(AbstractAccessLogger):
    """One line a request: client, method, redacted target, status, bytes, seconds, referer, user agent; and as
    fields, for JSON lines and grep: method, route, status, duration, key id, job id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, elapsed: float) -> None:
        referer = redact_url(request.headers.get("Referer", "-"))
        caller = request.get(CALLER)
        self.logger.info(
            '%s [%s] "%s %s HTTP/%d.%d" %d %d %.3f "%s" "%s"',
            request.remote, time.strftime("%d/%b/%Y:%H:%M:%S %z"), request.method, redacted_target(request),
            request.version.major, request.version.minor, response.status, response.body_length, elapsed,
            referer, request.headers.get("User-Agent", "-"),
            extra={"method": request.method, "route": route_of(request), "status": response.status,
                   "duration": round(elapsed, 6), "key_id": caller.key_id if caller else None,
                   "job_id": job_of(request)},
        )  # fmt: skip

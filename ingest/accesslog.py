"""The ingest access log, with secrets taken out: API keys and signatures in query strings, and the
path variables of public routes (a download link's token, the job id exiftools.com's public routes
take), which are the only credential those routes ask for.

A logged URL lets whoever reads the log replay it, so a key or a link never reaches the log.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ingest.auth import is_public

REDACTED = "REDACTED"
# Query parameters that carry a credential: ours (key), the references' and presigned S3 URLs'.
SECRET_PARAMS = frozenset({
    "key", "api_key", "apikey", "token", "access_token", "signature", "sig", "x-amz-signature",
    "x-amz-credential", "x-amz-security-token", "awsaccesskeyid",
})  # fmt: skip


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED if name.lower() in SECRET_PARAMS else value) for name, value in pairs], safe="[]")


def redact_url(url: str) -> str:
    """``url`` (absolute, or a path with its query) with every credential query value replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=redact_query(parts.query))) if parts.query else url


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


class RedactingAccessLogger(AbstractAccessLogger):
    """One line a request: client, method, redacted target, status, bytes, seconds, referer, user agent."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, elapsed: float) -> None:
        referer = redact_url(request.headers.get("Referer", "-"))
        self.logger.info(
            '%s [%s] "%s %s HTTP/%d.%d" %d %d %.3f "%s" "%s"',
            request.remote, time.strftime("%d/%b/%Y:%H:%M:%S %z"), request.method, redacted_target(request),
            request.version.major, request.version.minor, response.status, response.body_length, elapsed,
            referer, request.headers.get("User-Agent", "-"),
        )  # fmt: skip

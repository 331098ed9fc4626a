"""Every error leaves the API in the error shape of the route's dialect.

Native routes answer ``{"success": false, "error": <message>, "code": <machine code>}``. A drop-in
route of a reference API is named ``"<dialect>.<name>"`` (``exiftools.extract``) and its errors are
rendered by that dialect's ``render_error``, so clients of the hosted API see the bodies they parse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from adapters.objects import unreachable
from schemas.errors import MalformedRequest, MedialaneError, Unavailable
from schemas.views import ErrorBody

log = logging.getLogger(__name__)

_HTTP_CODES = {401: "invalid_api_key", 404: "route_not_found", 405: "method_not_allowed", 413: "file_too_large"}

RenderError = Callable[[MedialaneError], web.Response]


def error_response(status: int, message: str, code: str, field: str | None = None) -> web.Response:
    body = ErrorBody(error=message, code=code, field=field).model_dump(exclude_none=True)
    return web.json_response(body, status=status)


def native_error(error: MedialaneError) -> web.Response:
    return error_response(error.status, error.message, error.code, error.field)


def as_error(exc: web.HTTPException) -> MedialaneError:
    error = MedialaneError(exc.reason, code=_HTTP_CODES.get(exc.status, "http_error"))
    error.status = exc.status
    return error


def dialect_of(request: web.Request) -> str | None:
    name = request.match_info.route.name
    return name.split(".", 1)[0] if name and "." in name else None


def error_middleware(dialects: Mapping[str, RenderError]):
    """The one error middleware; ``dialects`` maps a route-name prefix to its error renderer."""

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        allow = None
        try:
            return await handler(request)
        except MedialaneError as exc:
            error = exc
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error = as_error(exc)
            allow = exc.headers.get("Allow")
        except BadHttpMessage as exc:
            # aiohttp parses a multipart part's headers only when the handler reads the part.
            error = MalformedRequest(f"malformed request body: {exc.message}")
        except Exception as exc:
            if unreachable(exc):
                # Not a bug: the store is down, and a client should retry rather than report it.
                log.warning("object store unreachable on %s %s: %s", request.method, request.path, exc)
                error = Unavailable("the object store does not answer; retry shortly", code="object_store_unavailable")
            else:
                log.exception("unhandled error on %s %s", request.method, request.path)
                error = MedialaneError("internal server error")
        response = dialects.get(dialect_of(request), native_error)(error)
        if (retry_after := getattr(error, "retry_after", None)) is not None:
            response.headers["Retry-After"] = str(retry_after)
        if allow is not None:
            # 405 names the methods the route has (RFC 9110).
            response.headers["Allow"] = allow
        return response

    return middleware

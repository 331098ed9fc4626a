"""Every error leaves the API as ``{"success": false, "error": <message>, "code": <machine code>}``."""

from __future__ import annotations

import logging

from aiohttp import web

from schemas.errors import MedialaneError
from schemas.messages import ErrorBody

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "route_not_found", 405: "method_not_allowed", 413: "file_too_large"}


def error_response(status: int, message: str, code: str, field: str | None = None) -> web.Response:
    body = ErrorBody(error=message, code=code, field=field).model_dump(exclude_none=True)
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MedialaneError as exc:
        return error_response(exc.status, exc.message, exc.code, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason, _HTTP_CODES.get(exc.status, "http_error"))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error", "internal_error")

"""Drop-in routes of imgfactory's uniquification API (reference 004), under ``/api/v1``.

``POST /api/v1/async/unique`` is a native uniquify job (ingest/uniquify.py: same parameters, same
validation), ``POST /api/v1/sync/single/unique`` the native single copy, ``GET /api/v1/tasks`` the
caller's uniquify jobs as imgfactory tasks. Bodies are imgfactory's: ``{"type": ..., "detail": ...}``.
docs/compat.md lists every choice made where the document is silent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ingest import auth, keys, uniquify
from ingest.compat import settled
from schemas.errors import InvalidParameter, MedialaneError, NotFound
from schemas.messages import Op, Status, is_job_id
from schemas.views import JobView
from adapters.objects import request_key

DIALECT = "imgfactory"
PREFIX = "/api/v1"
# The document shows Celery's state names (DONE for SUCCESS); a failed job takes Celery's FAILURE.
TASK_STATUS = {Status.QUEUED: "PENDING", Status.PROCESSING: "STARTED", Status.COMPLETED: "DONE",
               Status.FAILED: "FAILURE"}  # fmt: skip
# The reference's own messages (Laravel's), for the errors it documents.
REQUIRED = "Поле {field} обязательно для заполнения."
NOT_A_UUID = "validation.uuid"
TASK_NOT_FOUND = "Task not found"
PAGE = 100
VALIDATION_STATUSES = frozenset({400, 413, 415, 422})
# A body without the image part, or not multipart at all: to imgfactory (Laravel) the field is missing.
MISSING_PART = frozenset({"missing_file", "unsupported_content_type"})


def timestamp(moment: datetime) -> str:
    """``2022-03-12 12:17:35``, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def task(view: JobView, job: dict[str, Any]) -> dict[str, Any]:
    """One task as ``GET /tasks`` lists it, from its job's view and request record; counts and percent are
    strings, as the document shows them."""
    status = settled(view, Op.UNIQUIFY)
    done = status is Status.COMPLETED
    return {
        "id": view.job_id,
        "status": TASK_STATUS[status],
        "files": str(len(job["sources"])),
        "copies": str(job["params"]["copies"]),
        "percent": None if view.status is Status.QUEUED else str(view.percent),
        "result": view.result[Op.UNIQUIFY]["downloadUrl"] if done else None,
        "created_at": timestamp(view.created_at),
        "updated_at": timestamp(view.updated_at),
    }


def body(kind: str, detail: Any) -> dict[str, Any]:
    return {"type": kind, "detail": detail}


def error_body(error: MedialaneError) -> tuple[int, dict[str, Any]]:
    """imgfactory's status and body for an error. Its validation errors are 400s keyed by field; the
    upload's errors name the image part's field, and any error naming none is keyed by ``images``."""
    if error.status == 401:
        return 401, body("auth error", "Authorization required" if error.code == "missing_api_key" else "Invalid token")
    if error.code == "job_not_found":
        return 400, body("search error", TASK_NOT_FOUND)
    if error.status in VALIDATION_STATUSES:
        field = error.field or "images"
        message = REQUIRED.format(field=field) if error.code in MISSING_PART else error.message
        return 400, body("validation error", {field: [message]})
    if error.status == 429:
        return 429, body("rate limit error", error.message)
    return error.status, body("server error", error.message)


def render_error(error: MedialaneError) -> web.Response:
    status, answer = error_body(error)
    return web.json_response(answer, status=status)


async def async_unique(request: web.Request) -> web.Response:
    view = await uniquify.submit(request, wait=0)
    return web.json_response({"type": "success", "task_id": view.job_id})


async def owned_views(request: web.Request, owner: str) -> list[JobView]:
    """Every job of ``owner``, oldest first as the document lists them."""
    views, cursor = await request.app[keys.JOB_STATUS].owned(owner, PAGE)
    while cursor is not None:
        page, cursor = await request.app[keys.JOB_STATUS].owned(owner, PAGE, cursor)
        views.extend(page)
    return views[::-1]


async def tasks(request: web.Request) -> web.Response:
    owner = request[auth.CALLER].key_id
    task_id = request.query.get("task_id")
    if task_id is None:
        views = [view for view in await owned_views(request, owner) if Op.UNIQUIFY in view.ops]
    elif not is_job_id(task_id):
        raise InvalidParameter(NOT_A_UUID, field="task_id")
    else:
        view = await request.app[keys.JOB_STATUS].lookup(task_id, owner)
        if Op.UNIQUIFY not in view.ops:
            raise NotFound(TASK_NOT_FOUND, code="job_not_found")
        views = [view]
    # Listed views come without result documents: a task shows its zip's link.
    views = await asyncio.gather(*(request.app[keys.JOB_STATUS].with_documents(view) for view in views))
    store = request.app[keys.STORE]
    records = await asyncio.gather(*(asyncio.to_thread(store.get_json, request_key(view.job_id)) for view in views))
    detail = [task(view, record) for view, record in zip(views, records)]
    return web.json_response(body("success", detail))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(f"{PREFIX}/async/unique", async_unique, name=f"{DIALECT}.async_unique")
    # The native single copy is imgfactory's answer as it is: JPEG bytes, the errors rendered in this dialect.
    router.add_post(f"{PREFIX}/sync/single/unique", uniquify.uniquify_one, name=f"{DIALECT}.sync_single_unique")
    router.add_get(f"{PREFIX}/tasks", tasks, name=f"{DIALECT}.tasks")

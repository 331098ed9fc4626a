"""What the drop-in routes of the reference APIs (docs/compat.md) share: each turns a reference request
into a native job (ingest/jobs.py) and the job's document into the reference's response. No processing
happens there; what the references need of a file is in the native metadata document (media/metadata.py).

Each reference has its dialect module, ``ingest/compat_<dialect>.py``, exposing ``render_error(error) ->
web.Response`` and ``add_routes(router)``; its routes are named ``"<dialect>.<name>"`` so the error
middleware renders their errors its way. They sit beside the native modules rather than in a folder of
their own: they build on those modules, and the app registers them and the download route serves Qiniu's
``?exif``, so such a folder and ingest/ would import each other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ingest import auth, jobs, keys
from ingest.parsing import Submission
from schemas.errors import MedialaneError, NotFound, Unavailable
from schemas.messages import Op, OpOptions, Status
from schemas.views import JobView
from adapters.apikeys import ApiKey
from adapters.objects import request_key

# Failure codes that are the service's fault; any other failure is the input's (corrupt media, a URL
# that cannot be fetched...).
SERVER_FAULTS = frozenset({"internal_error", "extract_failed", "extract_timeout", "write_failed", "unavailable"})


def client_status(status: int) -> int:
    """The status in a reference that answers bad input with a plain 400: other 4xx statuses than the
    ones its clients act on (401 key, 404 unknown, 410 expired, 429 slow down) become 400, and so does
    502, a URL that could not be fetched: the caller's URL is at fault, not the service."""
    if status == 502 or 400 <= status < 500 and status not in (401, 404, 410, 429):
        return 400
    return status


def settled(view: JobView, op: Op) -> Status:
    """The job's status as a reference without a partial state sees it through ``op``: a partial job is
    completed when ``op`` completed, failed when ``op`` failed."""
    if view.status is not Status.PARTIAL:
        return view.status
    outcome = view.outcomes.get(op)
    return Status.COMPLETED if outcome is not None and outcome.status is Status.COMPLETED else Status.FAILED


def failure(view: JobView, op: Op | None = None) -> MedialaneError:
    """A failed job's error (``op``'s own, when that op failed), raised from a drop-in route so its dialect
    renders it."""
    outcome = view.outcomes.get(op) if op is not None else None
    info = outcome.error if outcome is not None and outcome.status is Status.FAILED else view.error
    error = MedialaneError(info.message if info else "the job failed", code=info.code if info else None)
    error.status = 500 if error.code in SERVER_FAULTS else 422
    return error


def other_failures(view: JobView, op: Op) -> str | None:
    """The ops of a partial job that failed besides ``op``, for a reference's own error field; None when none did."""
    failed = [f"{other}: {outcome.error.code}: {outcome.error.message}" for other, outcome in view.outcomes.items()
              if other != op and outcome.status is Status.FAILED and outcome.error is not None]  # fmt: skip
    return "; ".join(failed) or None


def result_of(view: JobView, op: Op) -> dict[str, Any]:
    """The op's result of a job that ended; raises the op's error if it failed, Unavailable if it runs on."""
    status = settled(view, op)
    if status is Status.FAILED:
        raise failure(view, op)
    if not status.terminal:
        raise Unavailable(f"job {view.job_id} is still {view.status}; ask again later", code="not_ready")
    if op not in view.result:
        raise NotFound(f"job {view.job_id} has no {op} result", code="no_result")
    return view.result[op]


async def run_job(
    request: web.Request, ops: list[Op], name: str, *, data: bytes | None = None, url: str | None = None,
    options: OpOptions = OpOptions(),
) -> JobView:
    """A native job over an upload or a URL, waited on up to ``max_wait_seconds`` (it may still be running)."""
    submission = Submission(ops=ops, options=options, name=name, data=data, url=url)
    return await jobs.submit(request, submission, request.app[keys.SETTINGS].max_wait_seconds)


async def presented_caller(request: web.Request) -> ApiKey | None:
    """The caller of a public route that takes an optional key: None without one, Unauthorized for a wrong one."""
    if auth.presented_key(request) is None:
        return None
    return await request.app[keys.GUARD].admit(request)


async def stored_bytes(request: web.Request, key: str) -> bytes:
    data = await asyncio.to_thread(request.app[keys.STORE].get_bytes_or_none, key)
    if data is None:
        raise NotFound("the file is not stored (any more)", code="file_not_found")
    return data


async def job_name(request: web.Request, view: JobView) -> str:
    """The file name the job was made with (jobs of versions before the view named it: their request
    record's; a uniquify job has none)."""
    if view.name:
        return view.name
    record = await asyncio.to_thread(request.app[keys.STORE].get_json_or_none, request_key(view.job_id))
    return (record or {}).get("name") or "original"

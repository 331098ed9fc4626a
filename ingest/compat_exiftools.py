"""exiftools.com's API (reference 000): ``POST /api/v1/extract`` (an upload or a URL; the result comes
back in the answer), ``GET /api/v1/extract/{uuid}`` (no key needed), ``POST /api/v1/remove`` and
``GET /download-cleaned/{uuid}``, the cleaned file its ``downloadUrl`` points to for 24 hours.

Errors are ``{"success": false, "error": "..."}`` with the document's statuses: 400 for any bad
input, 401 ``Invalid API key``, 404, 500 ``An error occurred while processing your request``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from ingest import auth, keys
from ingest.compat import (
    client_status, failure, job_name, other_failures, presented_caller, result_of, run_job, settled,
)  # fmt: skip
from ingest.parsing import media_type_of, read_form, url_name
from ingest.streaming import stream_object
from schemas.errors import MalformedRequest, MedialaneError, NotFound
from schemas.messages import Op, OpOptions, Status, is_job_id
from schemas.views import JobView
from adapters.links import verify
from adapters.objects import result_key

SECTIONS = ("exif", "iptc", "xmp", "icc", "makernotes", "composite")
FIXED_MESSAGES = {401: "Invalid API key", 500: "An error occurred while processing your request"}
NO_EXTRACTION = "No extraction found with the given UUID."
NO_CLEANED_FILE = "No cleaned file found with the given UUID."

DIALECT = "exiftools"


def printed(groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """exiftool's printed values of several groups, by tag name; the first group wins a shared name."""
    flat: dict[str, Any] = {}
    for tags in groups.values():
        for tag, entry in tags.items():
            flat.setdefault(tag, entry["text"])
    return flat


def metadata_groups(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The native metadata document as exiftools.com's ``metadata``: ``exif``, ``iptc``... (printed
    values, like exiftool's), ``File`` with ``Name``, ``Size`` and ``Type``, then any other group."""
    groups = {section: tags for section in SECTIONS if (tags := printed(document[section]))}
    file = document["file"]
    file_group = {"Name": file["name"], "Size": file["size"], "Type": file["mime"]}
    groups["File"] = file_group | {k: v for k, v in printed({"File": document["other"].get("File", {})}).items()
                                   if k not in file_group}  # fmt: skip
    for group, tags in document["other"].items():
        if group != "File":
            groups[group] = printed({group: tags})
    return groups


def extraction(view: JobView, name: str) -> dict[str, Any]:
    """A metadata job in exiftools.com's shape: with ``metadata`` once completed. The document spells
    the file name ``fileName`` in one example and ``filename`` in another: both are given."""
    body: dict[str, Any] = {"success": True, "status": str(view.status), "fileName": name, "filename": name,
                            "uuid": view.job_id}  # fmt: skip
    status = settled(view, Op.METADATA)
    if status is Status.FAILED:
        raise failure(view, Op.METADATA)
    body["status"] = str(status)
    if status is Status.COMPLETED:
        document = result_of(view, Op.METADATA)
        body["fileName"] = body["filename"] = document["file"]["name"]
        body["metadata"] = metadata_groups(document)
        # A native job of several ops, some failed: exiftools.com has no partial state, only its error field.
        if errors := other_failures(view, Op.METADATA):
            body["error"] = errors
    return body


def removal(view: JobView, base_url: str) -> dict[str, Any]:
    status = settled(view, Op.STRIP)
    if status is Status.FAILED:
        raise failure(view, Op.STRIP)
    return {"success": True, "status": str(status), "uuid": view.job_id,
            "downloadUrl": f"{base_url}/download-cleaned/{view.job_id}"}  # fmt: skip


def render_error(error: MedialaneError) -> web.Response:
    status = min(client_status(error.status), 500)
    return web.json_response({"success": False, "error": FIXED_MESSAGES.get(status, error.message)}, status=status)


async def body_url(request: web.Request) -> str | None:
    media_type = media_type_of(request)
    if media_type == "application/json":
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedRequest(f"body is not valid JSON: {exc}") from exc
        return body.get("url") if isinstance(body, dict) else None
    if media_type == "application/x-www-form-urlencoded":
        return (await request.post()).get("url")
    return None


async def submitted(request: web.Request, op: Op, options: OpOptions = OpOptions()) -> JobView:
    """A native job over the request's file (multipart ``file``) or URL (``url`` in the query or body)."""
    if media_type_of(request) == "multipart/form-data" and "url" not in request.query:
        form = await read_form(request)
        return await run_job(request, [op], form.filename or "file", data=form.data, options=options)
    url = request.query.get("url") or await body_url(request)
    if not isinstance(url, str) or not url:
        raise MalformedRequest("send a 'file' (multipart) or a 'url' (JSON body or query string)", code="missing_input")
    return await run_job(request, [op], url_name(url), url=url, options=options)


async def extract(request: web.Request) -> web.Response:
    view = await submitted(request, Op.METADATA)
    return web.json_response(extraction(view, await job_name(request, view)))


@auth.public
async def get_extraction(request: web.Request) -> web.Response:
    """No key needed (job ids are unguessable); a key, if given, must be valid and own the job."""
    caller = await presented_caller(request)
    try:
        view = await request.app[keys.JOB_STATUS].lookup(request.match_info["uuid"], caller and caller.key_id)
    except NotFound:
        raise NotFound(NO_EXTRACTION, code="job_not_found") from None
    if Op.METADATA not in view.ops:
        raise NotFound(NO_EXTRACTION, code="job_not_found")
    return web.json_response(extraction(view, await job_name(request, view)))


async def remove(request: web.Request) -> web.Response:
    # "All metadata", as the document says: not even the orientation and colour profile native strip keeps.
    view = await submitted(request, Op.STRIP, OpOptions(keep=[]))
    return web.json_response(removal(view, request.app[keys.SETTINGS].base_url))


@auth.public
async def download_cleaned(request: web.Request) -> web.StreamResponse:
    """The cleaned file of a remove job while its signed link is valid (24 hours). Read from the stored
    strip result, which is written before the job is reported completed, so a client following the
    ``downloadUrl`` of a completed answer at once finds it."""
    job_id, store = request.match_info["uuid"], request.app[keys.STORE]
    result = result_key(job_id, Op.STRIP)
    document = await asyncio.to_thread(store.get_json_or_none, result) if is_job_id(job_id) else None
    if document is None:
        raise NotFound(NO_CLEANED_FILE, code="job_not_found")
    link = document["downloadUrl"]
    key, filename = verify(request.app[keys.SETTINGS], link.rsplit("/", 1)[1])
    return await stream_object(request, key, filename)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/extract", extract, name=f"{DIALECT}.extract")
    router.add_get("/api/v1/extract/{uuid}", get_extraction, name=f"{DIALECT}.get_extraction")
    router.add_post("/api/v1/remove", remove, name=f"{DIALECT}.remove")
    router.add_get("/download-cleaned/{uuid}", download_cleaned, name=f"{DIALECT}.download_cleaned")

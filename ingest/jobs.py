"""``POST /v1/jobs``, ``GET /v1/jobs/{job_id}`` and ``GET /v1/jobs`` (the caller's jobs).

A submission is checked in a fixed order, each check with its own error code: the ``wait`` parameter,
the content type, the body, the ops, the webhook, then the media (size, emptiness, type sniffed from the bytes,
truncation) or the URL (through the URL guard), and last the caller's active-job cap. Only then is anything
stored or published, so a refused job leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from processors.media_type import MediaType, check_media
from processors.names import safe_name
from processors.urlguard import check_url
from schemas.errors import EmptyFile, InvalidParameter, MalformedRequest, TooLarge, UnsupportedMedia, UrlForbidden
from schemas.messages import (
    JobAccepted, JobPage, JobRecord, JobRequest, JobView, KeepItem, Op, OpOptions, RemoteUrl, UniquifyJob, Upload, new_job_id, utcnow,
)
from schemas.settings import Settings
from ingest import auth, keys
from ingest.status import owner_entry, queued_view
from sink.objects import original_key, request_key

DEFAULT_OPS = (Op.METADATA,)
# Uniquification takes many images and its own parameters: it has its own route, POST /v1/uniquify.
JOB_OPS = (Op.METADATA, Op.PHASH, Op.STRIP)
READ_CHUNK = 256 * 1024
DEFAULT_PAGE, MAX_PAGE = 20, 100
MAX_CLIENT_ID = 255
MAX_WEBHOOK_URL = 2048


@dataclass(frozen=True)
class Callback:
    """What a client gets back besides its job: its own ``id`` echoed in the job document, and the
    finished job POSTed to ``webhook_url``. Adapters of reference APIs read theirs with
    ``read_callback`` and pass it on in a ``Submission``."""

    webhook_url: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class Submission:
    ops: list[Op]
    options: OpOptions
    name: str
    data: bytes | None = None
    url: str | None = None
    callback: Callback = Callback()


async def read_callback(fields: Mapping[str, object], settings: Settings) -> Callback:
    """``webhook_url`` and ``id`` from a request's fields (JSON body, multipart parts, query), checked:
    the webhook by the URL guard (``url_forbidden``), the id a string. Empty or null means none."""
    url, client_id = fields.get("webhook_url") or None, fields.get("id") or None
    if url is not None:
        if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL:
            raise InvalidParameter(f"webhook_url must be an http(s) URL of at most {MAX_WEBHOOK_URL} characters",
                                   code="invalid_webhook_url", field="webhook_url")  # fmt: skip
        try:
            await check_url(url, settings)
        except UrlForbidden as exc:
            raise UrlForbidden(f"webhook_url: {exc.message}", field="webhook_url") from exc
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID):
        message = f"id must be a string of at most {MAX_CLIENT_ID} characters"
        raise InvalidParameter(message, code="invalid_id", field="id")
    return Callback(url, client_id)


def parse_wait(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    limit = request.app[keys.SETTINGS].max_wait_seconds
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= limit:
        raise InvalidParameter(f"wait must be a number of seconds from 0 to {limit:g}", code="invalid_wait")
    return wait


def parse_names(raw: object, field: str) -> list[str]:
    """A list of names given as a JSON array, or as a JSON array or comma list in a text field."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"{field} is not a JSON array: {exc.msg}", code=f"invalid_{field}") from exc
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidParameter(f"{field} must be a list of names", code=f"invalid_{field}")
    return list(dict.fromkeys(item.strip() for item in raw))


def parse_ops(raw: object) -> list[Op]:
    if raw is None:
        return list(DEFAULT_OPS)
    names = parse_names(raw, "ops")
    if not names:
        raise InvalidParameter("ops must name at least one operation", code="invalid_ops")
    known = [op.value for op in JOB_OPS]
    if unknown := [name for name in names if name not in known]:
        hint = "; uniquify has its own route, POST /v1/uniquify" if Op.UNIQUIFY in unknown else ""
        raise InvalidParameter(f"unknown op {unknown[0]!r}; known ops: {known}{hint}", code="unknown_op")
    return [Op(name) for name in names]


def parse_options(fields: Mapping[str, object]) -> OpOptions:
    if fields.get("keep") is None:
        return OpOptions()
    names = parse_names(fields["keep"], "keep")
    known = {item.value for item in KeepItem}
    if unknown := [name for name in names if name not in known]:
        raise InvalidParameter(f"keep may only name {sorted(known)}, not {unknown[0]!r}", code="invalid_keep")
    return OpOptions(keep=[KeepItem(name) for name in names])


async def read_limited(part, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file is larger than the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Form:
    filename: str | None
    data: bytes | None
    fields: dict[str, str]


def require_multipart(request: web.Request, field: str | None = None) -> None:
    """Refuses a body that is not multipart; ``field`` names the part the caller expects."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMedia(f"send multipart/form-data, not {request.content_type}", code="unsupported_content_type",
                               field=field)  # fmt: skip


async def read_form(request: web.Request) -> Form:
    """A multipart body: the ``file`` part within the upload limit, the other parts as text."""
    require_multipart(request)
    limit = request.app[keys.SETTINGS].max_upload_bytes
    filename, data, fields = None, None, {}
    try:
        async for part in await request.multipart():
            if part.name == "file":
                filename = safe_name(part.filename)
                data = await read_limited(part, limit)
            elif part.name:
                fields[part.name] = await part.text()
    except ValueError as exc:
        # aiohttp's multipart reader says "no boundary", "truncated body"... as ValueError.
        raise MalformedRequest(f"malformed multipart body: {exc}") from exc
    if data is None:
        raise MalformedRequest("multipart body has no 'file' part", code="missing_file")
    return Form(filename, data, fields)


async def read_multipart(request: web.Request) -> Submission:
    form = await read_form(request)
    fields = {**request.query, **form.fields}
    ops, options = parse_ops(fields.get("ops")), parse_options(fields)
    callback = await read_callback(fields, request.app[keys.SETTINGS])
    return Submission(ops, options, form.filename or "file", data=form.data, callback=callback)


async def read_json_object(request: web.Request) -> dict:
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedRequest("body must be a JSON object")
    return body


def url_name(url: str) -> str:
    """The display name of a URL job's file: the URL path's last part, through the name guard."""
    return safe_name(urlsplit(url).path, fallback="download")


async def read_json(request: web.Request) -> Submission:
    body = await read_json_object(request)
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise MalformedRequest("body has no 'url' string", code="missing_url")
    fields = {**request.query, **body}
    name = url_name(url)
    ops, options = parse_ops(fields.get("ops")), parse_options(fields)
    callback = await read_callback(fields, request.app[keys.SETTINGS])
    return Submission(ops, options, name, url=url, callback=callback)


async def read_submission(request: web.Request) -> Submission:
    if request.content_type == "multipart/form-data":
        return await read_multipart(request)
    if request.content_type == "application/json":
        return await read_json(request)
    raise UnsupportedMedia(
        f"send multipart/form-data with a 'file' part or application/json with a 'url', not {request.content_type}",
        code="unsupported_content_type",
    )


async def create_job(request: web.Request) -> web.Response:
    wait = parse_wait(request)
    return answer(await submit(request, await read_submission(request), wait))


async def submit(request: web.Request, submission: Submission, wait: float) -> JobView:
    """A checked submission as a job: what ``POST /v1/jobs`` does once it has read the request. The
    job's view as ``enqueue`` returns it, for adapters to answer in their own shape."""
    if submission.data is not None:
        mime = checked_media(submission.data).mime
    else:
        await check_url(submission.url, request.app[keys.SETTINGS])
    job_id = await admitted_job_id(request)
    if submission.data is not None:
        source = await store_upload(request, job_id, submission.data, mime)
    else:
        source = RemoteUrl(url=submission.url)
    job = JobRequest(
        job_id=job_id, ops=submission.ops, options=submission.options, name=submission.name, source=source,
        created_at=utcnow(), client_id=submission.callback.client_id, webhook_url=submission.callback.webhook_url,
    )  # fmt: skip
    return await enqueue(request, "medialane.jobs", job, wait)


async def admitted_job_id(request: web.Request) -> str:
    """A new job's id, counted against the caller's active jobs: refused (429) when the caller has as many
    running as it may. Called once the request is checked and before anything of the job is stored."""
    job_id = new_job_id()
    await request.app[keys.GUARD].admit_job(request[auth.CALLER], job_id, request.app[keys.JOB_STATUS])
    return job_id


async def enqueue(request: web.Request, topic: str, job: JobRequest | UniquifyJob, wait: float) -> JobView:
    """Records the job (its id from ``admitted_job_id``) as the caller's and publishes it as queued; its view
    once it ends within ``wait``, else as it stands."""
    caller = request[auth.CALLER]
    job = job.model_copy(update={"owner": caller.key_id})
    record = JobRecord.model_validate(job.model_dump())
    store = request.app[keys.STORE]
    await asyncio.to_thread(store.put_json, request_key(job.job_id), job.model_dump(mode="json"))
    await asyncio.to_thread(store.put_bytes, owner_entry(caller.key_id, job.created_at, job.job_id), b"")
    with request.app[keys.WATCHER].watch(queued_view(record)) as finished:
        await request.app[keys.PUBLISHER].submit(record, topic, job)
        return await finished(wait) if wait else queued_view(record)


def answer(view: JobView) -> web.Response:
    """200 with the job once it ended; else 202, and where to ask."""
    headers = {"Location": f"/v1/jobs/{view.job_id}"}
    if view.status.terminal:
        return web.json_response(view.model_dump(mode="json"), status=200, headers=headers)
    accepted = JobAccepted(job_id=view.job_id, status="queued")
    return web.json_response(accepted.model_dump(mode="json"), status=202, headers=headers)


def checked_media(data: bytes) -> MediaType:
    if not data:
        raise EmptyFile("the uploaded file is empty")
    return check_media(data)


async def store_upload(request: web.Request, job_id: str, data: bytes, mime: str) -> Upload:
    upload = Upload(object_key=original_key(job_id), size=len(data), sha256=hashlib.sha256(data).hexdigest(), mime=mime)
    await asyncio.to_thread(request.app[keys.STORE].put_bytes, upload.object_key, data, mime)
    return upload


async def get_job(request: web.Request) -> web.Response:
    view = await request.app[keys.JOB_STATUS].lookup(request.match_info["job_id"], request[auth.CALLER].key_id)
    return web.json_response(view.model_dump(mode="json"))


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        message = f"limit must be a whole number from 1 to {MAX_PAGE}"
        raise InvalidParameter(message, code="invalid_limit", field="limit")
    return int(raw)


async def list_jobs(request: web.Request) -> web.Response:
    limit = parse_limit(request.query.get("limit"))
    owner = request[auth.CALLER].key_id
    jobs, cursor = await request.app[keys.JOB_STATUS].owned(owner, limit, request.query.get("cursor"))
    page = JobPage(jobs=jobs, next_cursor=cursor)
    return web.json_response(page.model_dump(mode="json"))

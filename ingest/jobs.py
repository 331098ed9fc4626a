"""``POST /v1/jobs`` and ``GET /v1/jobs/{job_id}``.

A submission is checked in a fixed order, each check with its own error code: the ``wait`` parameter,
the content type, the body, the ops, then the media (size, emptiness, type sniffed from the bytes,
truncation) or the URL (through the URL guard). Only then is anything stored or published.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from processors.media_type import check_media
from processors.names import safe_name
from processors.urlguard import check_url
from schemas.errors import EmptyFile, InvalidParameter, MalformedRequest, TooLarge, UnsupportedMedia
from schemas.messages import (
    JobAccepted, JobRecord, JobRequest, KeepItem, Op, OpOptions, RemoteUrl, UniquifyJob, Upload, new_job_id, utcnow,
)
from ingest import keys
from ingest.status import queued_view
from sink.objects import original_key, request_key

DEFAULT_OPS = (Op.METADATA,)
# Uniquification takes many images and its own parameters: it has its own route, POST /v1/uniquify.
JOB_OPS = (Op.METADATA, Op.PHASH, Op.STRIP)
READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Submission:
    ops: list[Op]
    options: OpOptions
    name: str
    data: bytes | None = None
    url: str | None = None


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


def require_multipart(request: web.Request) -> None:
    if request.content_type != "multipart/form-data":
        raise UnsupportedMedia(f"send multipart/form-data, not {request.content_type}", code="unsupported_content_type")


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
    return Submission(parse_ops(fields.get("ops")), parse_options(fields), form.filename or "file", data=form.data)


async def read_json(request: web.Request) -> Submission:
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedRequest("body must be a JSON object")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise MalformedRequest("body has no 'url' string", code="missing_url")
    fields = {**request.query, **body}
    name = safe_name(urlsplit(url).path, fallback="download")
    return Submission(parse_ops(fields.get("ops")), parse_options(fields), name, url=url)


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
    submission = await read_submission(request)
    job_id = new_job_id()
    if submission.data is not None:
        source = await store_upload(request, job_id, submission.data)
    else:
        await check_url(submission.url, request.app[keys.SETTINGS])
        source = RemoteUrl(url=submission.url)
    job = JobRequest(
        job_id=job_id, ops=submission.ops, options=submission.options, name=submission.name, source=source,
        created_at=utcnow(),
    )  # fmt: skip
    return await accept(request, "medialane.jobs", job, wait)


async def accept(request: web.Request, topic: str, job: JobRequest | UniquifyJob, wait: float) -> web.Response:
    """Records the job, publishes it as queued, and answers 202; or 200 with the job if it ends within ``wait``."""
    record = JobRecord.model_validate(job.model_dump())
    await asyncio.to_thread(request.app[keys.STORE].put_json, request_key(job.job_id), job.model_dump(mode="json"))
    headers = {"Location": f"/v1/jobs/{job.job_id}"}
    with request.app[keys.WATCHER].watch(queued_view(record)) as finished:
        await request.app[keys.PUBLISHER].submit(record, topic, job)
        if wait:
            view = await finished(wait)
            if view.status.terminal:
                return web.json_response(view.model_dump(mode="json"), status=200, headers=headers)
    accepted = JobAccepted(job_id=job.job_id, status="queued")
    return web.json_response(accepted.model_dump(mode="json"), status=202, headers=headers)


async def store_upload(request: web.Request, job_id: str, data: bytes) -> Upload:
    if not data:
        raise EmptyFile("the uploaded file is empty")
    kind = check_media(data)
    upload = Upload(
        object_key=original_key(job_id), size=len(data), sha256=hashlib.sha256(data).hexdigest(), mime=kind.mime
    )
    await asyncio.to_thread(request.app[keys.STORE].put_bytes, upload.object_key, data, kind.mime)
    return upload


async def get_job(request: web.Request) -> web.Response:
    view = await request.app[keys.JOB_STATUS].lookup(request.match_info["job_id"])
    return web.json_response(view.model_dump(mode="json"))

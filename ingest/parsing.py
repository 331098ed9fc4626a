"""Reading requests: query parameters, multipart and JSON bodies, ops and options, the webhook and the
client's id, each refused with its own error code; and a URL job's file name.

The job routes (ingest/jobs.py), the other routes that take an upload or a webhook (ingest/similar.py,
ingest/uniquify.py) and the reference APIs' routes (ingest/compat*.py) all read with these, so a bad
request is refused the same way whichever route it came to.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from media.accepts import check_accepted
from media.media_type import sniff
from media.names import safe_name
from adapters.urlguard import check_url
from schemas.errors import (
    HostUnresolvable, InvalidParameter, MalformedRequest, TooLarge, UnsupportedMedia, UrlForbidden,
)  # fmt: skip
from schemas.messages import KeepItem, Op, OpOptions
from schemas.settings import Settings
from ingest import keys

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
    """A job as read from a request. An upload is checked against the ops as the submission is made, on
    every route that makes one: 415 ``unsupported_media`` when no op of the job takes its type (media/accepts)."""

    ops: list[Op]
    options: OpOptions
    name: str
    data: bytes | None = None
    url: str | None = None
    callback: Callback = Callback()

    def __post_init__(self) -> None:
        # An empty upload is refused as such by the job routes, after this.
        if self.data:
            check_accepted(sniff(self.data), self.ops)


async def read_callback(fields: Mapping[str, object], settings: Settings, query_id: str | None = None) -> Callback:
    """``webhook_url`` and ``id`` from a request's fields (JSON body, multipart parts, query), checked:
    the webhook by the URL guard (``url_forbidden``, ``dns_failed``), the id a string. Empty or null means none."""
    url, client_id = fields.get("webhook_url") or None, fields.get("id") or None
    if url is not None:
        if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL:
            raise InvalidParameter(f"webhook_url must be an http(s) URL of at most {MAX_WEBHOOK_URL} characters",
                                   code="invalid_webhook_url", field="webhook_url")  # fmt: skip
        try:
            await check_url(url, settings)
        except (UrlForbidden, HostUnresolvable) as exc:
            raise type(exc)(f"webhook_url: {exc.message}", field="webhook_url") from exc
    check_client_id(client_id)
    # The body's id wins over the query's, but a query id no request may carry is refused all the same.
    check_client_id(query_id)
    return Callback(url, client_id)


def check_client_id(client_id: object) -> None:
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID):
        message = f"id must be a string of at most {MAX_CLIENT_ID} characters"
        raise InvalidParameter(message, code="invalid_id", field="id")


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


def media_type_of(request: web.Request) -> str:
    """The body's media type without its parameters, as aiohttp's ``content_type`` gives it. That property
    parses the header through the email package: a tenth of ingest's CPU for an upload."""
    header = request.headers.get(hdrs.CONTENT_TYPE)
    return header.partition(";")[0].strip().lower() if header else "application/octet-stream"


def require_multipart(request: web.Request, field: str | None = None) -> None:
    """Refuses a body that is not multipart; ``field`` names the part the caller expects."""
    if (media_type := media_type_of(request)) != "multipart/form-data":
        raise UnsupportedMedia(f"send multipart/form-data, not {media_type}", code="unsupported_content_type",
                               field=field)  # fmt: skip


async def read_form(request: web.Request) -> Form:
    """A multipart body: the ``file`` part within the upload limit, the other parts as text."""
    require_multipart(request)
    limit = request.app[keys.SETTINGS].max_upload_bytes
    filename, data, fields, stray = None, None, {}, []
    try:
        async for part in await request.multipart():
            if part.name == "file":
                filename = safe_name(part.filename)
                data = await read_limited(part, limit)
            elif part.filename is not None:
                # A file under another name is not a text field: decoding it would fail as UTF-8.
                stray.append(part.name or "(unnamed)")
                await part.release()
            elif part.name:
                fields[part.name] = await part.text()
    except ValueError as exc:
        # aiohttp's multipart reader says "no boundary", "truncated body"... as ValueError.
        raise MalformedRequest(f"malformed multipart body: {exc}") from exc
    if data is None:
        sent = f"; it has a file under {', '.join(repr(name) for name in stray)}" if stray else ""
        raise MalformedRequest(f"multipart body has no 'file' part{sent}: send the file as 'file'",
                               code="missing_file", field="file")  # fmt: skip
    return Form(filename, data, fields)


async def read_multipart(request: web.Request) -> Submission:
    form = await read_form(request)
    fields = {**request.query, **form.fields}
    ops, options = parse_ops(fields.get("ops")), parse_options(fields)
    callback = await read_callback(fields, request.app[keys.SETTINGS], request.query.get("id"))
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
    callback = await read_callback(fields, request.app[keys.SETTINGS], request.query.get("id"))
    return Submission(ops, options, name, url=url, callback=callback)


async def read_submission(request: web.Request) -> Submission:
    media_type = media_type_of(request)
    if media_type == "multipart/form-data":
        return await read_multipart(request)
    if media_type == "application/json":
        return await read_json(request)
    raise UnsupportedMedia(
        f"send multipart/form-data with a 'file' part or application/json with a 'url', not {media_type}",
        code="unsupported_content_type",
    )


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        message = f"limit must be a whole number from 1 to {MAX_PAGE}"
        raise InvalidParameter(message, code="invalid_limit", field="limit")
    return int(raw)

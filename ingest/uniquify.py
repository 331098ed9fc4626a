"""Uniquification: ``POST /v1/uniquify`` (many images, a zip of N copies each), ``POST
/v1/uniquify/single`` (one copy straight back), and the EXIF donors that ``exif=3`` copies from.

Parameters come in the query string, named and bounded as in imgfactory's API (processors/uniquify.py
documents them); a bad one answers 422 with ``field`` naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from aiohttp import web

from ingest import keys
from ingest.jobs import accept, parse_wait, read_limited, require_multipart
from processors.media_type import check_media
from processors.names import safe_name
from processors.uniquify import MAX_SEED, ExifMode, UniquifyParams, donor_exif, parse_params, uniquify_single
from schemas.errors import EmptyFile, InvalidParameter, MalformedRequest, NotFound
from schemas.messages import UniquifyJob, UniquifySource, new_job_id, utcnow
from sink.objects import donor_key, source_key

IMAGE_FIELDS = frozenset({"images", "images[]", "image", "file"})
JOB_PARAMS = frozenset({"wait"})


async def read_images(request: web.Request) -> list[tuple[str, bytes]]:
    """Every image part of a multipart body, each checked like an upload, in order."""
    require_multipart(request)
    settings = request.app[keys.SETTINGS]
    images = []
    try:
        async for part in await request.multipart():
            if part.name not in IMAGE_FIELDS:
                continue
            if len(images) == settings.uniquify_max_images:
                raise InvalidParameter(f"at most {settings.uniquify_max_images} images per job",
                                       code="too_many_images", field="images")  # fmt: skip
            data = await read_limited(part, settings.max_upload_bytes)
            if not data:
                raise EmptyFile(f"image {len(images) + 1} ({safe_name(part.filename)}) is empty")
            if check_media(data).family != "image":
                raise InvalidParameter(f"{safe_name(part.filename)} is not an image", code="not_an_image", field="images")
            images.append((safe_name(part.filename, fallback="image"), data))
    except ValueError as exc:
        raise MalformedRequest(f"malformed multipart body: {exc}") from exc
    if not images:
        raise MalformedRequest("send the images as multipart parts named 'images'", code="missing_file")
    return images


async def uniquify_params(request: web.Request) -> tuple[UniquifyParams, str | None]:
    """The query's parameters, and the object key of the donor exif=3 names (which must exist)."""
    query = {k: v for k, v in request.query.items() if k not in JOB_PARAMS}
    params = parse_params(query, request.app[keys.SETTINGS].uniquify_max_copies)
    if params.exif is not ExifMode.DONOR:
        return params, None
    key = donor_key(params.self_exif_id)
    if not await asyncio.to_thread(request.app[keys.STORE].exists, key):
        raise InvalidParameter(f"self_exif_id: no EXIF donor {params.self_exif_id}", code="invalid_parameter",
                               field="self_exif_id")  # fmt: skip
    return params, key


async def create_uniquify_job(request: web.Request) -> web.Response:
    wait = parse_wait(request)
    params, donor = await uniquify_params(request)
    images = await read_images(request)
    job_id = new_job_id()
    store = request.app[keys.STORE]
    sources = []
    for index, (name, data) in enumerate(images):
        await asyncio.to_thread(store.put_bytes, source_key(job_id, index), data, check_media(data).mime)
        sources.append(UniquifySource(object_key=source_key(job_id, index), name=name,
                                      md5=hashlib.md5(data).hexdigest()))  # fmt: skip
    seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED)
    job = UniquifyJob(job_id=job_id, params=params.model_dump(mode="json"), seed=seed, sources=sources,
                      donor_key=donor, created_at=utcnow())  # fmt: skip
    return await accept(request, "medialane.uniquify.jobs", job, wait)


async def uniquify_one(request: web.Request) -> web.Response:
    params, donor = await uniquify_params(request)
    (_, data), *rest = await read_images(request)
    if rest:
        raise InvalidParameter("send exactly one image", code="too_many_images", field="images")
    store = request.app[keys.STORE]
    donor_exif_block = await asyncio.to_thread(store.get_bytes, donor) if donor else None
    seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED)
    copy = await asyncio.to_thread(uniquify_single, data, params, seed, donor_exif_block)
    return web.Response(body=copy, content_type="image/jpeg")


async def create_donor(request: web.Request) -> web.Response:
    (name, data), *rest = await read_images(request)
    if rest:
        raise InvalidParameter("send exactly one image", code="too_many_images", field="images")
    block = await asyncio.to_thread(donor_exif, data)
    donor_id = secrets.randbelow(MAX_SEED) + 1
    store = request.app[keys.STORE]
    await asyncio.to_thread(store.put_bytes, donor_key(donor_id), block)
    document = {"id": donor_id, "name": name, "size": len(block), "created_at": utcnow().isoformat()}
    await asyncio.to_thread(store.put_json, f"{donor_key(donor_id)}.json", document)
    return web.json_response({"success": True, **document}, status=201)


async def list_donors(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    names = [key for key in await asyncio.to_thread(store.list, "donors/") if key.endswith(".json")]
    donors = [await asyncio.to_thread(store.get_json, key) for key in names]
    return web.json_response({"success": True, "donors": sorted(donors, key=lambda d: d["created_at"])})


async def delete_donor(request: web.Request) -> web.Response:
    try:
        key = donor_key(int(request.match_info["donor_id"]))
    except ValueError:
        raise NotFound("no such EXIF donor", code="donor_not_found") from None
    store = request.app[keys.STORE]
    if not await asyncio.to_thread(store.exists, key):
        raise NotFound("no such EXIF donor", code="donor_not_found")
    await asyncio.to_thread(store.delete, f"{key}.json")
    await asyncio.to_thread(store.delete, key)
    return web.json_response({"success": True, "deleted": int(request.match_info["donor_id"])})

"""Uniquification: ``POST /v1/uniquify`` (many images, a zip of N copies each), ``POST
/v1/uniquify/single`` (one copy straight back), and the EXIF donors that ``exif=3`` copies from.

Donors belong to the API key that stored them: another key neither lists, uses nor deletes them.
Parameters come in the query string, named and bounded as in imgfactory's API (media/uniquify/params.py
documents them); a bad one answers 422 with ``field`` naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from aiohttp import web

from ingest import auth, keys
from ingest.jobs import admitted_job_id, answer, enqueue
from ingest.parsing import parse_wait, read_callback, read_limited, require_multipart
from media.media_type import check_intact
from media.names import safe_name
from schemas.uniquify import ExifMode, UniquifyParams
from media.uniquify.copy import uniquify_single
from media.uniquify.exif import donor_exif
from media.uniquify.params import MAX_SEED, parse_params
from schemas.errors import EmptyFile, InvalidParameter, MalformedRequest, MedialaneError, NotFound
from schemas.messages import UniquifyJob, UniquifySource, utcnow
from schemas.views import JobView
from adapters.objects import donor_key, source_key

IMAGE_FIELDS = frozenset({"images", "images[]", "image", "file"})
# Query parameters that are not uniquification's: the job's own, and the API key the guard reads.
OTHER_PARAMS = frozenset({"wait", "webhook_url", "id", auth.KEY_PARAM})


async def read_images(request: web.Request, field: str = "images") -> list[tuple[str, bytes]]:
    """Every image part of a multipart body, each checked like an upload, in order; errors name ``field``."""
    require_multipart(request, field)
    settings = request.app[keys.SETTINGS]
    images = []
    try:
        async for part in await request.multipart():
            if part.name not in IMAGE_FIELDS:
                continue
            if len(images) == settings.uniquify_max_images:
                raise InvalidParameter(f"at most {settings.uniquify_max_images} images per job", code="too_many_images")
            data = await read_limited(part, settings.max_upload_bytes)
            if not data:
                raise EmptyFile(f"image {len(images) + 1} ({safe_name(part.filename)}) is empty")
            if check_intact(data).family != "image":
                raise InvalidParameter(f"{safe_name(part.filename)} is not an image", code="not_an_image")
            images.append((safe_name(part.filename, fallback="image"), data))
    except ValueError as exc:
        raise MalformedRequest(f"malformed multipart body: {exc}", field=field) from exc
    except MedialaneError as exc:
        # The size and media checks are the uploads' own, which know no field: here every part is ``field``.
        exc.field = exc.field or field
        raise
    if not images:
        raise MalformedRequest(f"send the images as multipart parts named '{field}'", code="missing_file", field=field)
    return images


async def one_image(request: web.Request) -> tuple[str, bytes]:
    image, *rest = await read_images(request, "image")
    if rest:
        raise InvalidParameter("send exactly one image", code="too_many_images", field="image")
    return image


async def owned_donor(request: web.Request, donor_id: int) -> str | None:
    """The object key of the caller's donor ``donor_id``; None when there is none (or it is another key's)."""
    key, store = donor_key(donor_id), request.app[keys.STORE]
    document = await asyncio.to_thread(store.get_json_or_none, f"{key}.json")
    return key if document is not None and document.get("owner") == request[auth.CALLER].key_id else None


async def uniquify_params(request: web.Request) -> tuple[UniquifyParams, str | None]:
    """The query's parameters, and the object key of the donor exif=3 names (which must exist)."""
    query = {k: v for k, v in request.query.items() if k not in OTHER_PARAMS}
    params = parse_params(query, request.app[keys.SETTINGS].uniquify_max_copies)
    if params.exif is not ExifMode.DONOR:
        return params, None
    key = await owned_donor(request, params.self_exif_id)
    if key is None:
        raise InvalidParameter(f"self_exif_id: no EXIF donor {params.self_exif_id}", code="invalid_parameter",
                               field="self_exif_id")  # fmt: skip
    return params, key


async def create_uniquify_job(request: web.Request) -> web.Response:
    wait = parse_wait(request)
    return answer(await submit(request, wait))


async def submit(request: web.Request, wait: float) -> JobView:
    """The request's uniquify job (parameters and callback from the query, images from the body), enqueued."""
    params, donor = await uniquify_params(request)
    callback = await read_callback(request.query, request.app[keys.SETTINGS])
    images = await read_images(request)
    job_id = await admitted_job_id(request)
    store = request.app[keys.STORE]
    sources = []
    for index, (name, data) in enumerate(images):
        await asyncio.to_thread(store.put_bytes, source_key(job_id, index), data, check_intact(data).mime)
        sources.append(UniquifySource(object_key=source_key(job_id, index), name=name,
                                      md5=hashlib.md5(data).hexdigest()))  # fmt: skip
    seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED)
    job = UniquifyJob(job_id=job_id, params=params, seed=seed, sources=sources,
                      donor_key=donor, created_at=utcnow(), client_id=callback.client_id,
                      webhook_url=callback.webhook_url)  # fmt: skip
    return await enqueue(request, "medialane.uniquify.jobs", job, wait)


async def uniquify_one(request: web.Request) -> web.Response:
    params, donor = await uniquify_params(request)
    _, data = await one_image(request)
    store = request.app[keys.STORE]
    donor_exif_block = await asyncio.to_thread(store.get_bytes, donor) if donor else None
    seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED)
    copy = await asyncio.to_thread(uniquify_single, data, params, seed, donor_exif_block)
    return web.Response(body=copy, content_type="image/jpeg")


async def create_donor(request: web.Request) -> web.Response:
    name, data = await one_image(request)
    block = await asyncio.to_thread(donor_exif, data)
    donor_id = secrets.randbelow(MAX_SEED) + 1
    store = request.app[keys.STORE]
    await asyncio.to_thread(store.put_bytes, donor_key(donor_id), block)
    document = {"id": donor_id, "name": name, "size": len(block), "created_at": utcnow().isoformat(),
                "owner": request[auth.CALLER].key_id}  # fmt: skip
    await asyncio.to_thread(store.put_json, f"{donor_key(donor_id)}.json", document)
    return web.json_response({"success": True, **document}, status=201)


async def list_donors(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    names = [key for key in await asyncio.to_thread(store.list, "donors/") if key.endswith(".json")]
    donors = [await asyncio.to_thread(store.get_json, key) for key in names]
    donors = [donor for donor in donors if donor.get("owner") == request[auth.CALLER].key_id]
    return web.json_response({"success": True, "donors": sorted(donors, key=lambda d: d["created_at"])})


async def delete_donor(request: web.Request) -> web.Response:
    try:
        key = await owned_donor(request, int(request.match_info["donor_id"]))
    except ValueError:
        key = None
    if key is None:
        raise NotFound("no such EXIF donor", code="donor_not_found")
    store = request.app[keys.STORE]
    await asyncio.to_thread(store.delete, f"{key}.json")
    await asyncio.to_thread(store.delete, key)
    return web.json_response({"success": True, "deleted": int(request.match_info["donor_id"])})

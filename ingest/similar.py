"""Near-duplicate search: by hash, by uploaded image, by job; and the Hamming distance of two hashes.

Parameters are checked here, so a bad one is refused even with no worker up; the search itself runs on
a worker, whose replica of the index holds every hash and returns only the caller's: a key never sees
another key's jobs, as with ``GET /v1/jobs/{job_id}``.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from ingest import auth, keys
from ingest.parsing import read_form
from media.media_type import check_intact
from media.phash import hamming, phash_image
from schemas.errors import InvalidParameter
from schemas.messages import Op, Status
from adapters.similar_query import SimilarQuery, hash_param, parse_query


async def search(request: web.Request, query: SimilarQuery) -> web.Response:
    if query.mirror and query.mirrored_phash is None:
        raise InvalidParameter(
            "transforms=mirror needs the image, not only its hash: use POST /v1/similar or /v1/jobs/{job_id}/similar",
            code="invalid_transforms",
        )
    # The caller's key, whatever the query string says: every search route comes through here.
    mine = dataclasses.replace(query, owner=request[auth.CALLER].key_id)
    found = await request.app[keys.WORKERS].get_ok("/similar", mine.as_params())
    return web.json_response(found)


async def similar_to_hash(request: web.Request) -> web.Response:
    return await search(request, parse_query(request.query))


async def similar_to_image(request: web.Request) -> web.Response:
    form = await read_form(request)
    check_intact(form.data)
    hashed = await asyncio.to_thread(phash_image, form.data)
    query = parse_query({**request.query, "mirrored_phash": hashed.mirrored_hash, "sha256": hashed.sha256},
                        phash=hashed.hash)  # fmt: skip
    return await search(request, query)


async def similar_to_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    view = await request.app[keys.JOB_STATUS].lookup(job_id, request[auth.CALLER].key_id)
    hashed = view.result.get(Op.PHASH)
    if view.status is not Status.COMPLETED or hashed is None:
        raise InvalidParameter(
            f"job {job_id} has no pHash to search with (status {view.status}, ops {[str(op) for op in view.ops]})",
            code="job_has_no_phash",
        )
    params = {**request.query, "mirrored_phash": hashed["mirrored_phash"], "sha256": hashed["sha256"], "exclude": job_id}
    return await search(request, parse_query(params, phash=hashed["phash"]))


async def distance(request: web.Request) -> web.Response:
    a, b = (hash_param(name, request.query.get(name)) for name in ("a", "b"))
    return web.json_response({"success": True, "a": a, "b": b, "distance": hamming(a, b)})

"""``GET /v1/jobs/{job_id}/preview``: a small JPEG of the job's image, for the web page.

Made from the stored original on the first request and kept beside the job's results, so later requests
read it back and jobs nobody looks at cost nothing. A uniquify job's preview is of its first image.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.objects import original_key, preview_key, source_key
from ingest import auth, keys
from media.preview import render_preview
from schemas.errors import InvalidParameter, NotFound, TooLarge, UnsupportedMedia
from schemas.messages import Op


async def job_preview(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    view = await request.app[keys.JOB_STATUS].lookup(job_id, request[auth.CALLER].key_id)
    store = request.app[keys.STORE]
    preview = await asyncio.to_thread(store.get_bytes_or_none, preview_key(job_id))
    if preview is None:
        source = source_key(job_id, 0) if Op.UNIQUIFY in view.ops else original_key(job_id)
        original = await asyncio.to_thread(store.get_bytes_or_none, source)
        if original is None:
            raise NotFound(f"job {job_id} has no stored file yet (a URL is stored once a worker fetched it)",
                           code="preview_unavailable")  # fmt: skip
        try:
            preview = await asyncio.to_thread(render_preview, original)
        except (UnsupportedMedia, TooLarge) as exc:
            raise InvalidParameter(f"job {job_id}'s file has no preview: {exc.message}",
                                   code="preview_unsupported") from exc  # fmt: skip
        await asyncio.to_thread(store.put_bytes, preview_key(job_id), preview, "image/jpeg")
    # A job's preview never changes; only its key may read it, so private caches only.
    return web.Response(body=preview, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

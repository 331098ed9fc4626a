"""``GET /v1/downloads/{token}``: an expiring link's object, streamed from the object store; with
``?exif``, its EXIF tags in Qiniu's shape (ingest/compat_qiniu.py)."""

from __future__ import annotations

from aiohttp import web

from ingest import auth, compat_qiniu, keys
from ingest.streaming import stream_object
from adapters.links import verify


@auth.public
async def download(request: web.Request) -> web.StreamResponse:
    key, filename = verify(request.app[keys.SETTINGS], request.match_info["token"])
    if "exif" in request.query:
        return await compat_qiniu.object_exif(request, key, filename)
    return await stream_object(request, key, filename)

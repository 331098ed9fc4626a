"""An object of the store streamed to the client as a download, without holding it in memory."""

from __future__ import annotations

import asyncio
import mimetypes
from urllib.parse import quote

from aiohttp import web

from ingest import keys

CHUNK = 256 * 1024


def content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def stream_object(request: web.Request, key: str, filename: str) -> web.StreamResponse:
    reader = await asyncio.to_thread(request.app[keys.STORE].open, key)
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
                "Content-Disposition": content_disposition(filename),
                "Content-Length": reader.headers["Content-Length"],
            }
        )
        await response.prepare(request)
        while chunk := await asyncio.to_thread(reader.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        reader.close()
        reader.release_conn()

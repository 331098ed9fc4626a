"""``GET /``: the web page people use, and ``GET /web/{name}``: its files, from the package (no CDN).

The page is static: the server never writes the API key into it. The browser keeps the key and sends it
as ``X-API-Key`` on every API call it makes (ingest/web/api.js).
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from ingest import auth
from schemas.errors import NotFound

WEB = files("ingest") / "web"
TYPES = {"js": "text/javascript", "css": "text/css"}
# Read once: a fixed set of names, so no request name ever reaches the file system.
ASSETS = {
    entry.name: (entry.read_bytes(), TYPES[entry.name.rpartition(".")[2]])
    for entry in WEB.iterdir()
    if entry.name.rpartition(".")[2] in TYPES
}
PAGE = (WEB / "index.html").read_bytes()
# Everything from this origin; blob: for previews fetched with the key. No inline script can run.
POLICY = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


@auth.public
async def page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"})  # fmt: skip


@auth.public
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise NotFound(f"no page file {name!r}", code="asset_not_found")
    body, content_type = ASSETS[name]
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers={"Cache-Control": "no-cache"})

"""``GET /openapi.json``, ``GET /docs``: the API's one OpenAPI document and a Swagger UI page to browse it.

The document is ``ingest/openapi.yaml``, the file tests/test_openapi.py checks against the routes, sent
as JSON. The page's assets come from the ``swagger-ui-bundle-v2`` package and are served from
``/docs/static/``, so the docs work on a machine without internet access (no CDN).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import yaml
from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from ingest import auth
from schemas.errors import NotFound

# The only Swagger UI files the page loads: a fixed list, so no request name ever reaches the file system.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>medialane API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"""


@cache
def document_json() -> bytes:
    """The OpenAPI document as JSON bytes, read once from the package."""
    spec = yaml.safe_load(files("ingest").joinpath("openapi.yaml").read_text(encoding="utf-8"))
    return json.dumps(spec, ensure_ascii=False).encode()


@auth.public
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=document_json(), content_type="application/json")


@auth.public
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@auth.public
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise NotFound(f"no docs asset {name!r}", code="asset_not_found")
    return web.FileResponse(
        swagger_ui_path / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "public, max-age=86400"}
    )

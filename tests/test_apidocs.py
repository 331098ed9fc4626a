"""``/openapi.json`` and ``/docs`` on the live server: public, the packaged document, no asset from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]


async def test_openapi_json_is_the_document_and_needs_no_key(ingest):
    async with aiohttp.ClientSession() as anonymous, anonymous.get(ingest.make_url("/openapi.json")) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == yaml.safe_load((ROOT / "ingest" / "openapi.yaml").read_text())


async def test_docs_page_loads_only_its_own_packaged_assets(ingest):
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(ingest.make_url("/docs")) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not load from a CDN"
        assets = re.findall(r"""(?:src|href)="(/[^"]+)\"""", page)
        assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"} <= set(assets)
        assert '"/openapi.json"' in page
        for asset in assets:
            async with anonymous.get(ingest.make_url(asset)) as response:
                assert response.status == 200, asset
                assert len(await response.read()) > 0, asset
        async with anonymous.get(ingest.make_url("/docs/static/swagger-ui-bundle.js")) as response:
            assert response.content_type == "text/javascript"
            # Swagger UI 5 is the first major that renders OpenAPI 3.1 documents.
            assert re.search(rb'PACKAGE_VERSION:"5\.', await response.read())


async def test_docs_assets_are_a_fixed_list(ingest):
    async with aiohttp.ClientSession() as anonymous:
        for name in ("index.html", "swagger-ui.js.map", "..%2F__init__.py", "%2e%2e%2fopenapi.yaml"):
            async with anonymous.get(ingest.make_url(f"/docs/static/{name}")) as response:
                assert response.status == 404, name
                assert (await response.json())["code"] in ("asset_not_found", "route_not_found"), name

"""The web page's server side without a browser: ``GET /`` and its files, and the ``GET /v1/events`` stream."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import aiohttp

from conftest import SAMPLES
from ingest.page import ASSETS
from test_pipeline import submit, upload
from test_rejections import expect_error

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
# A script, style sheet, image or fetch from another origin: an attribute, url() or string naming a host.
ELSEWHERE = re.compile(r"""(src|href)=["']?(https?:)?//|url\(["']?(https?:)?//|fetch\(["'`](https?:)?//|@import""")


async def events(response: aiohttp.ClientResponse):
    """Each ``(event, data)`` of a Server-Sent Events body, as it arrives."""
    event, data = "message", []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


async def test_the_page_and_its_files_need_no_key_and_carry_none(ingest, api_key):
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(ingest.make_url("/")) as response:
            page = await response.text()
            assert response.status == 200 and response.content_type == "text/html"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert api_key not in page
        # Offline: neither the page nor its files load anything from another origin.
        assert not ELSEWHERE.search(page)
        for name in ASSETS:
            async with anonymous.get(ingest.make_url(f"/web/{name}")) as response:
                assert response.status == 200, name
                assert not ELSEWHERE.search(await response.text()), name
        async with anonymous.get(ingest.make_url("/web/..%2Fapp.py")) as response:
            await expect_error(response, 404, "asset_not_found")


async def test_stream_pushes_a_new_job_of_the_key_until_it_ends(api):
    async with api.get("/v1/events", params={"wait": "60"}) as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        received = events(stream)
        assert await anext(received) == ("ready", {"following": []})
        job_id = await submit(api, CANON)
        seen = []
        async with asyncio.timeout(30):
            async for event, view in received:
                assert event == "job"
                # Late events of the key's earlier jobs may come too: the stream follows all its new ones.
                if view["job_id"] != job_id:
                    continue
                seen.append(view["status"])
                if view["status"] == "completed":
                    break
    assert seen[0] == "queued" and seen[-1] == "completed"
    # The document comes whole, result documents included, as GET /v1/jobs/{job_id} gives it.
    assert view["result"]["metadata"]["file"]["name"] == "Canon_40D.jpg"


async def test_a_reconnecting_client_resumes_its_jobs_by_id(api):
    async with api.post("/v1/jobs", data=upload(CANON), params={"wait": "30"}) as response:
        done = await response.json()
    async with api.get("/v1/events", params={"ids": done["job_id"], "wait": "0"}) as stream:
        received = [item async for item in events(stream)]
    assert received == [("ready", {"following": [done["job_id"]]}), ("job", done)]


async def test_the_stream_refuses_other_keys_jobs_and_bad_parameters(api, ingest, other_key):
    job_id = await submit(api, CANON)
    async with aiohttp.ClientSession(headers={"X-API-Key": other_key}) as other:
        async with other.get(ingest.make_url("/v1/events"), params={"ids": job_id}) as response:
            await expect_error(response, 404, "job_not_found")
    async with api.get("/v1/events", params={"ids": ",".join(str(uuid.uuid4()) for _ in range(101))}) as response:
        await expect_error(response, 422, "too_many_ids")
    async with api.get("/v1/events", params={"wait": "3601"}) as response:
        await expect_error(response, 422, "invalid_wait")

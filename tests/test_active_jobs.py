"""A key's active jobs end as the status topic says they ended: its cap never holds a job that has finished."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from adapters.apikeys import KeyStore, key_id_of
from adapters.objects import ObjectStore
from conftest import SAMPLES
from ingest import keys
from ingest.app import create_app

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


async def test_a_finished_job_stops_counting_without_a_lookup(stack, workers, settings):
    app = create_app(settings.model_copy(update={"max_active_jobs": 2}))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    raw, _ = KeyStore(ObjectStore(settings)).create("active-jobs")
    guard = app[keys.GUARD]
    looked_up = []

    async def counted(key_id, jobs):
        looked_up.append(key_id)
        return set()

    guard.active_jobs = counted
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/")), headers={"X-API-Key": raw}) as api:
            for _ in range(3):
                form = aiohttp.FormData()
                form.add_field("file", CANON.read_bytes(), filename="a.jpg", content_type="image/jpeg")
                async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
                    body = await response.json()
                    assert (response.status, body["status"]) == (200, "completed"), body
        # Three jobs under a cap of two, and the cap never had to look one up: each was forgotten as it ended.
        assert guard.active[key_id_of(raw)] == set()
        assert looked_up == []
    finally:
        await server.close()

"""Deleting a job through the API, and the bucket's retention rules, on the session's real stack."""

from __future__ import annotations

import asyncio
import io
import random

import aiohttp
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from adapters.objects import ObjectStore
from conftest import poll_job, produce
from ingest.status import StatusWatcher
from schemas.deletion import JobDeleted
from schemas.job_state import queued
from schemas.messages import JobRecord, Op, new_job_id, utcnow
from schemas.topics import DELETIONS, STATUS
from test_rejections import expect_error


def unique_jpeg(seed: int) -> bytes:
    """An image no other test indexes, so an exact search finds only its own jobs."""
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 48))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 48)])
    exif = Image.Exif()
    exif[0x8825] = {2: (48.0, 51.0, 29.0), 1: "N"}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def similar_job_ids(api: aiohttp.ClientSession, phash: str) -> list[str]:
    # Right after the session's workers start, their index replicas may still be catching up (503): asked again.
    async with asyncio.timeout(30):
        while True:
            async with api.get("/v1/similar", params={"phash": phash, "max_distance": "0"}) as response:
                body = await response.json()
                if response.status == 200:
                    return [match["job_id"] for match in body["results"]]
                assert (response.status, body["code"]) == (503, "workers_unavailable"), body
            await asyncio.sleep(0.2)


async def until_searchable(api: aiohttp.ClientSession, phash: str, job_id: str) -> None:
    # A replica indexes a job's hash a fetch after the job's end (docs/similar.md), not at the instant ?wait answers.
    async with asyncio.timeout(30):
        while job_id not in await similar_job_ids(api, phash):
            await asyncio.sleep(0.1)


def objects_of(store: ObjectStore, job_id: str) -> list[str]:
    return [key for key in store.list("") if job_id in key]


@pytest.fixture
async def finished_job(api) -> dict:
    form = aiohttp.FormData()
    form.add_field("file", unique_jpeg(random.getrandbits(32)), filename="where-i-live.jpg", content_type="image/jpeg")
    form.add_field("ops", "metadata,phash,strip")
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
        assert response.status == 200, job
    assert job["status"] == "completed", job
    return job


async def test_delete_removes_every_object_the_lookup_the_listing_and_the_hash(api, ingest, settings, other_key,
                                                                              finished_job):  # fmt: skip
    job_id, phash = finished_job["job_id"], finished_job["result"]["phash"]["phash"]
    store = ObjectStore(settings)
    before = objects_of(store, job_id)
    assert any(key.startswith("originals/") for key in before) and any(key.startswith("results/") for key in before)
    assert any(key.startswith("tmp/strip/") for key in before)
    await until_searchable(api, phash, job_id)

    async with aiohttp.ClientSession(base_url=str(ingest.make_url("/")), headers={"X-API-Key": other_key}) as other:
        async with other.delete(f"/v1/jobs/{job_id}") as response:
            await expect_error(response, 404, "job_not_found")
    assert objects_of(store, job_id) == before

    async with api.delete(f"/v1/jobs/{job_id}") as response:
        body = await response.json()
        assert response.status == 200, body
    assert body == {"success": True, "job_id": job_id, "deleted": True, "objects": len(before)}

    assert objects_of(store, job_id) == []
    # Before the answer, the status table shows the job deleted, not merely absent (as a job that ended a moment
    # ago may be): no late status event can bring it back.
    async with aiohttp.ClientSession() as worker, worker.get(f"{settings.worker_urls[0]}/jobs/{job_id}") as response:
        assert (response.status, (await response.json())["code"]) == (404, "job_deleted")
    async with api.get(f"/v1/jobs/{job_id}") as response:
        await expect_error(response, 404, "job_not_found")
    async with api.get("/v1/jobs", params={"limit": "100"}) as response:
        assert job_id not in [job["job_id"] for job in (await response.json())["jobs"]]
    assert job_id not in await similar_job_ids(api, phash)
    async with api.delete(f"/v1/jobs/{job_id}") as response:
        await expect_error(response, 404, "job_not_found")


async def test_a_deleted_hash_stays_out_of_search_when_the_same_image_comes_again(api, finished_job):
    job_id, phash = finished_job["job_id"], finished_job["result"]["phash"]["phash"]
    async with api.delete(f"/v1/jobs/{job_id}") as response:
        assert response.status == 200, await response.json()
    async with api.get(f"/v1/jobs/{job_id}/similar") as response:
        await expect_error(response, 404, "job_not_found")
    assert await similar_job_ids(api, phash) == []


async def test_the_watcher_never_brings_back_a_job_whose_deletion_it_read_first(stack, settings):
    """Ingest's watcher reads medialane.status beside medialane.deletions: a deleted job's late queued event
    (a stage redelivering it) must not make this process answer for the job again."""
    watcher = StatusWatcher(settings)
    await watcher.start()
    try:
        gone = new_job_id()
        partitions = list(range(settings.topic_partitions))

        def partition_of(job_id: str) -> int:
            return DefaultPartitioner()(job_id.encode(), partitions, partitions)

        # On gone's partition, so that the watcher reads it after gone's late event.
        later = next(job_id for job_id in iter(new_job_id, None) if partition_of(job_id) == partition_of(gone))
        deletion = JobDeleted(job_id=gone, owner="k", deleted_at=utcnow())
        await produce(settings, DELETIONS.name, deletion.model_dump_json().encode(), gone.encode())
        async with asyncio.timeout(20):
            while gone not in watcher.deleted:
                await asyncio.sleep(0.05)
        for job_id in (gone, later):
            event = queued(JobRecord(job_id=job_id, ops=[Op.METADATA], created_at=utcnow(), owner="k"))
            await produce(settings, STATUS.name, event.model_dump_json().encode(), job_id.encode())
        async with asyncio.timeout(20):
            while later not in watcher.queued:
                await asyncio.sleep(0.05)
        assert gone not in watcher.queued
    finally:
        await watcher.stop()


async def test_a_running_job_is_refused_until_it_ends(api, settings):
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=unique_jpeg(7), content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/slow.jpg", slow)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with api.post("/v1/jobs", json={"url": str(server.make_url("/slow.jpg"))}) as response:
            job_id = (await response.json())["job_id"]
        async with api.delete(f"/v1/jobs/{job_id}") as response:
            await expect_error(response, 409, "job_running")
        release.set()
        assert (await poll_job(api, job_id))["status"] == "completed"
    finally:
        release.set()
        await server.close()
    async with api.delete(f"/v1/jobs/{job_id}") as response:
        assert response.status == 200, await response.json()
    assert objects_of(ObjectStore(settings), job_id) == []


def expiry_days(store: ObjectStore, bucket: str) -> dict[str, int]:
    config = store.client.get_bucket_lifecycle(bucket)
    return {rule.rule_filter.prefix: rule.expiration.days for rule in config.rules}


def test_the_bucket_expires_originals_and_results_after_their_days(stack, settings):
    store = ObjectStore(settings)
    assert expiry_days(store, settings.s3_bucket) == {"tmp/": 1, "originals/": 1, "results/": 30}
    custom = settings.model_copy(update={"s3_bucket": "retention-days", "originals_days": 3, "results_days": 45})
    ObjectStore(custom).ensure_bucket()
    assert expiry_days(store, "retention-days") == {"tmp/": 1, "originals/": 3, "results/": 45}

"""A job's path end to end: one hop after ingest (objects written and status events made per job), each op's
own outcome (a partial job in the view, the store, its result topic and the webhook), small status (the
list without documents), redeliveries recognisable by their event id, and readiness that tells the truth."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time

import aiohttp
import av
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters.kafka import end_offsets
from adapters.objects import ObjectStore, result_key
from conftest import SAMPLES, holding, produce
from ingest.keys import STORE
from schemas.messages import Op, result_event_id
from test_sink_stages import receiver  # noqa: F401 - the fixture: a webhook receiver and what it received

JPEG = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


def wav() -> bytes:
    """A tenth of a second of silence, written by PyAV: metadata reads it, pHash cannot."""
    out = io.BytesIO()
    with av.open(out, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def form(data: bytes, name: str, **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=name, content_type="application/octet-stream")
    for field, value in fields.items():
        body.add_field(field, value)
    return body


async def records_of(settings, topic: str, starts: dict[TopicPartition, int], job_id: str) -> list[dict]:
    """The job's records on ``topic`` from ``starts`` to the topic's end."""
    partitions = [tp for tp in starts if tp.topic == topic]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        ends = await end_offsets(settings.kafka_bootstrap, partitions)
        found = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found += [json.loads(r.value) for r in batch if r.key == job_id.encode()]
        return found
    finally:
        await consumer.stop()


async def offsets(settings, *topics: str) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(topic, p) for topic in topics for p in range(settings.topic_partitions)]
    return await end_offsets(settings.kafka_bootstrap, partitions)


@pytest.fixture
async def held(settings):
    """``held(*topics)``: the topics' end offsets now, their records kept from there until the test ends."""
    async with contextlib.AsyncExitStack() as stack:
        yield lambda *topics: stack.enter_async_context(holding(settings, *topics))


async def test_an_op_that_fails_leaves_a_partial_job_with_every_finished_result(api, settings, receiver, held):
    url, received = receiver
    starts = await held("medialane.metadata", "medialane.phash")
    data = form(wav(), "tone.wav", ops="metadata,phash", webhook_url=url)
    async with api.post("/v1/jobs", data=data, params={"wait": "30"}) as response:
        job = await response.json()
        assert response.status == 200, job

    job_id = job["job_id"]
    assert (job["status"], list(job["result"])) == ("partial", ["metadata"])
    assert job["outcomes"]["metadata"]["status"] == "completed"
    assert job["outcomes"]["phash"]["status"] == "failed"
    assert job["error"] == job["outcomes"]["phash"]["error"] and job["error"]["code"]
    async with api.get(f"/v1/jobs/{job_id}") as response:
        assert await response.json() == job
    stored = await asyncio.to_thread(ObjectStore(settings).get_json, result_key(job_id, Op.METADATA))
    assert stored == job["result"]["metadata"]
    [published] = await records_of(settings, "medialane.metadata", starts, job_id)
    assert published["metadata"] == stored
    assert await records_of(settings, "medialane.phash", starts, job_id) == []
    async with asyncio.timeout(20):
        while not received:
            await asyncio.sleep(0.1)
    [(_, body)] = received
    posted = json.loads(body)
    assert (posted["status"], posted["result"], posted["outcomes"]) == ("partial", job["result"], job["outcomes"])


async def test_a_one_op_upload_writes_three_objects_and_three_status_events(api, settings, held, ingest, monkeypatch):
    starts = await held("medialane.status")
    ingest_store, read = ingest.app[STORE], []
    get_bytes = ingest_store.get_bytes
    monkeypatch.setattr(ingest_store, "get_bytes", lambda key: read.append(key) or get_bytes(key))
    async with api.post("/v1/jobs", data=form(JPEG.read_bytes(), JPEG.name), params={"wait": "30"}) as response:
        job = await response.json()
        assert job["status"] == "completed", job
    job_id = job["job_id"]

    store = ObjectStore(settings)
    keys = [key for key in await asyncio.to_thread(store.list, "") if job_id in key]
    # The original, the result, and the key's listing entry holding the request record.
    assert len(keys) == 3, keys
    assert {key.split("/")[0] for key in keys} == {"originals", "results", "owners"}
    entry = next(key for key in keys if key.startswith("owners/"))
    assert (await asyncio.to_thread(store.get_json, entry))["job_id"] == job_id
    events = await records_of(settings, "medialane.status", starts, job_id)
    assert [event["status"] for event in events] == ["queued", "processing", "completed"]
    # Status events name the document (no op's ``result``); the end also carries it, for whoever waits on the job.
    assert all(event.get("result") is None for event in events)
    document = await asyncio.to_thread(store.get_json, result_key(job_id, Op.METADATA))
    assert events[-1]["documents"] == {"metadata": document} == job["result"]
    # So the ?wait answer took it from there: ingest did not read it back.
    assert result_key(job_id, Op.METADATA) not in read


async def test_the_job_list_answers_views_without_documents(api):
    async with api.post("/v1/jobs", data=form(JPEG.read_bytes(), JPEG.name), params={"wait": "30"}) as response:
        job = await response.json()
    async with api.get("/v1/jobs", params={"limit": "5"}) as response:
        page = await response.json()
    [listed] = [view for view in page["jobs"] if view["job_id"] == job["job_id"]]
    assert listed["result"] == {} and "metadata" in job["result"]
    assert listed["outcomes"] == job["outcomes"] and listed["status"] == "completed"


async def test_a_republished_job_request_yields_the_same_event_id(api, settings, held):
    starts = await held("medialane.metadata", "medialane.jobs")
    async with api.post("/v1/jobs", data=form(JPEG.read_bytes(), JPEG.name), params={"wait": "30"}) as response:
        job_id = (await response.json())["job_id"]
    [request] = await records_of(settings, "medialane.jobs", starts, job_id)
    [first] = await records_of(settings, "medialane.metadata", starts, job_id)
    redelivered_from = await offsets(settings, "medialane.metadata")

    await produce(settings, "medialane.jobs", json.dumps(request).encode(), job_id.encode())
    async with asyncio.timeout(30):
        while not (again := await records_of(settings, "medialane.metadata", redelivered_from, job_id)):
            await asyncio.sleep(0.2)
    assert first["event_id"] == again[0]["event_id"] == result_event_id(job_id, Op.METADATA)


async def readyz(api) -> tuple[int, dict]:
    async with api.get("/readyz") as response:
        return response.status, await response.json()


async def test_readiness_is_503_while_partitions_recover_and_200_only_when_every_lookup_succeeds(api, workers):
    jobs = []
    for _ in range(8):
        async with api.post("/v1/jobs", data=form(JPEG.read_bytes(), JPEG.name), params={"wait": "30"}) as response:
            jobs.append((await response.json())["job_id"])
    assert (await readyz(api))[0] == 200

    workers.children[1].kill()
    try:
        seen_503, deadline = False, time.monotonic() + 90
        while True:
            status, body = await readyz(api)
            if status == 503:
                seen_503 = True
                assert body["code"] == "not_ready" and body["checks"]["workers"] != "ok"
            elif seen_503:
                # Ready again: a job on any partition is found at once.
                for job_id in jobs:
                    async with api.get(f"/v1/jobs/{job_id}") as response:
                        assert response.status == 200, await response.text()
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(workers.start, 1)

"""One job end to end on the real broker and object store: ingest → Kafka → processors → sink → lookup."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
from aiokafka import AIOKafkaConsumer

from conftest import holding, SAMPLES, known_job, poll_job, produce
from adapters.objects import ObjectStore, result_key

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


def upload(path, ops: str | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
    if ops is not None:
        form.add_field("ops", ops)
    return form


async def submit(api, path, **params) -> str:
    async with api.post("/v1/jobs", data=upload(path), params=params) as response:
        body = await response.json()
        assert response.status == 202, body
    assert body == {"success": True, "job_id": body["job_id"], "status": "queued"}
    return body["job_id"]


async def test_upload_is_queued_then_completed_with_full_metadata(api, settings):
    job_id = await submit(api, CANON)
    async with api.get(f"/v1/jobs/{job_id}") as response:
        assert response.status == 200
        assert (await response.json())["status"] in ("queued", "processing", "completed")

    job = await poll_job(api, job_id)

    assert job["status"] == "completed", job
    assert job["percent"] == 100
    assert job["ops"] == ["metadata"]
    metadata = job["result"]["metadata"]
    assert metadata["file"]["name"] == "Canon_40D.jpg"
    assert metadata["file"]["mime"] == "image/jpeg"
    assert metadata["image"]["width"] == 100
    stored = await asyncio.to_thread(ObjectStore(settings).get_json, result_key(job_id, "metadata"))
    assert stored == metadata


async def test_url_job_is_fetched_by_a_worker(api, file_server):
    url = f"{file_server}/samples/exif-samples/jpg/Canon_40D.jpg"
    async with api.post("/v1/jobs", json={"url": url}) as response:
        assert response.status == 202
        job_id = (await response.json())["job_id"]

    job = await poll_job(api, job_id)

    assert job["status"] == "completed", job
    assert job["result"]["metadata"]["file"]["name"] == "Canon_40D.jpg"


async def test_wait_answers_200_with_the_finished_job(api):
    async with api.post("/v1/jobs", data=upload(CANON), params={"wait": "30"}) as response:
        body = await response.json()
        assert response.status == 200, body

    assert body["status"] == "completed"
    assert body["result"]["metadata"]["file"]["size"] == CANON.stat().st_size


async def test_a_lookup_right_after_a_wait_answer_shows_the_same_job(api):
    for _ in range(5):
        async with api.post("/v1/jobs", data=upload(CANON, ops="metadata,phash"), params={"wait": "30"}) as response:
            answered = await response.json()
            assert response.status == 200, answered
        async with api.get(f"/v1/jobs/{answered['job_id']}") as response:
            assert await response.json() == answered


async def test_wait_that_runs_out_answers_202(api):
    async with api.post("/v1/jobs", data=upload(CANON), params={"wait": "0.001"}) as response:
        assert response.status == 202
        assert (await response.json())["status"] == "queued"


async def test_url_redirecting_to_a_private_address_fails_the_job(api, file_server):
    async with api.post("/v1/jobs", json={"url": f"{file_server}/redirect-private"}) as response:
        assert response.status == 202
        job_id = (await response.json())["job_id"]

    job = await poll_job(api, job_id)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "url_forbidden"


async def test_url_to_a_file_no_op_of_the_job_takes_fails_the_job(api, file_server):
    # Text is metadata's (exiftool reads it), never phash's: the job is refused as an upload of it would be.
    body = {"url": f"{file_server}/samples/README.md", "ops": ["phash"]}
    async with api.post("/v1/jobs", json=body) as response:
        job_id = (await response.json())["job_id"]

    job = await poll_job(api, job_id)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "unsupported_media"


async def test_downstream_subscriber_receives_the_metadata_document(api, settings):
    consumer = AIOKafkaConsumer(
        "medialane.metadata", bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"downstream-{uuid.uuid4()}", auto_offset_reset="latest",
        rebalance_timeout_ms=1000, session_timeout_ms=6000, heartbeat_interval_ms=300,
    )  # fmt: skip
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)
        job_id = await submit(api, CANON)
        job = await poll_job(api, job_id)
        async with asyncio.timeout(20):
            async for record in consumer:
                if record.key == job_id.encode():
                    break
    finally:
        await consumer.stop()

    message = json.loads(record.value)
    assert message["metadata"] == job["result"]["metadata"]
    assert message["object_key"] == result_key(job_id, "metadata")


async def test_poison_message_goes_to_the_dead_letter_topic_and_the_next_job_runs(api, settings):
    poison_key = f"poison-{uuid.uuid4()}".encode()
    await produce(settings, "medialane.jobs", b'poison{"job_id": 42, "not": "a job"}', poison_key)

    job = await poll_job(api, await submit(api, CANON))

    assert job["status"] == "completed"
    letter = await find_record(settings, "medialane.dlq", poison_key)
    assert letter["topic"] == "medialane.jobs"
    assert "JobRequest" in letter["reason"]
    assert "not" in letter["payload"]


async def test_unreadable_request_fails_the_job_its_key_names(api, settings):
    job_id = str(uuid.uuid4())
    await produce(settings, "medialane.jobs", b"poison: not a request", job_id.encode())

    job = await known_job(settings, job_id)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_message"


async def find_record(settings, topic: str, key: bytes, timeout: float = 20) -> dict:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            async for record in consumer:
                if record.key == key:
                    return json.loads(record.value)
    finally:
        await consumer.stop()


async def test_redelivered_request_gives_the_same_result_and_final_status(api, settings):
    async with holding(settings, "medialane.jobs", "medialane.metadata"):
        job_id = await submit(api, CANON)
        first = await poll_job(api, job_id)
        request = await find_record(settings, "medialane.jobs", job_id.encode())
        await produce(settings, "medialane.jobs", json.dumps(request).encode(), job_id.encode())
        metadata_copies = 0
        consumer = AIOKafkaConsumer("medialane.metadata", bootstrap_servers=settings.kafka_bootstrap,
                                    auto_offset_reset="earliest")  # fmt: skip
        await consumer.start()
        try:
            async with asyncio.timeout(20):
                async for record in consumer:
                    if record.key == job_id.encode():
                        metadata_copies += 1
                        assert json.loads(record.value)["metadata"] == first["result"]["metadata"]
                        if metadata_copies == 2:
                            break
        finally:
            await consumer.stop()

    again = await poll_job(api, job_id)
    assert again["status"] == "completed"
    assert again["result"] == first["result"]
    stored = await asyncio.to_thread(ObjectStore(settings).get_json, result_key(job_id, "metadata"))
    assert stored == first["result"]["metadata"]

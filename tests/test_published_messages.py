"""Every message each stage publishes validates against the JSON Schema exported to schemas/."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from conftest import holding, poll_job, produce
from adapters.kafka import end_offsets
from schemas.export import schema_files
from schemas.topics import TOPICS
from test_pipeline import CANON, upload
from test_uniquify_pipeline import uniquify

POISON = b"poison: not a message"


@pytest.fixture(scope="module")
async def traffic(api, settings, file_server) -> dict[TopicPartition, int]:
    """Every kind of message: a job with every op, a uniquification, a URL job with a webhook, a failing job,
    a deleted job, a dead letter. Yields where each topic stood before them (held until the module ends: the
    embedded broker's retention would cut what the workers' group has read)."""
    async with holding(settings, *(topic.name for topic in TOPICS)) as starts:
        await make_traffic(api, settings, file_server)
        yield starts


async def make_traffic(api, settings, file_server) -> None:
    ops = '["metadata", "phash", "strip"]'
    async with api.post("/v1/jobs", data=upload(CANON, ops), params={"wait": "30"}) as response:
        assert (await response.json())["status"] == "completed"
    job = await uniquify(api, ("canon.jpg", CANON.read_bytes()), copies="2")
    assert job["status"] == "completed"
    url, webhook_url = f"{file_server}/samples/exif-samples/jpg/Canon_40D.jpg", f"{file_server}/webhook"
    async with api.post("/v1/jobs", json={"url": url, "webhook_url": webhook_url}) as response:
        await poll_job(api, (await response.json())["job_id"])
    async with api.post("/v1/jobs", json={"url": f"{file_server}/samples/no-such-file.jpg"}) as response:
        assert (await poll_job(api, (await response.json())["job_id"]))["status"] == "failed"
    async with api.post("/v1/jobs", data=upload(CANON, '["metadata"]'), params={"wait": "30"}) as response:
        deleted = (await response.json())["job_id"]
    async with api.delete(f"/v1/jobs/{deleted}") as response:
        assert response.status == 200, await response.text()
    await produce(settings, "medialane.jobs", POISON, b"not-a-job")


@pytest.mark.parametrize("topic", sorted(topic.name for topic in TOPICS))
async def test_every_published_message_validates_against_its_schema(traffic, settings, topic):
    schema = json.loads(next(p for p in schema_files() if p.name == f"{topic}.schema.json").read_text())
    async with asyncio.timeout(20):
        while not (records := [r for r in await read_topic(settings, topic, traffic) if not r.startswith(b"poison")]):
            await asyncio.sleep(0.2)
    for record in records:
        jsonschema.validate(json.loads(record), schema)


async def read_topic(settings, topic: str, starts: dict[TopicPartition, int]) -> list[bytes]:
    """The topic's records from ``starts`` to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [tp for tp in starts if tp.topic == topic]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        ends = await end_offsets(settings.kafka_bootstrap, partitions)
        records = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [r.value for r in batch]
        return records
    finally:
        await consumer.stop()

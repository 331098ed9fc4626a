"""A stack's topics keep the partition count they were created with: job ids are routed by it, so every
service takes the count from the broker (adapters/kafka.py ``create_topics``), not from the setting, which a
stack made by an earlier version (4 partitions then) or a changed environment may contradict."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from pathlib import Path

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient

from adapters.kafka import create_topics
from compose.embedded import EmbeddedPipeline, EmbeddedStack
from isolated_stack import isolated_settings
from schemas.settings import Settings
from schemas.topics import JOBS, STATUS

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif-samples" / "jpg" / "Canon_40D.jpg"


async def partitions_of(settings: Settings, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(described["partitions"])


def test_the_default_is_one_partition_per_worker_of_the_default_stack() -> None:
    defaults = Settings()
    assert (defaults.topic_partitions, defaults.workers) == (2, 2)


def test_topics_that_exist_keep_their_partitions_whatever_the_setting_says(stack, settings) -> None:
    settled = asyncio.run(create_topics(settings.model_copy(update={"topic_partitions": 5})))
    assert settled.topic_partitions == settings.topic_partitions == 2
    assert asyncio.run(partitions_of(settings, STATUS.name)) == 2


async def submit(url: str, key: str) -> dict:
    form = aiohttp.FormData()
    form.add_field("file", SAMPLE.read_bytes(), filename="camera.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
        async with session.post(f"{url}/v1/jobs", data=form, params={"wait": "30"}) as response:
            return await response.json()


async def submit_many(url: str, key: str, count: int) -> list[dict]:
    async with asyncio.timeout(90):
        return await asyncio.gather(*(submit(url, key) for _ in range(count)))


def test_a_stack_made_with_more_partitions_runs_every_service_on_them(tmp_path: Path) -> None:
    made = isolated_settings(Settings(link_secret=uuid.uuid4().hex, topic_partitions=3), tmp_path, 1)
    before = EmbeddedStack(made)
    before.start()
    before.stop()
    # The same stack started again by a version (or an environment) that says 2.
    pipeline = EmbeddedPipeline(made.model_copy(update={"topic_partitions": 2}))
    pipeline.start()
    try:
        assert pipeline.settings.topic_partitions == pipeline.stack.retention.partitions == 3
        for child in pipeline.children:
            assert child.env["MEDIALANE_TOPIC_PARTITIONS"] == "3"
        with urllib.request.urlopen(f"{pipeline.settings.worker_urls[0]}/ready", timeout=5) as response:
            served = json.load(response)["partitions"]
        assert sorted(served[JOBS.name]) == [0, 1, 2]
        key, _ = pipeline.first_key()
        # Job ids fall on every partition: eight jobs all end.
        jobs = asyncio.run(submit_many(pipeline.url, key, 8))
        assert [job["status"] for job in jobs] == ["completed"] * 8
        assert asyncio.run(partitions_of(pipeline.settings, JOBS.name)) == 3
    finally:
        pipeline.stop()

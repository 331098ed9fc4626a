"""The test session's real stack: SeaweedFS and Tansu started once, two workers, the ingest service.

Ports are picked at random and checked (with SeaweedFS's gRPC twins at +10000) so a test run never
collides with a running ``medialane up`` or with another test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiohttp import web
from aiohttp.test_utils import TestServer

from compose.embedded import Child, EmbeddedPipeline, worker_ready
from ingest.accesslog import RedactingAccessLogger
from ingest.app import create_app
from adapters.kafka import end_offsets
from schemas.settings import Settings
from adapters.apikeys import KeyStore
from adapters.objects import ObjectStore
from isolated_stack import isolated_settings

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
WORKERS = 2


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    test_settings = Settings(
        s3_access_key="test" + uuid.uuid4().hex[:8],
        s3_secret_key=uuid.uuid4().hex,
        link_secret=uuid.uuid4().hex,
        fetch_allow_hosts=("127.0.0.1",),
        max_upload_bytes=5 * 1024 * 1024,
        exiftool_timeout=10,
        phash_snapshot_seconds=1,
        # A uniquify job whose copy orders were lost is re-ordered within a test's patience.
        uniquify_redrive_seconds=3,
        # One key makes every request of the session: its limits are tested on an app of their own.
        rate_limit_per_second=1000,
        rate_limit_burst=1000,
        max_active_jobs=1000,
        api_key_cache_seconds=1,
        # Webhook retries within a test's patience; a receiver on this machine answers far within 2 s.
        webhook_retry_seconds=0.5,
        webhook_timeout=2,
    )
    return isolated_settings(test_settings, tmp_path_factory.mktemp("medialane"), WORKERS)


@pytest.fixture(scope="session")
def files_port(settings) -> int:
    return settings.ingest_port + 1


@pytest.fixture(scope="session")
def pipeline(settings) -> EmbeddedPipeline:
    """The embedded pipeline's parts; the tests run its ingest service in process instead of as a child."""
    return EmbeddedPipeline(settings)


@pytest.fixture(scope="session")
def stack(pipeline, settings):
    pipeline.stack.start()
    yield pipeline.stack
    pipeline.stack.stop()


class Workers:
    """The worker processes, which tests may kill and restart."""

    def __init__(self, settings: Settings, children: list[Child]) -> None:
        self.settings = settings
        self.children = children

    def start(self, *indexes: int) -> None:
        for i in indexes or range(WORKERS):
            self.children[i].start()
        self.wait_ready(*indexes)

    def wait_ready(self, *indexes: int, timeout: float = 180) -> None:
        # A restarted worker replays its tables' changelogs first: the longer the session, the longer.
        deadline = time.monotonic() + timeout
        pending = set(indexes or range(WORKERS))
        while pending:
            for i in list(pending):
                if not self.children[i].alive():
                    raise RuntimeError(f"worker {i} died:\n{self.children[i].log_tail(40)}")
                if worker_ready(self.settings.worker_urls[i]):
                    pending.discard(i)
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers {pending} not ready:\n{self.children[min(pending)].log_tail(40)}")
            time.sleep(0.2)

    def stop(self) -> None:
        for child in self.children:
            child.stop()


@pytest.fixture(scope="session")
def workers(stack, pipeline, settings):
    running = Workers(settings, pipeline.workers)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
async def ingest(stack, workers, settings):
    server = TestServer(create_app(settings), host="127.0.0.1", port=settings.ingest_port)
    await server.start_server(access_log_class=RedactingAccessLogger)
    yield server
    await server.close()


@pytest.fixture(scope="session")
def api_key(stack, settings) -> str:
    """The raw key the ``api`` session sends, created in the session's real key store."""
    return KeyStore(ObjectStore(settings)).create("tests")[0]


@pytest.fixture(scope="session")
def other_key(stack, settings) -> str:
    """A second caller's raw key: its jobs are not the ``api`` session's."""
    return KeyStore(ObjectStore(settings)).create("tests-other")[0]


@pytest.fixture(scope="session")
async def api(ingest, api_key):
    async with aiohttp.ClientSession(base_url=str(ingest.make_url("/")), headers={"X-API-Key": api_key}) as session:
        yield session


@pytest.fixture(scope="session")
async def file_server(files_port):
    """A local HTTP server for URL jobs and webhooks (the workers reach it through the test allow-list)."""
    routes = web.RouteTableDef()

    @routes.get("/samples/{path:.+}")
    async def sample(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(SAMPLES / request.match_info["path"])

    @routes.get("/slow/{seconds}/{path:.+}")
    async def slow_sample(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(float(request.match_info["seconds"]))
        return web.FileResponse(SAMPLES / request.match_info["path"])

    @routes.get("/redirect-private")
    async def redirect_private(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://10.0.0.1/x.jpg")

    @routes.post("/webhook")
    async def webhook(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    app = web.Application()
    app.add_routes(routes)
    server = TestServer(app, host="127.0.0.1", port=files_port)
    await server.start_server()
    yield f"http://127.0.0.1:{files_port}"
    await server.close()


async def poll_job(api: aiohttp.ClientSession, job_id: str, timeout: float = 30) -> dict:
    """The job document once it ended (completed, partial or failed); 503 (no worker could answer: a worker died and
    its partitions are moving) is retried, as the API tells clients to."""
    deadline = time.monotonic() + timeout
    while True:
        async with api.get(f"/v1/jobs/{job_id}") as response:
            body = await response.json()
            assert response.status in (200, 503), body
        if response.status == 200 and body["status"] in ("completed", "partial", "failed") or time.monotonic() > deadline:
            assert response.status == 200, body
            return body
        await asyncio.sleep(0.1)


async def produce(settings: Settings, topic: str, value: bytes, key: bytes) -> None:
    """One raw message, as a foreign or broken producer would send it."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def known_job(settings: Settings, job_id: str, timeout: float = 20) -> dict:
    """The job document of a job no POST created, once the status table has it. No API key owns such a
    job, so the API answers 404 for it: it is read from a worker's table, as the ingest service does."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            async with session.get(f"{settings.worker_urls[0]}/jobs/{job_id}") as response:
                if response.status == 200:
                    return await response.json()
            await asyncio.sleep(0.1)


async def commit(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def holding(settings: Settings, *topics: str) -> AsyncIterator[dict[TopicPartition, int]]:
    """Where ``topics`` end now, held by a group of the test's own while the block runs, as a subscriber holds
    what it has not read: the embedded broker's retention cuts what every group has read, so a test reading
    back records (without a group, from these offsets) would otherwise find only the last seconds' worth."""
    group = f"test-hold-{uuid.uuid4().hex[:8]}"
    partitions = [TopicPartition(topic, p) for topic in topics for p in range(settings.topic_partitions)]
    starts = await end_offsets(settings.kafka_bootstrap, partitions)
    await commit(settings, group, starts)
    try:
        yield starts
    finally:
        await commit(settings, group, await end_offsets(settings.kafka_bootstrap, partitions))

"""Webhooks end to end: the job document POSTed, signed, to a local receiver when the job ends; retries,
idempotence and the URL guard at submission."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from datetime import datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka.partitioner import DefaultPartitioner

from conftest import SAMPLES, produce
from test_rejections import expect_error
from test_uniquify_pipeline import images_form
from test_webhook_delivery import documented_verify
from schemas.messages import WebhookEvent, WebhookOrder
from adapters.apikeys import KeyStore, key_id_of
from adapters.objects import ObjectStore
from sink.webhooks import SIGNATURE_HEADER

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


class Receiver:
    """Records every POST by path; a path told to fail answers 503 that many times first."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.received: dict[str, list[tuple[dict, bytes]]] = defaultdict(list)
        self.failures: dict[str, int] = {}

    async def hook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.received[name].append((dict(request.headers), await request.read()))
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            return web.Response(status=503)
        return web.Response(status=204)


@pytest.fixture(scope="session")
async def receiver(settings):
    """The webhook receiver, on the port after the file server's (the workers reach it through the allow-list)."""
    port = settings.ingest_port + 2
    hooks = Receiver(f"http://127.0.0.1:{port}/hooks")
    app = web.Application()
    app.router.add_post("/hooks/{name}", hooks.hook)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    yield hooks
    await server.close()


@pytest.fixture(scope="session")
def webhook_secret(settings, api_key) -> str:
    return KeyStore(ObjectStore(settings)).get(key_id_of(api_key)).webhook_secret


def upload(**fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", CANON.read_bytes(), filename=CANON.name, content_type="image/jpeg")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def accepted(response: aiohttp.ClientResponse) -> str:
    body = await response.json()
    assert response.status == 202, body
    return body["job_id"]


async def job_until(api, job_id: str, done, timeout: float = 40) -> dict:
    """The job document once ``done(job)``; 503 (a worker died and its partitions are moving) is retried."""
    deadline = time.monotonic() + timeout
    while True:
        async with api.get(f"/v1/jobs/{job_id}") as response:
            job = await response.json()
            assert response.status in (200, 503), job
        if response.status == 200 and done(job):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)


def is_settled(job: dict) -> bool:
    webhook = job["webhook"]
    return job["status"] in ("completed", "failed") and webhook["attempts"] and webhook["next_attempt_at"] is None


async def settled(api, job_id: str, timeout: float = 40) -> dict:
    """The job document once its webhook is delivered or given up."""
    return await job_until(api, job_id, is_settled, timeout)


def check_post(post: tuple[dict, bytes], job: dict, secret: str) -> dict:
    """The POST is signed with the key's secret and carries the job document (without its webhook)."""
    headers, body = post
    assert headers["Content-Type"] == "application/json"
    assert documented_verify()(secret, headers[SIGNATURE_HEADER], body)
    document = json.loads(body)
    assert document == {name: value for name, value in job.items() if name != "webhook"}
    return document


async def test_completed_job_is_posted_signed_with_the_clients_id(api, receiver, webhook_secret):
    name = uuid.uuid4().hex
    async with api.post("/v1/jobs", data=upload(webhook_url=f"{receiver.base}/{name}", id="order-42")) as response:
        job_id = await accepted(response)
    job = await settled(api, job_id)
    assert (job["status"], job["id"]) == ("completed", "order-42")
    [attempt] = job["webhook"]["attempts"]
    assert (attempt["status_code"], attempt["error"], job["webhook"]["delivered"]) == (204, None, True)
    assert job["webhook"]["url"] == f"{receiver.base}/{name}"
    [post] = receiver.received[name]
    document = check_post(post, job, webhook_secret)
    assert (document["job_id"], document["id"], document["status"]) == (job_id, "order-42", "completed")
    assert document["result"]["metadata"]["file"]["size"] == CANON.stat().st_size


async def test_failed_job_is_posted_too(api, receiver, webhook_secret, file_server):
    name = uuid.uuid4().hex
    body = {"url": f"{file_server}/samples/no-such-file.jpg", "webhook_url": f"{receiver.base}/{name}", "id": "x-1"}
    async with api.post("/v1/jobs", json=body) as response:
        job_id = await accepted(response)
    job = await settled(api, job_id)
    assert (job["status"], job["error"]["code"], job["id"]) == ("failed", "fetch_http_error", "x-1")
    [post] = receiver.received[name]
    assert check_post(post, job, webhook_secret)["error"]["code"] == "fetch_http_error"


async def test_non_2xx_is_retried_until_2xx_and_every_attempt_shows(api, receiver, webhook_secret):
    name = uuid.uuid4().hex
    receiver.failures[name] = 2
    async with api.post("/v1/jobs", data=upload(), params={"webhook_url": f"{receiver.base}/{name}"}) as response:
        job_id = await accepted(response)
    job = await settled(api, job_id)
    webhook = job["webhook"]
    assert [attempt["status_code"] for attempt in webhook["attempts"]] == [503, 503, 204]
    assert webhook["delivered"] and job["id"] is None
    at = [attempt["at"] for attempt in webhook["attempts"]]
    assert at == sorted(at)
    posts = receiver.received[name]
    assert len(posts) == 3 and len({body for _, body in posts}) == 1  # the same bytes each time
    check_post(posts[-1], job, webhook_secret)


async def test_uniquify_job_is_posted_with_its_id(api, receiver, webhook_secret):
    name = uuid.uuid4().hex
    params = {"copies": "1", "webhook_url": f"{receiver.base}/{name}", "id": "batch-9"}
    async with api.post("/v1/uniquify", data=images_form(("a.jpg", CANON.read_bytes())), params=params) as response:
        job_id = await accepted(response)
    job = await settled(api, job_id, timeout=90)
    assert (job["status"], job["ops"], job["id"]) == ("completed", ["uniquify"], "batch-9")
    [post] = receiver.received[name]
    assert check_post(post, job, webhook_secret)["result"]["uniquify"]["copies"] == 1


def same_partition_job_id(job_id: str, partitions: int) -> str:
    target = DefaultPartitioner()(job_id.encode(), list(range(partitions)), list(range(partitions)))
    while True:
        other = str(uuid.uuid4())
        if DefaultPartitioner()(other.encode(), list(range(partitions)), list(range(partitions))) == target:
            return other


async def test_redelivered_order_does_not_send_again(api, receiver, settings, api_key):
    name = uuid.uuid4().hex
    async with api.post("/v1/jobs", data=upload(webhook_url=f"{receiver.base}/{name}")) as response:
        job_id = await accepted(response)
    job = await settled(api, job_id)
    assert len(receiver.received[name]) == 1
    document = {field: value for field, value in job.items() if field != "webhook"}
    again = WebhookOrder(job_id=job_id, url=f"{receiver.base}/{name}", owner=key_id_of(api_key), document=document,
                         ended_at=job["updated_at"])  # fmt: skip
    await produce(settings, "medialane.webhooks", WebhookEvent(event=again).model_dump_json().encode(), job_id.encode())
    # An order after it on the same partition is delivered only once the redelivered one has been read.
    sentinel_id, sentinel = same_partition_job_id(job_id, settings.topic_partitions), uuid.uuid4().hex
    after = again.model_copy(update={"job_id": sentinel_id, "url": f"{receiver.base}/{sentinel}"})
    await produce(settings, "medialane.webhooks", WebhookEvent(event=after).model_dump_json().encode(),
                  sentinel_id.encode())  # fmt: skip
    async with asyncio.timeout(30):
        while not receiver.received[sentinel]:
            await asyncio.sleep(0.1)
    await asyncio.sleep(2 * 1.0 + 0.5)  # two retry-timer ticks
    assert len(receiver.received[name]) == 1
    async with api.get(f"/v1/jobs/{job_id}") as response:
        assert len((await response.json())["webhook"]["attempts"]) == 1


async def webhook_owner(settings, job_id: str) -> int:
    """The index of the worker that owns the job's webhook delivery (Faust's router knows the table's keys)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{settings.worker_urls[0]}/router/webhooks/{job_id}/") as response:
            url = (await response.json()).rstrip("/")
    return settings.worker_urls.index(url)


async def test_a_killed_worker_resumes_pending_retries(api, receiver, settings, workers, webhook_secret):
    name = uuid.uuid4().hex
    receiver.failures[name] = 10**6
    async with api.post("/v1/jobs", data=upload(webhook_url=f"{receiver.base}/{name}")) as response:
        job_id = await accepted(response)
    await job_until(api, job_id, lambda job: job["webhook"]["attempts"])
    owner = await webhook_owner(settings, job_id)
    workers.children[owner].kill()
    killed_at = time.time()
    receiver.failures[name] = 0

    job = await settled(api, job_id, timeout=90)
    await asyncio.to_thread(workers.start, owner)

    attempts = job["webhook"]["attempts"]
    assert job["webhook"]["delivered"] and attempts[0]["status_code"] == 503 and attempts[-1]["status_code"] == 204
    assert datetime.fromisoformat(attempts[-1]["at"]).timestamp() > killed_at  # the survivor's POST
    check_post(receiver.received[name][-1], job, webhook_secret)


FORBIDDEN = ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
             "file:///etc/passwd", "http://user:secret@example.com/hook", "http://0x7f.1/hook"]  # fmt: skip


@pytest.mark.parametrize("url", FORBIDDEN)
async def test_forbidden_webhook_url_is_refused_at_submission(api, url):
    requests = [
        api.post("/v1/jobs", json={"url": "https://example.com/a.jpg", "webhook_url": url}),
        api.post("/v1/jobs", data=upload(webhook_url=url)),
        api.post("/v1/jobs", data=upload(), params={"webhook_url": url}),
        api.post("/v1/uniquify", data=images_form(("a.jpg", CANON.read_bytes())), params={"webhook_url": url}),
    ]
    for request in requests:
        async with request as response:
            body = await expect_error(response, 422, "url_forbidden")
            assert body["field"] == "webhook_url"


@pytest.mark.parametrize(("fields", "code"), [
    ({"webhook_url": 42}, "invalid_webhook_url"),
    ({"webhook_url": "https://example.com/" + "a" * 2048}, "invalid_webhook_url"),
    ({"id": 42}, "invalid_id"),
    ({"id": "x" * 256}, "invalid_id"),
])  # fmt: skip
async def test_malformed_webhook_url_or_id_is_refused(api, fields, code):
    async with api.post("/v1/jobs", json={"url": "https://example.com/a.jpg", **fields}) as response:
        body = await expect_error(response, 422, code)
        assert body["field"] == next(iter(fields))

"""Every sink agent but the status stage's (tests/test_sink_status.py), and the logic of its timers, driven
through Faust's ``agent.test_context()``: no worker runs, tables stay in memory, sends are captured, and the
object store is the session's real one."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.apikeys import KeyStore
from adapters.courier import copy_partition
from adapters.objects import archive_key, copy_key, result_key
from media.phash import ALGORITHM, ALGORITHM_VERSION
from media.uniquify import plan_copies
from schemas import tables, topics
from schemas.messages import (
    CopyMade, CopyPlanned, CopyProgress, ErrorInfo, Message, MetadataResult, Op, PHashRecord, Status, StrippedFile,
    Uniquified, UniquifyJob, UniquifySource, WebhookEvent, WebhookOrder, new_job_id, utcnow,
)  # fmt: skip
from schemas.tables import Delivery, Ledger
from schemas.uniquify import CopyTask, UniquifyParams
from sink.fanin import FanIn
from sink.webhook_stage import Deliveries
from sink.webhooks import SIGNATURE_HEADER, sign
from tests.sink_context import app, put, sent  # noqa: F401 - fixtures

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def result_of(op: Op, job_id: str) -> Message:
    later = T0 + timedelta(days=1)
    if op is Op.METADATA:
        return MetadataResult(job_id=job_id, name="a.jpg", object_key=result_key(job_id, op),
                              metadata={"File": {"FileSize": 3}}, extracted_at=T0)  # fmt: skip
    if op is Op.PHASH:
        return PHashRecord(
            job_id=job_id, name="a.jpg", phash="f06830ca9f1e3e90", mirrored_phash="0f8630ca9f1e3e90",
            algorithm=ALGORITHM, algorithm_version=ALGORITHM_VERSION, sha256="0" * 64, width=4, height=3, hashed_at=T0,
        )  # fmt: skip
    if op is Op.STRIP:
        return StrippedFile(job_id=job_id, name="a.jpg", object_key="tmp/x/a.jpg", download_url="http://d/a.jpg",
                            expires_at=later, size=3, format="JPEG", removed=["EXIF"], kept=["ICC"],
                            stripped_at=T0)  # fmt: skip
    return Uniquified(job_id=job_id, object_key=archive_key(job_id), download_url="http://d/u.zip", expires_at=later,
                      copies=1, files=2, size=9, failed=[], manifest={"copies": [{"path": "1.jpg"}]},
                      finished_at=T0)  # fmt: skip


async def test_a_uniquify_result_is_stored_and_ends_the_job_with_its_key(app, sent):
    job_id = new_job_id()
    result = result_of(Op.UNIQUIFY, job_id)
    await put(app, "sink.results.store_uniquify", job_id, result)
    key = result_key(job_id, Op.UNIQUIFY)
    assert await asyncio.to_thread(app.store.get_json, key) == result.document()
    [report] = sent.of(topics.STATUS)
    assert (report.job_id, report.status, report.result) == (job_id, Status.COMPLETED, None)
    outcome = report.outcomes[Op.UNIQUIFY]
    assert (outcome.status, outcome.object_key, outcome.error) == (Status.COMPLETED, key, None)


def test_only_uniquify_results_are_kept_by_the_sink(app):
    # The job stage stores every other op's result itself (tests/test_processors_stages.py).
    kept = {name for name in app.agents if name.startswith("sink.results.")}
    assert kept == {"sink.results.store_uniquify"}


@pytest.mark.parametrize("agent_name", ["sink.results.store_uniquify", "sink.fanin.gather_copies",
                                        "sink.webhook_stage.deliver_webhooks", "sink.status.record_status"])
async def test_a_poison_message_goes_to_the_dead_letter_topic(app, sent, agent_name):
    job_id = new_job_id()
    await put(app, agent_name, job_id, b"{not json")
    [letter] = sent.of(topics.DLQ)
    assert (letter.key, letter.payload) == (job_id, "{not json")
    assert letter.topic == app.agents[agent_name].channel.get_topic_name()
    # The job ends with the reason, except when the unreadable message was one of its own status events.
    reports = sent.of(topics.STATUS)
    if agent_name == "sink.status.record_status":
        assert reports == []
    else:
        assert [(r.status, r.error.code) for r in reports] == [(Status.FAILED, "invalid_message")]


@pytest.fixture
async def receiver():
    """A webhook receiver answering 204, and what it received."""
    received: list[tuple[dict, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    server = TestServer(web.Application(), host="127.0.0.1")
    server.app.router.add_post("/hook", hook)
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}/hook", received
    await server.close()


def webhook_order(job_id: str, url: str, owner: str | None) -> WebhookEvent:
    document = {"job_id": job_id, "status": "completed"}
    return WebhookEvent(event=WebhookOrder(job_id=job_id, url=url, owner=owner, document=document, ended_at=T0))


async def test_a_webhook_order_is_folded_posted_when_due_and_its_outcome_folded(app, sent, receiver):
    url, received = receiver
    _, key = await asyncio.to_thread(KeyStore(app.store).create, "sink stages")
    job_id = new_job_id()
    order = webhook_order(job_id, url, key.key_id)
    await put(app, "sink.webhook_stage.deliver_webhooks", job_id, order, order, partition=1)
    delivery = Delivery.model_validate_json(app.table_of(tables.WEBHOOKS)[job_id.encode()])
    assert (delivery.partition, delivery.state.next_attempt_at, delivery.state.attempts) == (1, T0, [])
    # The redelivered order changed nothing: one report, with the delivery's state.
    [report] = sent.of(topics.STATUS)
    assert (report.status, report.webhook) == (Status.COMPLETED, delivery.state)

    sent.clear()
    deliveries = Deliveries(app)
    await deliveries.post_due({0}, utcnow())
    assert received == [] and sent.of(topics.WEBHOOKS) == []
    await deliveries.post_due({1}, utcnow())
    await deliveries.post_due({1}, utcnow())
    [(headers, body)] = received
    timestamp = int(headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t="))
    assert headers[SIGNATURE_HEADER] == sign(key.webhook_secret, timestamp, body)
    [attempted] = sent.of(topics.WEBHOOKS)
    assert (attempted.event.number, attempted.event.attempt.status_code) == (1, 204)

    sent.clear()
    await put(app, "sink.webhook_stage.deliver_webhooks", job_id, attempted, partition=1)
    state = Delivery.model_validate_json(app.table_of(tables.WEBHOOKS)[job_id.encode()]).state
    assert state.delivered and state.next_attempt_at is None and len(state.attempts) == 1
    [report] = sent.of(topics.STATUS)
    assert report.webhook == state


async def test_a_webhook_whose_key_is_gone_is_tried_once(app, sent):
    job_id = new_job_id()
    await put(app, "sink.webhook_stage.deliver_webhooks", job_id, webhook_order(job_id, "http://127.0.0.1/x", None))
    await Deliveries(app).post_due({0}, utcnow())
    [attempted] = sent.of(topics.WEBHOOKS)
    assert attempted.event.attempt.error.code == "webhook_unsigned"
    await put(app, "sink.webhook_stage.deliver_webhooks", job_id, attempted)
    state = Delivery.model_validate_json(app.table_of(tables.WEBHOOKS)[job_id.encode()]).state
    assert not state.delivered and state.next_attempt_at is None


def uniquify_job(copies: int) -> UniquifyJob:
    job_id = new_job_id()
    source = UniquifySource(object_key=f"originals/{job_id}/0", name="a.jpg", md5="source-md5")
    return UniquifyJob(job_id=job_id, params=UniquifyParams(copies=copies), seed=7, sources=[source], created_at=T0)


def tasks_of(job: UniquifyJob) -> list[CopyTask]:
    return plan_copies(job.params, [source.name for source in job.sources], job.seed)


def planned(job: UniquifyJob) -> CopyProgress:
    return CopyProgress(event=CopyPlanned(job_id=job.job_id, expected=len(tasks_of(job)), job=job))


async def made(app, job: UniquifyJob, task: CopyTask, md5: str) -> CopyProgress:
    """A copy made: its bytes in the bucket, and the event saying so."""
    key = copy_key(job.job_id, task)
    await asyncio.to_thread(app.store.put_bytes, key, md5.encode())
    entry = {"source": task.source_index, "copy": task.copy_index, "path": task.path, "md5": md5}
    return CopyProgress(event=CopyMade(job_id=job.job_id, task=task, object_key=key, entry=entry))


def failed(job: UniquifyJob, task: CopyTask) -> CopyProgress:
    error = ErrorInfo(code="corrupt_media", message="broken")
    return CopyProgress(event=CopyMade(job_id=job.job_id, task=task, error=error))


def ledger_of(app, job: UniquifyJob) -> Ledger:
    return Ledger.model_validate_json(app.table_of(tables.UNIQUIFY)[job.job_id.encode()])


async def test_the_fan_in_reports_progress_retries_a_clash_and_zips_the_job(app, sent):
    job = uniquify_job(copies=2)
    first, second = tasks_of(job)
    await put(app, "sink.fanin.gather_copies", job.job_id, planned(job), await made(app, job, first, "m1"))
    assert [report.percent for report in sent.of(topics.STATUS)] == [0, 50]

    sent.clear()
    await put(app, "sink.fanin.gather_copies", job.job_id, await made(app, job, second, "m1"))
    [order] = sent.of(topics.COPY_TASKS)
    assert order.task == second.retry()
    [(_, key, _, partition)] = sent.records
    assert key == f"{job.job_id}/0/2/1".encode()
    assert partition == copy_partition(job, second.retry(), app.settings.topic_partitions)
    assert sent.of(topics.STATUS) == []

    sent.clear()
    await put(app, "sink.fanin.gather_copies", job.job_id, await made(app, job, second.retry(), "m2"))
    [done] = sent.of(topics.UNIQUIFIED)
    assert (done.job_id, done.object_key, done.copies, done.files, done.failed) == (
        job.job_id, archive_key(job.job_id), 2, 3, [])  # fmt: skip
    archive = await asyncio.to_thread(app.store.get_bytes, archive_key(job.job_id))
    assert len(archive) == done.size
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert zipped.namelist() == [first.path, second.path, "manifest.json"]
        assert zipped.read(second.path) == b"m2"
    assert ledger_of(app, job).zipped


async def test_a_job_whose_every_copy_failed_fails(app, sent):
    job = uniquify_job(copies=1)
    await put(app, "sink.fanin.gather_copies", job.job_id, planned(job), failed(job, tasks_of(job)[0]))
    *_, report = sent.of(topics.STATUS)
    assert (report.status, report.error.code, report.error.message) == (
        Status.FAILED, "uniquify_failed", "no copy could be made: broken")  # fmt: skip
    assert sent.of(topics.UNIQUIFIED) == []


async def test_the_redrive_orders_again_the_copies_a_stalled_job_waits_for(app, sent, caplog):
    caplog.set_level("INFO", logger="sink.fanin")
    job = uniquify_job(copies=3)
    first, *missing = tasks_of(job)
    await put(app, "sink.fanin.gather_copies", job.job_id, planned(job), await made(app, job, first, "m1"),
              partition=1)  # fmt: skip
    assert ledger_of(app, job).partition == 1
    sent.clear()
    fanin = FanIn(app)
    stalled = time.time() + app.settings.uniquify_redrive_seconds + 1
    await fanin.redrive({0}, stalled)
    await fanin.redrive({1}, time.time())
    assert sent.of(topics.COPY_TASKS) == []
    await fanin.redrive({1}, stalled)
    ordered = [order.task for order in sent.of(topics.COPY_TASKS) if order.job_id == job.job_id]
    assert ordered == missing
    assert [r.job_id for r in caplog.records if "ordered again" in r.getMessage()] == [job.job_id]
    # Once re-ordered, a job waits another period before it is re-ordered again.
    await fanin.redrive({1}, stalled + 1)
    assert len(sent.of(topics.COPY_TASKS)) == len(ordered)

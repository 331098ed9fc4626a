"""Every sink agent, and the logic of its timers, driven through Faust's ``agent.test_context()``: no worker
runs, tables stay in memory, sends are captured, and the object store is the session's real one."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from faust.sensors import Sensor

from adapters.apikeys import KeyStore
from adapters.courier import copy_partition
from adapters.objects import archive_key, copy_key, result_key
from compose.worker import create_worker
from media.phash import ALGORITHM, ALGORITHM_VERSION
from media.uniquify import plan_copies
from schemas import tables, topics
from schemas.deletion import JobDeleted
from schemas.job_state import ended
from schemas.messages import (
    CopyMade, CopyPlanned, CopyProgress, ErrorInfo, Message, MetadataResult, Op, PHashRecord, Status, StrippedFile,
    Uniquified, UniquifyJob, UniquifySource, WebhookEvent, WebhookOrder, new_job_id, utcnow,
)  # fmt: skip
from schemas.status_events import OpOutcome, StatusEvent
from schemas.tables import DeletedJob, Delivery, Ledger
from schemas.uniquify import CopyTask, UniquifyParams
from schemas.views import JobView
from sink.fanin import FanIn
from sink.webhook_stage import Deliveries
from sink.webhooks import SIGNATURE_HEADER, sign

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Finished(Sensor):
    """Counts the events agents are done with. A test context's ``put`` returns once the agent has taken the
    value, not once it has handled it: a stream lets an event go only when its agent asks for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.changed = asyncio.Condition()

    def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
        self.count += 1
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(30), self.changed:
            await self.changed.wait_for(lambda: self.count >= count)


@pytest.fixture(scope="module")
async def app(settings, stack):
    worker = create_worker(settings)
    worker.finished = Finished()
    worker.sensors.add(worker.finished)
    worker.finalize()
    worker.flow_control.resume()
    return worker


class Sent:
    """What the stages sent, by topic: each contract topic's ``send`` patched to record instead."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes, int | None]] = []

    def capture(self, name: str):
        async def send(*, key: bytes, value: bytes, partition: int | None = None, **_) -> None:
            self.records.append((name, key, value, partition))

        return send

    def of(self, topic: topics.Topic) -> list[Message]:
        return [topic.message.model_validate_json(value) for name, _, value, _ in self.records if name == topic.name]

    def clear(self) -> None:
        self.records.clear()


@pytest.fixture
def sent(app):
    recorder = Sent()
    with ExitStack() as patches:
        for topic in topics.TOPICS:
            patches.enter_context(patch.object(app.topic_of(topic), "send", recorder.capture(topic.name)))
        yield recorder


async def put(app, agent_name: str, job_id: str, *values: Message | bytes, partition: int = 0) -> None:
    """Each value to the agent, keyed by the job, and back once the agent has handled them all."""
    async with app.agents[agent_name].test_context() as agent:
        target = app.finished.count + len(values)
        for value in values:
            raw = value if isinstance(value, bytes) else value.model_dump_json().encode()
            await agent.put(raw, key=job_id.encode(), partition=partition)
        await app.finished.reach(target)


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


def status_event(job_id: str, status: Status, seconds: int = 0, **fields) -> StatusEvent:
    return StatusEvent(job_id=job_id, status=status, at=T0 + timedelta(seconds=seconds), **fields)


async def test_status_events_fold_into_the_table_and_an_ended_job_orders_its_webhook(app, sent):
    job_id = new_job_id()
    queued = status_event(job_id, Status.QUEUED, ops=[Op.METADATA], owner="k", webhook_url="http://127.0.0.1/hook")
    await put(app, "sink.status.record_status", job_id, queued)
    assert sent.of(topics.WEBHOOKS) == []
    done = status_event(job_id, Status.PROCESSING, 1, op=Op.METADATA, result={"File": {}})
    await put(app, "sink.status.record_status", job_id, done)
    view = JobView.model_validate_json(app.table_of(tables.STATUS)[job_id.encode()])
    assert (view.status, view.result) == (Status.COMPLETED, {"metadata": {"File": {}}})
    [ordered] = sent.of(topics.WEBHOOKS)
    order = ordered.event
    assert (order.job_id, order.url, order.owner, order.document["status"]) == (
        job_id, "http://127.0.0.1/hook", "k", "completed")  # fmt: skip
    assert "webhook" not in order.document


async def test_an_ended_job_orders_its_webhook_with_its_documents_from_the_store(app, sent):
    job_id = new_job_id()
    document = {"file": {"size": 3}}
    key = result_key(job_id, Op.METADATA)
    await asyncio.to_thread(app.store.put_json, key, document)
    failed = OpOutcome(status=Status.FAILED, error=ErrorInfo(code="phash_unsupported_format", message="audio/x-wav"))
    outcomes = {Op.METADATA: OpOutcome(status=Status.COMPLETED, object_key=key, size=20), Op.PHASH: failed}
    queued = status_event(job_id, Status.QUEUED, ops=[Op.METADATA, Op.PHASH], owner="k",
                          webhook_url="http://127.0.0.1/hook")  # fmt: skip
    await put(app, "sink.status.record_status", job_id, queued, ended(job_id, outcomes))
    view = JobView.model_validate_json(app.table_of(tables.STATUS)[job_id.encode()])
    # The table keeps the view small: outcomes name the documents, which stay in the store.
    assert (view.status, view.result, view.outcomes) == (Status.PARTIAL, {}, outcomes)
    [ordered] = sent.of(topics.WEBHOOKS)
    assert ordered.event.document["status"] == "partial"
    assert ordered.event.document["result"] == {"metadata": document}
    assert ordered.event.document["outcomes"]["phash"]["error"]["code"] == "phash_unsupported_format"


async def test_a_job_without_a_webhook_orders_none(app, sent):
    job_id = new_job_id()
    await put(app, "sink.status.record_status", job_id, status_event(job_id, Status.QUEUED, ops=[Op.METADATA]),
              status_event(job_id, Status.FAILED, 1, error=ErrorInfo(code="x", message="y")))  # fmt: skip
    assert JobView.model_validate_json(app.table_of(tables.STATUS)[job_id.encode()]).status is Status.FAILED
    assert sent.of(topics.WEBHOOKS) == []


async def test_a_deleted_job_stays_out_of_the_table_when_its_status_events_come_after_the_deletion(app):
    job_id = new_job_id()
    table = app.table_of(tables.STATUS)
    queued = status_event(job_id, Status.QUEUED, ops=[Op.METADATA], owner="k")
    await put(app, "sink.status.record_status", job_id, queued)
    assert job_id.encode() in table
    await put(app, "sink.status.forget_deleted_jobs", job_id, JobDeleted(job_id=job_id, owner="k", deleted_at=utcnow()))
    assert job_id.encode() not in table
    # record_status reads its topic beside medialane.deletions: it may fold the job's last events only now.
    late = [queued, ended(job_id, {Op.METADATA: OpOutcome(status=Status.COMPLETED, object_key="results/x", size=3)})]
    await put(app, "sink.status.record_status", job_id, *late)
    assert job_id.encode() not in table
    other = new_job_id()
    await put(app, "sink.status.record_status", other, status_event(other, Status.QUEUED, ops=[Op.METADATA], owner="k"))
    assert other.encode() in table


async def test_a_deletion_is_kept_for_its_window_then_pruned_from_within_its_partition(app, settings):
    deleted = app.table_of(tables.DELETED)
    old = utcnow() - timedelta(seconds=settings.finished_entries_keep_seconds + 60)
    expired, recent, elsewhere = new_job_id(), new_job_id(), new_job_id()
    for job_id, at, partition in ((expired, old, 2), (recent, utcnow(), 2), (elsewhere, old, 3)):
        deletion = JobDeleted(job_id=job_id, owner="k", deleted_at=at)
        await put(app, "sink.status.forget_deleted_jobs", job_id, deletion, partition=partition)
    # Each entry names its partition; the expired one went when the next deletion of its partition came.
    assert expired.encode() not in deleted
    assert DeletedJob.model_validate_json(deleted[recent.encode()]).partition == 2
    assert DeletedJob.model_validate_json(deleted[elsewhere.encode()]).partition == 3
    # A status event of another job on partition 3 prunes that partition's expired entry, not the recent one.
    other = new_job_id()
    await put(app, "sink.status.record_status", other, status_event(other, Status.QUEUED, ops=[Op.METADATA]),
              partition=3)  # fmt: skip
    assert elsewhere.encode() not in deleted
    assert recent.encode() in deleted


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

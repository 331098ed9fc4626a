"""Each processors agent on its own, in Faust's test context: a message in, and what the stage publishes
(every topic's send captured) and stores (the session's real object store). No worker runs, no broker is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any, NamedTuple
from unittest.mock import patch

import faust
import pytest

import processors
from adapters.courier import HOLD_SECONDS, copy_partition
from adapters.objects import copy_key, original_key, source_key
from adapters.worker_app import WorkerApp, create_app
from conftest import SAMPLES
from media.phash import phash_image
from media.uniquify import plan_copies
from adapters.objects import result_key
from processors.fetch import DOCUMENTS_CARRIED_BYTES, carried, in_memory_groups
from processors.ops import registry
from schemas.messages import (
    CopyOrder, JobRequest, Message, MetadataResult, Op, PHashRecord, RemoteUrl, Status, StrippedFile, UniquifyJob,
    UniquifySource, Upload, new_job_id, result_event_id, utcnow,
)
from schemas.status_events import OpOutcome, StatusEvent
from schemas.topics import (
    COPIES, COPY_TASKS, DLQ, JOBS, METADATA, PHASH, RESULTS, STATUS, STRIPPED, TOPICS, UNIQUIFY_JOBS,
)
from schemas.uniquify import CopyTask, UniquifyParams
from test_job_path import wav

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
NIKON = SAMPLES / "exif-samples" / "jpg" / "Nikon_D70.jpg"
# Cut inside the image data: the header reads, the pixels do not.
TRUNCATED = CANON.read_bytes()[:3000]


class Sent(NamedTuple):
    topic: str
    key: str
    value: dict[str, Any]
    partition: int | None
    at: float


class Processed(faust.Sensor):
    """Tells when an agent is done with an event: Faust's test context only tells when the agent took it, and
    these agents do their work after that (in threads, in the object store)."""

    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()

    def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
        self.done.set()


@pytest.fixture(scope="module")
async def app(stack, settings) -> WorkerApp:
    app = create_app(settings)
    processors.register(app)
    app.finalize()
    app.flow_control.resume()
    app.processed = Processed()
    app.sensors.add(app.processed)
    return app


@contextlib.contextmanager
def capturing(app: WorkerApp) -> Iterator[list[Sent]]:
    sent: list[Sent] = []

    def capture_to(topic: str):
        async def send(*, key: bytes, value: bytes, partition: int | None = None) -> None:
            sent.append(Sent(topic, key.decode(), json.loads(value), partition, time.monotonic()))

        return send

    with contextlib.ExitStack() as patches:
        for topic in TOPICS:
            patches.enter_context(patch.object(app.topic_of(topic), "send", capture_to(topic.name)))
        yield sent


async def put(app: WorkerApp, agent: str, value: Message | bytes, key: str) -> list[Sent]:
    """What ``agent`` publishes for one message, in order."""
    [tested] = [found for name, found in app.agents.items() if name.endswith(f".{agent}")]
    raw = value if isinstance(value, bytes) else value.model_dump_json().encode()
    app.processed.done.clear()
    with capturing(app) as sent:
        async with tested.test_context() as context:
            await context.put(raw, key=key.encode())
            await asyncio.wait_for(app.processed.done.wait(), timeout=60)
    return sent


async def put_together(app: WorkerApp, agent: str, messages: dict[str, Message]) -> list[Sent]:
    """What ``agent`` publishes for several messages put at once (by key), in order, once each job has ended."""
    [tested] = [found for name, found in app.agents.items() if name.endswith(f".{agent}")]
    with capturing(app) as sent:
        async with tested.test_context() as context:
            for key, message in messages.items():
                await context.put(message.model_dump_json().encode(), key=key.encode())
            async with asyncio.timeout(60):
                while len([s for s in sent if s.topic == STATUS.name and s.value["status"] not in ("queued", "processing")]) < len(messages):
                    await asyncio.sleep(0.05)
    return sent


async def stored_upload(app: WorkerApp, job_id: str, data: bytes) -> Upload:
    """An original as ingest stores it before the job is published."""
    key = original_key(job_id)
    await asyncio.to_thread(app.store.put_bytes, key, data, "image/jpeg")
    return Upload(object_key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), mime="image/jpeg")


def job(job_id: str, source: Upload | RemoteUrl, *ops: Op) -> JobRequest:
    return JobRequest(job_id=job_id, ops=list(ops), name="canon.jpg", source=source, created_at=utcnow(), owner="key1")


def statuses(sent: list[Sent]) -> list[tuple[str, str | None]]:
    return [(s.value["status"], (s.value.get("error") or {}).get("code")) for s in sent if s.topic == STATUS.name]


def test_every_op_but_uniquify_has_its_module():
    assert set(registry()) == set(RESULTS) - {Op.UNIQUIFY}


def ended(sent: list[Sent]) -> dict:
    """The job's terminal status event: the last one, with every op's outcome."""
    *_, last = [s.value for s in sent if s.topic == STATUS.name]
    return last


async def test_a_job_runs_every_op_in_one_hop_and_ends_with_each_outcome(app):
    data = CANON.read_bytes()
    job_id = new_job_id()
    upload = await stored_upload(app, job_id, data)

    sent = await put(app, "run_jobs", job(job_id, upload, Op.METADATA, Op.PHASH, Op.STRIP), job_id)

    # Queued and processing, each op's result on its topic, then one event that ends the job: no hop between.
    assert [(s.topic, s.key) for s in sent] == [(STATUS.name, job_id), (STATUS.name, job_id), (METADATA.name, job_id),
                                                (PHASH.name, job_id), (STRIPPED.name, job_id), (STATUS.name, job_id)]  # fmt: skip
    assert statuses(sent) == [("queued", None), ("processing", None), ("completed", None)]
    # The queued event is the stage's, from the request: ingest produces nothing to the status topic.
    taken = StatusEvent.model_validate(sent[0].value)
    assert (taken.ops, taken.owner, taken.name) == ([Op.METADATA, Op.PHASH, Op.STRIP], "key1", "canon.jpg")
    metadata = MetadataResult.model_validate(sent[2].value)
    assert metadata.metadata["file"]["size"] == len(data)
    record = PHashRecord.model_validate(sent[3].value)
    assert (record.phash, record.owner) == (phash_image(data).hash, "key1")
    stripped = StrippedFile.model_validate(sent[4].value)
    cleaned = await asyncio.to_thread(app.store.get_bytes, stripped.object_key)
    assert len(cleaned) == stripped.size < len(data)
    assert "EXIF" in stripped.removed
    # Each document is stored before the job ends, and the status event names it instead of carrying it.
    outcomes = ended(sent)["outcomes"]
    for result, op in ((metadata, Op.METADATA), (record, Op.PHASH), (stripped, Op.STRIP)):
        stored = await asyncio.to_thread(app.store.get_bytes, result_key(job_id, op))
        assert json.loads(stored) == json.loads(json.dumps(result.document()))
        assert outcomes[op] == {"status": "completed", "error": None, "object_key": result_key(job_id, op),
                                "size": len(stored)}  # fmt: skip
        # Small together, the documents ride on the end too: who waits on the job need not read them back.
        assert ended(sent)["documents"][op] == json.loads(stored)
    assert ended(sent).get("result") is None
    # The end names the owner and ops as well: a reader that missed the earlier events still folds an owned job.
    assert (ended(sent)["owner"], ended(sent)["ops"]) == ("key1", ["metadata", "phash", "strip"])


async def test_a_redelivered_job_publishes_its_results_with_the_same_event_ids(app):
    job_id = new_job_id()
    request = job(job_id, await stored_upload(app, job_id, CANON.read_bytes()), Op.METADATA, Op.PHASH)

    first, again = [await put(app, "run_jobs", request, job_id) for _ in range(2)]

    def event_ids(sent: list[Sent]) -> list[str]:
        return [s.value["event_id"] for s in sent if s.topic in (METADATA.name, PHASH.name)]

    assert event_ids(first) == event_ids(again) == [result_event_id(job_id, Op.METADATA), result_event_id(job_id, Op.PHASH)]
    assert len(set(event_ids(first))) == 2


async def test_an_op_that_fails_leaves_the_others_results_and_the_job_partial(app):
    job_id = new_job_id()
    upload = await stored_upload(app, job_id, wav())

    sent = await put(app, "run_jobs", job(job_id, upload, Op.METADATA, Op.PHASH), job_id)

    assert [s.topic for s in sent] == [STATUS.name, STATUS.name, METADATA.name, STATUS.name]
    terminal = ended(sent)
    assert terminal["status"] == "partial"
    outcomes = terminal["outcomes"]
    assert outcomes[Op.METADATA]["status"] == "completed"
    assert (outcomes[Op.PHASH]["status"], terminal["error"]) == ("failed", outcomes[Op.PHASH]["error"])
    assert outcomes[Op.PHASH]["error"]["code"]
    stored = await asyncio.to_thread(app.store.get_json, result_key(job_id, Op.METADATA))
    assert stored == MetadataResult.model_validate(sent[2].value).document()


async def test_a_url_job_stores_the_fetched_original(app, file_server):
    job_id = new_job_id()
    url = f"{file_server}/samples/{CANON.relative_to(SAMPLES)}"

    sent = await put(app, "run_jobs", job(job_id, RemoteUrl(url=url), Op.PHASH), job_id)

    assert [s.topic for s in sent] == [STATUS.name, STATUS.name, PHASH.name, STATUS.name]
    data = CANON.read_bytes()
    assert await asyncio.to_thread(app.store.get_bytes, original_key(job_id)) == data
    assert PHashRecord.model_validate(sent[2].value).sha256 == hashlib.sha256(data).hexdigest()


async def test_jobs_taken_together_each_end_with_their_own_outcome_and_events_in_order(app):
    requests = {}
    for data, ops in [(CANON.read_bytes(), [Op.METADATA, Op.PHASH]), (TRUNCATED, [Op.PHASH, Op.METADATA]),
                      (NIKON.read_bytes(), [Op.STRIP])]:  # fmt: skip
        job_id = new_job_id()
        requests[job_id] = job(job_id, await stored_upload(app, job_id, data), *ops)

    sent = await put_together(app, "run_jobs", requests)

    canon, truncated, nikon = requests
    def of(job_id: str) -> list[Sent]:
        return [s for s in sent if s.key == job_id]

    assert [s.topic for s in of(canon)] == [STATUS.name, STATUS.name, METADATA.name, PHASH.name, STATUS.name]
    assert statuses(of(canon)) == [("queued", None), ("processing", None), ("completed", None)]
    # One job's failure is its own: the others of its batch keep their results.
    assert statuses(of(truncated)) == [("queued", None), ("processing", None), ("partial", "corrupt_media")]
    assert [s.topic for s in of(nikon)] == [STATUS.name, STATUS.name, STRIPPED.name, STATUS.name]
    assert ended(of(nikon))["status"] == "completed"
    assert MetadataResult.model_validate(of(canon)[2].value).metadata == await asyncio.to_thread(
        app.store.get_json, result_key(canon, Op.METADATA))  # fmt: skip


def test_an_end_carries_its_documents_only_when_they_are_small_together():
    done = OpOutcome(status=Status.COMPLETED, size=DOCUMENTS_CARRIED_BYTES // 2)
    assert carried({Op.METADATA: done, Op.PHASH: done}, {Op.METADATA: {}, Op.PHASH: {}}) == {Op.METADATA: {}, Op.PHASH: {}}
    larger = done.model_copy(update={"size": DOCUMENTS_CARRIED_BYTES // 2 + 1})
    assert carried({Op.METADATA: done, Op.PHASH: larger}, {Op.METADATA: {}, Op.PHASH: {}}) is None
    assert carried({Op.METADATA: OpOutcome(status=Status.FAILED)}, {}) is None


def test_a_batch_runs_in_groups_whose_originals_fit_in_memory():
    def upload_job(size: int) -> JobRequest:
        upload = Upload(object_key="originals/x", size=size, sha256="0" * 64, mime="image/jpeg")
        return job(new_job_id(), upload, Op.METADATA)

    small, large, url = upload_job(40), upload_job(150), job(new_job_id(), RemoteUrl(url="http://x/y.jpg"), Op.PHASH)
    batch = [small, small, large, url, small, upload_job(500), small]

    groups = list(in_memory_groups(batch, url_bytes=60, budget=200))

    # In order; a group holds at most the budget, but for a job that alone is larger.
    assert groups == [[small, small], [large], [url, small], [batch[5]], [small]]


async def test_a_short_job_publishes_its_events_together_and_a_long_one_shows_it_is_processing(app, file_server):
    short, long = new_job_id(), new_job_id()
    path = CANON.relative_to(SAMPLES)
    pause, delay = HOLD_SECONDS / 2, HOLD_SECONDS + 1.5

    sent = await put(app, "run_jobs", job(short, RemoteUrl(url=f"{file_server}/slow/{pause}/{path}"), Op.PHASH), short)
    started = time.monotonic()
    sent += await put(app, "run_jobs", job(long, RemoteUrl(url=f"{file_server}/slow/{delay}/{path}"), Op.PHASH), long)

    # Held until the job ended: its events leave together, in one produce request, not its queued event first.
    quick = [s for s in sent if s.key == short]
    assert statuses(quick) == [("queued", None), ("processing", None), ("completed", None)]
    assert quick[-1].at - quick[0].at < pause / 2
    # The long one is shown processing once the hold is over, long before its end.
    slow = [s for s in sent if s.key == long]
    assert statuses(slow) == [("queued", None), ("processing", None), ("completed", None)]
    taken, processing, *_, end = slow
    assert HOLD_SECONDS - 0.1 < taken.at - started < HOLD_SECONDS + 0.5
    assert processing.at - taken.at < 0.1
    assert end.at - processing.at > delay - HOLD_SECONDS - 0.3


async def test_a_url_to_a_file_no_op_of_the_job_takes_fails_the_job(app, file_server):
    job_id = new_job_id()
    url = f"{file_server}/samples/README.md"

    sent = await put(app, "run_jobs", job(job_id, RemoteUrl(url=url), Op.PHASH), job_id)

    # Issue 18's rule, as ingest applies it to an upload: no op of the job takes the file, so the job fails.
    assert statuses(sent) == [("queued", None), ("processing", None), ("failed", "unsupported_media")]
    assert [s.topic for s in sent] == [STATUS.name, STATUS.name, STATUS.name]


async def test_a_truncated_file_fails_the_op_that_cannot_read_it_with_its_code(app):
    job_id = new_job_id()
    upload = await stored_upload(app, job_id, TRUNCATED)

    sent = await put(app, "run_jobs", job(job_id, upload, Op.PHASH, Op.METADATA), job_id)

    # exiftool reads the header (issue 18: readers degrade), the pixels are not there for the pHash.
    assert [s.topic for s in sent] == [STATUS.name, STATUS.name, METADATA.name, STATUS.name]
    assert statuses(sent) == [("queued", None), ("processing", None), ("partial", "corrupt_media")]
    assert ended(sent)["outcomes"][Op.PHASH]["error"]["code"] == "corrupt_media"


@pytest.mark.parametrize(
    "agent, topic",
    [("run_jobs", JOBS), ("plan_uniquify", UNIQUIFY_JOBS), ("make_copies", COPY_TASKS)],
)
async def test_a_poison_message_goes_to_the_dead_letter_topic(app, agent, topic):
    job_id = new_job_id()

    sent = await put(app, agent, b'poison{"job_id": 42}', job_id)

    [letter] = [s for s in sent if s.topic == DLQ.name]
    assert (letter.key, letter.value["topic"]) == (job_id, topic.name)
    assert topic.message.__name__ in letter.value["reason"]
    assert statuses(sent) == [("failed", "invalid_message")]


def uniquify_job(job_id: str, *names: str) -> UniquifyJob:
    sources = [
        UniquifySource(object_key=source_key(job_id, i), name=name, md5="0" * 32) for i, name in enumerate(names)
    ]
    return UniquifyJob(job_id=job_id, params=UniquifyParams(copies=2), seed=7, sources=sources, created_at=utcnow())


def tasks_of(job: UniquifyJob) -> list[CopyTask]:
    return plan_copies(job.params, [source.name for source in job.sources], job.seed)


async def test_a_uniquify_plan_goes_first_then_one_order_per_copy(app, settings):
    job_id = new_job_id()
    planned = uniquify_job(job_id, "a.jpg", "b.jpg")

    sent = await put(app, "plan_uniquify", planned, job_id)

    assert statuses(sent) == [("queued", None), ("processing", None)]
    plan, *orders = sent[2:]
    assert (plan.topic, plan.key, plan.value["event"]["kind"], plan.value["event"]["expected"]) == (
        COPIES.name, job_id, "planned", 4)  # fmt: skip
    tasks = tasks_of(planned)
    assert [CopyOrder.model_validate(order.value).task for order in orders] == tasks
    partitions = settings.topic_partitions
    assert [(o.topic, o.key, o.partition) for o in orders] == [
        (COPY_TASKS.name, f"{job_id}/{t.source_index}/{t.copy_index}/0", copy_partition(planned, t, partitions))
        for t in tasks
    ]


async def orders_of(app: WorkerApp, data: bytes) -> list[CopyOrder]:
    """A one-source job's copy orders, its source stored."""
    job_id = new_job_id()
    planned = uniquify_job(job_id, "a.jpg")
    await asyncio.to_thread(app.store.put_bytes, source_key(job_id, 0), data, "image/jpeg")
    return [
        CopyOrder(job_id=job_id, task=task, params=planned.params, source_key=source_key(job_id, 0))
        for task in tasks_of(planned)
    ]


async def test_a_copy_order_stores_the_copy_and_reports_it(app):
    order, _ = await orders_of(app, NIKON.read_bytes())

    [sent] = await put(app, "make_copies", order, order.job_id)

    assert (sent.topic, sent.key, sent.value["event"]["kind"]) == (COPIES.name, order.job_id, "made")
    made = sent.value["event"]
    assert made["object_key"] == copy_key(order.job_id, order.task) and made["error"] is None
    copy = await asyncio.to_thread(app.store.get_bytes, made["object_key"])
    assert copy.startswith(b"\xff\xd8") and copy != NIKON.read_bytes()
    assert (made["entry"]["md5"], made["entry"]["size"]) == (hashlib.md5(copy).hexdigest(), len(copy))


async def test_a_copy_whose_source_cannot_be_read_reports_why(app):
    order, _ = await orders_of(app, TRUNCATED)

    [sent] = await put(app, "make_copies", order, order.job_id)

    made = sent.value["event"]
    assert (sent.topic, made["kind"], made["object_key"]) == (COPIES.name, "made", None)
    assert made["error"]["code"] == "corrupt_media"
    assert await asyncio.to_thread(app.store.get_bytes_or_none, copy_key(order.job_id, order.task)) is None


async def test_the_next_copy_of_a_source_is_made_from_the_bytes_kept(app):
    first, second = await orders_of(app, NIKON.read_bytes())
    await put(app, "make_copies", first, first.job_id)
    await asyncio.to_thread(app.store.delete, first.source_key)

    [sent] = await put(app, "make_copies", second, second.job_id)

    assert sent.value["event"]["error"] is None

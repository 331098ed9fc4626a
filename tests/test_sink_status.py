"""The status stage (sink/status.py) through Faust's ``agent.test_context()``: status events folded into the
table, webhooks ordered for ended jobs, deletions kept and pruned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from adapters.objects import result_key
from schemas import tables, topics
from schemas.deletion import JobDeleted
from schemas.job_state import ended
from schemas.messages import ErrorInfo, Op, Status, new_job_id, utcnow
from schemas.status_events import OpOutcome, StatusEvent
from schemas.tables import DeletedJob
from schemas.views import JobView
from tests.sink_context import app, put, sent  # noqa: F401 - fixtures

T0 = datetime(2026, 1, 1, tzinfo=UTC)


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


async def test_a_batch_of_status_events_writes_each_job_once_to_its_own_partition(app, sent):
    outcome = {Op.METADATA: OpOutcome(status=Status.COMPLETED, object_key="results/x", size=3)}
    first, second = new_job_id(), new_job_id()
    events = [
        (first, 0, status_event(first, Status.QUEUED, ops=[Op.METADATA], owner="k")),
        (second, 1, status_event(second, Status.QUEUED, ops=[Op.METADATA], owner="k")),
        (first, 0, status_event(first, Status.PROCESSING, 1)),
        (second, 1, ended(second, outcome)),
        (first, 0, ended(first, outcome)),
    ]
    table = app.table_of(tables.STATUS)
    writes: list[tuple[bytes, int]] = []
    send_changelog = table.send_changelog

    def recorded(partition, key, value, *args, **kwargs):
        writes.append((key, partition))
        return send_changelog(partition, key, value, *args, **kwargs)

    # A window long enough that the five events surely make one batch.
    with patch.object(table, "send_changelog", recorded), patch("sink.status.STATUS_BATCH_WITHIN", 2.0):
        async with app.agents["sink.status.record_status"].test_context() as agent:
            target = app.finished.count + len(events)
            for job_id, partition, event in events:
                await agent.put(event.model_dump_json().encode(), key=job_id.encode(), partition=partition)
            await app.finished.reach(target)
    assert sorted(writes) == sorted([(first.encode(), 0), (second.encode(), 1)])
    for job_id in (first, second):
        assert JobView.model_validate_json(table[job_id.encode()]).status is Status.COMPLETED
    # The same events again change nothing, and write nothing.
    writes.clear()
    with patch.object(table, "send_changelog", recorded):
        await put(app, "sink.status.record_status", first, *[event for job_id, _, event in events if job_id == first])
    assert writes == []


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

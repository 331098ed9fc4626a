"""The timers' indexes (adapters/due.py) and what each stage files in them, as pure functions: the redrive and the
webhook retries take what is due from the index instead of reading their whole table every tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka.partitioner import DefaultPartitioner

from adapters.due import HEAP_SLACK, DueIndex, indexed, rebuild_all
from schemas.messages import (
    ErrorInfo, UniquifyJob, UniquifySource, WebhookAttempt, WebhookOrder, WebhookView, new_job_id,
)
from schemas.tables import DeletedJob, Delivery, FailedCopy, Ledger, MadeCopy
from schemas.uniquify import UniquifyParams
from sink import fanin, status, webhook_stage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD, KEEP = 15.0, 3600.0


def test_only_the_due_keys_of_the_given_partitions_are_taken_and_each_once():
    index = DueIndex()
    index.set(b"a", (10.0, 0))
    index.set(b"b", (20.0, 1))
    index.set(b"c", (30.0, 0))
    assert index.pop_due(5.0, {0, 1}) == []
    assert index.pop_due(25.0, {0}) == [b"a"]
    # b is another partition's: it stays until that partition is asked for.
    assert index.pop_due(25.0, {0}) == []
    assert index.pop_due(25.0, {1}) == [b"b"]
    assert index.pop_due(100.0, {0, 1}) == [b"c"]
    assert len(index) == 0


def test_a_key_set_again_is_due_at_its_last_time_and_a_key_set_to_none_never():
    index = DueIndex()
    index.set(b"moved", (10.0, 0))
    index.set(b"moved", (50.0, 0))
    index.set(b"gone", (10.0, 0))
    index.set(b"gone", None)
    assert index.pop_due(20.0, {0}) == []
    assert index.pop_due(50.0, {0}) == [b"moved"]


def test_the_heap_of_a_key_updated_forever_stays_bounded():
    index = DueIndex()
    for i in range(10 * HEAP_SLACK):
        index.set(b"busy", (1000.0 + i, 0))
    assert len(index._heap) <= 2 * len(index) + HEAP_SLACK + 1
    assert index.pop_due(1e9, {0}) == [b"busy"]


def test_rebuild_replaces_the_index_with_what_the_table_holds():
    index = DueIndex()
    index.set(b"stale", (1.0, 0))
    rebuild_all([(b"x", b"5"), (b"y", b"never")], [(index, lambda v: (float(v), 2) if v.isdigit() else None)])
    assert index.pop_due(10.0, {0, 2}) == [b"x"]
    assert len(index) == 0


def test_the_indexes_of_one_table_are_rebuilt_in_one_read_of_it():
    reads, first, second = [], DueIndex(), DueIndex()

    def table():
        for item in [(b"x", b"5"), (b"y", b"50")]:
            reads.append(item[0])
            yield item

    def only_five(value: bytes) -> tuple[float, int] | None:
        return (float(value) * 2, 1) if value == b"5" else None

    rebuild_all(table(), [(first, lambda value: (float(value), 0)), (second, only_five)])
    assert reads == [b"x", b"y"]
    assert first.pop_due(60.0, {0}) == [b"x", b"y"]
    assert second.pop_due(60.0, {1}) == [b"x"] and len(second) == 0


def job() -> UniquifyJob:
    source = UniquifySource(object_key="originals/j/0", name="a.jpg", md5="m")
    return UniquifyJob(job_id="j", params=UniquifyParams(copies=2), seed=1, sources=[source], created_at=T0)


def made() -> MadeCopy:
    return MadeCopy(entry={"md5": "x"}, object_key="k")


def test_a_planned_ledger_is_redriven_a_period_after_its_progress_and_pruned_once_finished():
    planned = Ledger(job=job(), expected=2, progressed_at=100.0, partition=3)
    assert fanin.redrive_at(planned, PERIOD) == 115.0
    assert fanin.prune_at(planned, KEEP) is None
    stalled_at = indexed(Ledger.model_validate_json, fanin.redrive_at, PERIOD)
    assert stalled_at(planned.model_dump_json().encode()) == (115.0, 3)

    failed = FailedCopy(source=0, code="corrupt_media", message="broken")
    for done in (planned.model_copy(update={"made": {"0-0": made()}, "failed": {"0-1": failed}}),
                 planned.model_copy(update={"zipped": True})):  # fmt: skip
        assert fanin.redrive_at(done, PERIOD) is None
        assert fanin.prune_at(done, KEEP) == 100.0 + KEEP


def test_a_ledger_without_its_plan_is_never_redriven_nor_pruned():
    early = Ledger(made={"0-0": made()}, progressed_at=100.0, partition=0)
    assert fanin.redrive_at(early, PERIOD) is None
    assert fanin.prune_at(early, KEEP) is None


def delivery(**state) -> Delivery:
    order = WebhookOrder(job_id="j", url="http://h/x", owner=None, document={"status": "completed"}, ended_at=T0)
    return Delivery(order=order, state=WebhookView(url="http://h/x", **state), partition=2)


def test_a_delivery_is_due_at_its_next_attempt_and_pruned_after_its_last():
    pending = delivery(next_attempt_at=T0 + timedelta(seconds=30))
    assert webhook_stage.attempt_at(pending) == (T0 + timedelta(seconds=30)).timestamp()
    assert webhook_stage.prune_at(pending, timedelta(seconds=KEEP)) is None

    attempt = WebhookAttempt(at=T0 + timedelta(seconds=40), status_code=204)
    delivered = delivery(delivered=True, attempts=[attempt])
    assert webhook_stage.attempt_at(delivered) is None
    assert webhook_stage.prune_at(delivered, timedelta(seconds=KEEP)) == (attempt.at.timestamp() + KEEP)
    due_of = indexed(webhook_stage.delivery_times, webhook_stage.prune_at, timedelta(seconds=KEEP))
    assert due_of(delivered.model_dump_json().encode()) == (attempt.at.timestamp() + KEEP, 2)


def test_a_delivery_given_up_without_an_attempt_is_pruned_after_its_order():
    unsigned = WebhookAttempt(at=T0, error=ErrorInfo(code="webhook_unsigned", message="no key"))
    assert webhook_stage.prune_at(delivery(), timedelta(seconds=KEEP)) == T0.timestamp() + KEEP
    assert webhook_stage.prune_at(delivery(attempts=[unsigned]), timedelta(seconds=KEEP)) == T0.timestamp() + KEEP


def test_the_indexes_read_a_delivery_without_its_document_as_they_read_it_whole():
    attempt = WebhookAttempt(at=T0 + timedelta(seconds=40), status_code=500)
    big = {"status": "completed", "result": {"metadata": {f"Tag{i}": "x" * 50 for i in range(500)}}}
    for state in ({"next_attempt_at": T0 + timedelta(seconds=30)}, {"attempts": [attempt]}, {}):
        whole = delivery(**state).model_copy(update={"order": delivery().order.model_copy(update={"document": big})})
        value = whole.model_dump_json().encode()
        times = webhook_stage.delivery_times(value)
        assert not hasattr(times.order, "document")
        assert webhook_stage.attempt_at(times) == webhook_stage.attempt_at(whole)
        keep = timedelta(seconds=KEEP)
        assert webhook_stage.prune_at(times, keep) == webhook_stage.prune_at(whole, keep)
        assert times.partition == whole.partition


def test_a_deletion_is_pruned_its_window_after_it_and_one_kept_without_its_partition_where_its_job_id_goes():
    partitions = 4
    deletion = DeletedJob(job_id="j", owner="k", deleted_at=T0, partition=1)
    forgotten = indexed(status.kept_deletion(partitions), status.forget_at, KEEP)
    assert forgotten(deletion.model_dump_json().encode()) == (T0.timestamp() + KEEP, 1)
    # Kept before the partition was recorded: the one its deletion came on, where the producer put the job id.
    for job_id in (new_job_id() for _ in range(20)):
        earlier = DeletedJob(job_id=job_id, owner="k", deleted_at=T0)
        came_on = DefaultPartitioner()(job_id.encode(), list(range(partitions)), list(range(partitions)))
        assert forgotten(earlier.model_dump_json().encode()) == (T0.timestamp() + KEEP, came_on)

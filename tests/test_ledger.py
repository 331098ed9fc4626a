"""The uniquify fan-out and fan-in without Kafka: where copies go, what each event does to the ledger, and
when missing copies are re-ordered."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from adapters.courier import copy_partition
from schemas.uniquify import CopyTask, UniquifyParams
from schemas.messages import CopyMade, CopyPlanned, ErrorInfo, UniquifyJob, UniquifySource
from sink.ledger import percent, record, stalled_tasks, task_key

JOB = UniquifyJob(
    job_id="job", params=UniquifyParams(copies=2), seed=7,
    sources=[UniquifySource(object_key="originals/job/0", name="a.jpg", md5="source-md5")],
    created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
)  # fmt: skip
PLANNED = CopyPlanned(job_id="job", expected=2, job=JOB)


def made(copy: int, md5: str, attempt: int = 0) -> CopyMade:
    task = {"source_index": 0, "copy_index": copy, "seed": copy, "path": f"{copy}.jpg", "attempt": attempt}
    return CopyMade(job_id="job", task=task, object_key=f"copies/{copy}", entry={"md5": md5, "path": f"{copy}.jpg"})


def failed(copy: int) -> CopyMade:
    task = {"source_index": 0, "copy_index": copy, "seed": copy, "path": f"{copy}.jpg", "attempt": 0}
    return CopyMade(job_id="job", task=task, error=ErrorInfo(code="corrupt_media", message="broken"))


def test_the_plan_is_recorded_once():
    first = record(None, PLANNED)
    assert first.progressed and first.ledger.expected == 2 and not first.complete
    again = record(first.ledger, CopyPlanned(job_id="job", expected=5, job=JOB))
    assert again.ledger.expected == 2


def test_copies_complete_the_job_and_a_redelivered_copy_changes_nothing():
    ledger = record(record(None, PLANNED).ledger, made(1, "m1")).ledger
    assert percent(ledger) == 50
    redelivered = record(ledger, made(1, "m1"))
    assert redelivered.ledger == ledger and not redelivered.progressed
    done = record(ledger, made(2, "m2"))
    assert done.complete and percent(done.ledger) == 100


def test_a_copy_whose_md5_is_taken_is_sent_back_with_a_new_attempt():
    ledger = record(record(None, PLANNED).ledger, made(1, "m1")).ledger
    clash = record(ledger, made(2, "m1"))
    assert clash.retry.copy_index == 2 and clash.retry.attempt == 1
    assert not clash.progressed and "0-2" not in clash.ledger.made
    assert record(ledger, made(2, "source-md5")).retry is not None


def test_a_failed_copy_counts_toward_completion():
    ledger = record(record(None, PLANNED).ledger, failed(1)).ledger
    assert ledger.failed["0-1"].code == "corrupt_media"
    assert record(ledger, made(2, "m2")).complete


def test_a_stalled_job_has_its_missing_copies_ordered_again():
    ledger = record(record(None, PLANNED).ledger, made(1, "m1")).ledger
    missing = stalled_tasks(ledger, now=100.0, since=80.0, after=15.0)
    assert [task_key(task) for task in missing] == ["0-2"]
    assert missing[0].attempt == 0


def test_a_job_that_progressed_lately_or_is_zipped_or_unplanned_is_left_alone():
    ledger = record(record(None, PLANNED).ledger, made(1, "m1")).ledger
    assert stalled_tasks(ledger, now=100.0, since=90.0, after=15.0) == []
    assert stalled_tasks(ledger.model_copy(update={"zipped": True}), now=100.0, since=0.0, after=15.0) == []
    unplanned = record(None, made(1, "m1")).ledger
    assert stalled_tasks(unplanned, now=100.0, since=0.0, after=15.0) == []


def test_a_jobs_copies_go_round_the_partitions_in_turn():
    job = JOB.model_copy(update={
        "job_id": "6f0c4e1a-0000-4000-8000-000000000000",
        "params": UniquifyParams(copies=10),
        "sources": JOB.sources * 3,
    })  # fmt: skip
    tasks = [CopyTask(source_index=s, copy_index=c, seed=0, path="x.jpg") for s in range(3) for c in range(1, 11)]
    counts = Counter(copy_partition(job, task, 4) for task in tasks)
    assert sorted(counts.values()) == [7, 7, 8, 8]
    first = copy_partition(job, tasks[0], 4)
    assert copy_partition(job, tasks[0].retry(), 4) == (first + 1) % 4

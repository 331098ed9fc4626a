"""The status state machine, without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.messages import ErrorInfo, Op, Status
from schemas.status_events import OpOutcome, StatusEvent
from schemas.job_state import fold

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(status: Status, seconds: int = 0, **fields) -> StatusEvent:
    return StatusEvent(job_id="j", status=status, at=T0 + timedelta(seconds=seconds), **fields)


QUEUED = event(Status.QUEUED, ops=[Op.METADATA])
PROCESSING = event(Status.PROCESSING, 1)
DONE = event(Status.PROCESSING, 2, op=Op.METADATA, result={"file": {"size": 1}})
FAILED = event(Status.FAILED, 3, error=ErrorInfo(code="extract_failed", message="boom"))


def replay(*events: StatusEvent):
    view = None
    for each in events:
        view = fold(view, each)
    return view


def test_queued_then_processing_then_completed():
    assert replay(QUEUED).status is Status.QUEUED
    assert replay(QUEUED, PROCESSING).status is Status.PROCESSING
    done = replay(QUEUED, PROCESSING, DONE)
    assert (done.status, done.percent, done.result) == (Status.COMPLETED, 100, {"metadata": {"file": {"size": 1}}})
    assert (done.created_at, done.updated_at) == (T0, T0 + timedelta(seconds=2))


def test_redelivered_events_change_nothing():
    once = replay(QUEUED, PROCESSING, DONE)
    assert replay(QUEUED, PROCESSING, DONE, QUEUED, PROCESSING, DONE) == once


def test_terminal_status_is_final():
    failed = replay(QUEUED, PROCESSING, FAILED)
    assert failed.status is Status.FAILED
    assert failed.error.code == "extract_failed"
    assert replay(QUEUED, PROCESSING, FAILED, DONE) == failed
    assert replay(QUEUED, DONE, FAILED).status is Status.COMPLETED


def test_late_queued_event_does_not_move_a_job_back():
    assert replay(QUEUED, PROCESSING, QUEUED).status is Status.PROCESSING


def test_an_end_carrying_its_documents_folds_into_a_view_without_them():
    outcome = OpOutcome(status=Status.COMPLETED, object_key="results/j/metadata.json", size=20)
    end = event(Status.COMPLETED, 2, outcomes={Op.METADATA: outcome}, documents={Op.METADATA: {"file": {"size": 1}}})
    done = replay(QUEUED, PROCESSING, end)
    # The table keeps the object key; the document is read from the store by who needs it.
    assert (done.status, done.result, done.outcomes) == (Status.COMPLETED, {}, {Op.METADATA: outcome})

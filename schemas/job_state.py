"""Job status: status events folded into one JobView per job, kept in the Faust status table.

``fold`` is the whole state machine and is pure, so the ingest service can run it too (to answer
``?wait``) and tests can check it without Kafka. The table's changelog in Kafka makes it survive
restarts; ``GET /jobs/{job_id}`` on any worker is routed to the worker that owns the job's partition.

``queued_view``, the job before any stage reports on it, is what both ``fold`` and the ingest service
start from.
"""

from __future__ import annotations

from schemas.messages import ErrorInfo, JobRecord, Op, Status, WebhookView, utcnow
from schemas.status_events import OpOutcome, StatusEvent, StatusStep
from schemas.views import JobView


def queued_view(record: JobRecord) -> JobView:
    """A job as it stands before any stage reports on it: what the ingest service answers for a job it has
    just queued (or knows only from its request record), and what ``fold`` starts from."""
    return JobView(
        job_id=record.job_id, status=Status.QUEUED, percent=0, ops=record.ops,
        created_at=record.created_at, updated_at=record.created_at, owner=record.owner, id=record.client_id,
        webhook=WebhookView(url=record.webhook_url) if record.webhook_url else None, name=record.name,
    )  # fmt: skip


def queued(record: JobRecord) -> StatusEvent:
    """A job's first event: what its request says of it (ops, owner, client id, webhook, name)."""
    return StatusEvent(job_id=record.job_id, status=Status.QUEUED, at=record.created_at, ops=record.ops,
                       owner=record.owner, client_id=record.client_id, webhook_url=record.webhook_url,
                       name=record.name)  # fmt: skip


def ended(job_id: str, outcomes: dict[Op, OpOutcome]) -> StatusEvent:
    """The event that ends a job whose every op has its outcome: completed, partial or failed, as they say."""
    status, error = summary(list(outcomes), outcomes)
    return StatusEvent(job_id=job_id, status=status, at=utcnow(), outcomes=outcomes, error=error)


def summary(ops: list[Op], outcomes: dict[Op, OpOutcome]) -> tuple[Status, ErrorInfo | None]:
    """The job's status once each of ``ops`` has its outcome, and its error: the first failed op's."""
    failed = [op for op in ops if outcomes[op].status is Status.FAILED]
    if not failed:
        return Status.COMPLETED, None
    return (Status.FAILED if len(failed) == len(ops) else Status.PARTIAL), outcomes[failed[0]].error


def fold(view: JobView | None, event: StatusStep) -> JobView:
    """Apply one event. Idempotent and monotonic: a redelivered or late event never moves a job back.

    Stages report queued, processing, and each op's outcome (completed, with its document's object key, or
    failed with its error); the job ends when every op it asked for has one: completed, partial (some
    failed) or failed (all did). A failed event without outcomes (the job's original could not be had, its
    message was unreadable) fails every op that has none yet. Workers before per-op outcomes reported an
    op's result document itself (``result``): it still completes the op. The webhook delivery stage
    reports its state after each attempt (sink/webhooks.py), on a finished job too.
    """
    if view is None:
        # The id and webhook an event names are taken below, as from any event.
        view = queued_view(JobRecord(job_id=event.job_id, ops=event.ops or [], created_at=event.at, owner=event.owner))
    if event.webhook is not None:
        # The latest state wins; a late report of fewer attempts is an older one.
        if view.webhook is None or len(event.webhook.attempts) >= len(view.webhook.attempts):
            return view.model_copy(update={"webhook": event.webhook})
        return view
    if view.status.terminal:
        if view.owner is None and event.owner is not None:
            # The queued event came after the job's end (the two are produced together): what it sets once.
            return view.model_copy(update={
                "owner": event.owner, "id": view.id or event.client_id, "name": view.name or event.name,
                "created_at": min(view.created_at, event.at), "webhook": webhook(view, event, view.status),
            })  # fmt: skip
        return view
    ops = view.ops or event.ops or list(event.outcomes or {})
    result, outcomes = dict(view.result), dict(view.outcomes)
    if event.op is not None and event.result is not None:
        result[event.op] = event.result
        outcomes[event.op] = OpOutcome(status=Status.COMPLETED)
    for op, outcome in (event.outcomes or {}).items():
        if op not in outcomes or outcomes[op].status is Status.PROCESSING:
            outcomes[op] = outcome
    if event.status is Status.FAILED:
        for op in ops:
            if op not in outcomes or outcomes[op].status is Status.PROCESSING:
                outcomes[op] = OpOutcome(status=Status.FAILED, error=event.error)
    done = [op for op in ops if op in outcomes and outcomes[op].status is not Status.PROCESSING]
    if ops and len(done) == len(ops):
        status, error = summary(ops, outcomes)
    elif event.status is Status.FAILED and not ops:
        status, error = Status.FAILED, event.error
    elif view.status is Status.QUEUED and event.status is Status.QUEUED:
        status, error = Status.QUEUED, None
    else:
        status, error = Status.PROCESSING, None
    return view.model_copy(
        update={
            "status": status,
            "ops": ops,
            "percent": 100 if status is Status.COMPLETED else max(view.percent, event.percent or 0, 100 * len(done) // max(len(ops), 1)),
            "result": result,
            "outcomes": outcomes,
            "error": error,
            "updated_at": max(view.updated_at, event.at),
            # Set once, by the queued event (even when another event of the job was folded first).
            "owner": view.owner or event.owner,
            "id": view.id or event.client_id,
            "name": view.name or event.name,
            "webhook": webhook(view, event, status),
        }
    )


def webhook(view: JobView, event: StatusStep, status: Status) -> WebhookView | None:
    """The job's webhook, named by its queued event; due from the moment the job ends."""
    current = view.webhook or (WebhookView(url=event.webhook_url) if event.webhook_url else None)
    if current is not None and status.terminal:
        return current.model_copy(update={"next_attempt_at": event.at})
    return current

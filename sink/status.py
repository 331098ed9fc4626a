"""Job status: status events folded into one JobView per job, kept in the Faust status table.

``fold`` is the whole state machine and is pure, so the ingest service can run it too (to answer
``?wait``) and tests can check it without Kafka. The table's changelog in Kafka makes it survive
restarts; ``GET /jobs/{job_id}`` on any worker is routed to the worker that owns the job's partition.
"""

from __future__ import annotations

from schemas.messages import JobView, Status, StatusEvent


def fold(view: JobView | None, event: StatusEvent) -> JobView:
    """Apply one event. Idempotent and monotonic: a redelivered or late event never moves a job back.

    Stages report queued, processing (with an op's result when they finish one) or failed; the job
    is completed when every op it asked for has a result.
    """
    if view is None:
        view = JobView(
            job_id=event.job_id,
            status=Status.QUEUED,
            percent=0,
            ops=event.ops or [],
            created_at=event.at,
            updated_at=event.at,
        )
    if view.status.terminal:
        return view
    ops = view.ops or event.ops or []
    result = dict(view.result)
    if event.op is not None and event.result is not None:
        result[event.op] = event.result
    done = sum(1 for op in ops if op in result)
    if event.status is Status.FAILED:
        status, error = Status.FAILED, event.error
    elif ops and done == len(ops):
        status, error = Status.COMPLETED, None
    elif view.status is Status.QUEUED and event.status is Status.QUEUED:
        status, error = Status.QUEUED, None
    else:
        status, error = Status.PROCESSING, None
    return view.model_copy(
        update={
            "status": status,
            "ops": ops,
            "percent": 100 if status is Status.COMPLETED else max(view.percent, event.percent or 0, 100 * done // max(len(ops), 1)),
            "result": result,
            "error": error,
            "updated_at": max(view.updated_at, event.at),
        }
    )

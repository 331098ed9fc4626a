"""Job status: every status event folded (schemas/job_state.py) into the job's view in the status table, and
the webhook of a job that ended ordered on ``medialane.webhooks`` (sink/webhooks.py says when).

The table keeps each view without its result documents (the outcomes name their object keys); a webhook's
document carries them, read back from the object store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters.courier import as_current
from adapters.due import indexed
from adapters.kafka import key_partition
from adapters.results import ResultDocuments
from adapters.worker_app import WorkerApp
from schemas import tables, topics
from schemas.deletion import JobDeleted
from schemas.job_state import fold
from schemas.messages import WebhookEvent
from schemas.status_events import StatusStep
from schemas.tables import DeletedJob
from schemas.views import JobView
from sink.webhooks import needs_order, order


# A job's events mostly come in one fetch (the stage that takes a job publishes its queued, processing and
# terminal events together: adapters/courier.py, ``holding``). Folded together they make one table write, one
# changelog record, where each event made its own.
STATUS_BATCH = 256
STATUS_BATCH_WITHIN = 0.01


def by_job(taken: list[tuple[Any, StatusStep]]) -> dict[str, list[tuple[Any, StatusStep]]]:
    """The batch's events by job, in order."""
    jobs: dict[str, list[tuple[Any, StatusStep]]] = {}
    for event, status in taken:
        jobs.setdefault(status.job_id, []).append((event, status))
    return jobs


def kept_deletion(partitions: int) -> Callable[[bytes], DeletedJob]:
    """A ``deleted`` entry's reader. Entries kept before their partition was recorded get the one their job id
    goes to (medialane.deletions is keyed by job id, with Kafka's default partitioner), so they are pruned too."""

    def parse(value: bytes) -> DeletedJob:
        deletion = DeletedJob.model_validate_json(value)
        if deletion.partition is not None:
            return deletion
        return deletion.model_copy(update={"partition": key_partition(deletion.job_id.encode(), partitions)})

    return parse


def forget_at(deletion: DeletedJob, keep: float) -> float:
    """When a kept deletion is pruned: ``keep`` seconds after it."""
    return deletion.deleted_at.timestamp() + keep


def register(app: WorkerApp) -> None:
    courier = app.courier
    table = app.table_of(tables.STATUS)
    deleted = app.table_of(tables.DELETED)
    documents = ResultDocuments(app.store)
    keep = app.settings.finished_entries_keep_seconds
    expired_at = indexed(kept_deletion(app.settings.topic_partitions), forget_at, keep)
    expired = app.due_index(tables.DELETED, expired_at, "prune")

    def prune(partition: int) -> None:
        # From within a stream of the partition (status and deletions are keyed and partitioned alike), so the
        # changelog's tombstone lands in the entry's partition.
        for key in expired.pop_due(time.time(), {partition}):
            deleted.pop(key, None)

    def record(job_id: str, steps: list[StatusStep]) -> list[JobView]:
        """The job's steps folded into its view, written once (and not at all when they change nothing, as
        redelivered ones do); the views that order the job's webhook."""
        key = job_id.encode()
        if key in deleted:
            return []
        current = table.get(key)
        view = JobView.model_validate_json(current) if current is not None else None
        ordering = []
        for status in steps:
            view = fold(view, status)
            if needs_order(view, status):
                ordering.append(view)
        folded = view.model_dump_json().encode()
        if folded != current:
            table[key] = folded
        return ordering

    @app.agent(app.topic_of(topics.STATUS))
    async def record_status(stream):
        async for taken in courier.event_batches(stream, StatusStep, STATUS_BATCH, STATUS_BATCH_WITHIN):
            for event in {event.message.partition: event for event, _ in taken}.values():
                with as_current(event):
                    prune(event.message.partition)
            for job_id, steps in by_job(taken).items():
                # The job's events share its partition: the last one's is where its table entry goes.
                with as_current(steps[-1][0]):
                    ordering = record(job_id, [status for _, status in steps])
                for view in ordering:
                    full = await documents.with_documents(view)
                    await courier.publish(topics.WEBHOOKS, view.job_id, WebhookEvent(event=order(full)))

    # Deletion: medialane.deletions is keyed and partitioned like the tables, so the job's entries are on this
    # worker. The deletion is kept for a while (schemas/tables.py): the job's status events may still come.
    @app.agent(app.topic_of(topics.DELETIONS))
    async def forget_deleted_jobs(stream):
        async for event, deletion in courier.messages(stream, JobDeleted):
            prune(event.message.partition)
            key = deletion.job_id.encode()
            entry = DeletedJob(**deletion.model_dump(), partition=event.message.partition)
            deleted[key] = entry.model_dump_json().encode()
            expired.set(key, (forget_at(entry, keep), entry.partition))
            table.pop(key, None)

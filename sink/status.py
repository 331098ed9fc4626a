"""Job status: every status event folded (schemas/job_state.py) into the job's view in the status table, and
the webhook of a job that ended ordered on ``medialane.webhooks`` (sink/webhooks.py says when).

The table keeps each view without its result documents (the outcomes name their object keys); a webhook's
document carries them, read back from the object store.
"""

from __future__ import annotations

from adapters.results import ResultDocuments
from adapters.worker_app import WorkerApp
from schemas import tables, topics
from schemas.deletion import JobDeleted
from schemas.job_state import fold
from schemas.messages import StatusEvent, WebhookEvent
from schemas.views import JobView
from sink.webhooks import needs_order, order


def register(app: WorkerApp) -> None:
    courier = app.courier
    table = app.table_of(tables.STATUS)
    deleted = app.table_of(tables.DELETED)
    documents = ResultDocuments(app.store)

    @app.agent(app.topic_of(topics.STATUS))
    async def record_status(stream):
        async for _, status in courier.messages(stream, StatusEvent):
            key = status.job_id.encode()
            if key in deleted:
                continue
            current = table.get(key)
            view = fold(JobView.model_validate_json(current) if current is not None else None, status)
            table[key] = view.model_dump_json().encode()
            if needs_order(view, status):
                full = await documents.with_documents(view)
                await courier.publish(topics.WEBHOOKS, view.job_id, WebhookEvent(event=order(full)))

    # Deletion: medialane.deletions is keyed and partitioned like the tables, so the job's entries are on this
    # worker. The deletion is kept: the job's status events may still come (record_status may lag behind).
    @app.agent(app.topic_of(topics.DELETIONS))
    async def forget_deleted_jobs(stream):
        async for _, deletion in courier.messages(stream, JobDeleted):
            key = deletion.job_id.encode()
            deleted[key] = deletion.model_dump_json().encode()
            table.pop(key, None)

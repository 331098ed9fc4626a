"""Uniquify's fan-out: the plan to the fan-in first (sink), then one copy order per copy, spread over the
workers (processors/copies.py makes them)."""

from __future__ import annotations

from adapters.worker_app import WorkerApp
from media.uniquify import plan_copies
from schemas.messages import CopyPlanned, CopyProgress, UniquifyJob
from schemas.topics import COPIES, UNIQUIFY_JOBS


def register(app: WorkerApp) -> None:
    courier = app.courier

    @app.agent(app.topic_of(UNIQUIFY_JOBS))
    async def plan_uniquify(stream):
        async for _, job in courier.messages(stream, UniquifyJob):
            await courier.report_taken(job)
            tasks = plan_copies(job.params, [source.name for source in job.sources], job.seed)
            planned = CopyPlanned(job_id=job.job_id, expected=len(tasks), job=job)
            await courier.publish(COPIES, job.job_id, CopyProgress(event=planned))
            for task in tasks:
                await courier.order_copy(job, task)

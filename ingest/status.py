"""Job status as the ingest service sees it: looked up in the workers' status table, or watched live.

``JobStatus.lookup`` asks any worker (the worker routes to the owner of the job's partition). A job
the table has not folded yet is still known from its request record, so a job id that
``POST /v1/jobs`` returned never answers 404. ``StatusWatcher`` folds status events for the jobs a
request is waiting on, with the same ``fold`` as the table, to answer ``?wait`` without polling.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition

from ingest.workers import WorkerError, Workers
from processors.offsets import end_offsets
from schemas.errors import NotFound
from schemas.messages import JobRecord, JobView, Status, StatusEvent, is_job_id
from schemas.settings import Settings
from sink.objects import ObjectStore, request_key
from sink.status import fold

STATUS_TOPIC = "medialane.status"


def queued_view(record: JobRecord) -> JobView:
    return JobView(
        job_id=record.job_id, status=Status.QUEUED, percent=0, ops=record.ops,
        created_at=record.created_at, updated_at=record.created_at,
    )  # fmt: skip


class JobStatus:
    def __init__(self, workers: Workers, store: ObjectStore) -> None:
        self.workers = workers
        self.store = store

    async def lookup(self, job_id: str) -> JobView:
        if not is_job_id(job_id):
            raise NotFound(f"no job with id {job_id}", code="job_not_found")
        status, document = await self.workers.get(f"/jobs/{job_id}")
        if status == 200:
            return JobView.model_validate(document)
        if status != 404:
            raise WorkerError(status, document)
        if not await asyncio.to_thread(self.store.exists, request_key(job_id)):
            raise NotFound(f"no job with id {job_id}", code="job_not_found")
        record = await asyncio.to_thread(self.store.get_json, request_key(job_id))
        return queued_view(JobRecord.model_validate(record))


class StatusWatcher:
    """Follows the status topic from its end, for jobs someone is waiting on."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        self.watched: dict[str, tuple[JobView, asyncio.Future[JobView]]] = {}
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(STATUS_TOPIC) or set()
        assignment = [TopicPartition(STATUS_TOPIC, p) for p in partitions]
        self.consumer.assign(assignment)
        # Positioned before start() returns: events published after it are never missed.
        for tp, end in (await end_offsets(self.bootstrap, assignment)).items():
            self.consumer.seek(tp, end)
        self.task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.consumer.stop()

    @contextlib.contextmanager
    def watch(self, view: JobView):
        """Watch a job from before it is published; yields ``finished(timeout)``: the finished view or the latest."""
        future: asyncio.Future[JobView] = asyncio.get_running_loop().create_future()
        self.watched[view.job_id] = (view, future)

        async def finished(timeout: float) -> JobView:
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                return self.watched[view.job_id][0]

        try:
            yield finished
        finally:
            self.watched.pop(view.job_id, None)

    async def _follow(self) -> None:
        async for record in self.consumer:
            job_id = record.key.decode(errors="replace") if record.key else ""
            if job_id not in self.watched:
                continue
            try:
                event = StatusEvent.model_validate_json(record.value)
            except ValueError:
                continue
            view, future = self.watched[job_id]
            view = fold(view, event)
            self.watched[job_id] = (view, future)
            if view.status.terminal and not future.done():
                future.set_result(view)

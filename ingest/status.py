"""Job status as the ingest service sees it: looked up in the workers' status table, or watched live.

``JobStatus.lookup`` asks any worker (the worker routes to the owner of the job's partition), then reads
the completed ops' result documents from the object store: the table holds views without them. A job the
table has not folded yet is still known from its queued event, which this process published or its
watcher read (or, for a uniquify job, from its request record), so a job id that ``POST /v1/jobs``
returned never answers 404. Only the API key that made a job sees it; to any other it answers exactly as
an unknown id does. Each job has an entry ``owners/{key_id}/{inverted time}-{job_id}`` holding its request
record, so listing that prefix gives a key's jobs newest first.
``StatusWatcher`` folds status events for the jobs a request is waiting on, with the same ``fold`` as
the table, to answer ``?wait`` without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from ingest.workers import WorkerError, Workers
from adapters.kafka import end_offsets
from schemas.errors import InvalidParameter, NotFound
from schemas.messages import JobRecord, Status, is_job_id
from schemas.status_events import StatusEvent, StatusStep
from schemas.views import JobView
from schemas.settings import Settings
from schemas.topics import DELETIONS
from adapters.objects import ObjectStore, owner_prefix, request_key
from adapters.results import ResultDocuments
from schemas.job_state import fold, queued_view

STATUS_TOPIC = "medialane.status"
REMEMBERED = 10_000
# Microseconds are subtracted from this so that later jobs sort first (it lasts until the year 2286).
TIME_CEILING = 10**16
CURSOR = re.compile(r"[0-9]{16}-[0-9a-f-]{36}")


def owner_entry(owner: str, created_at: datetime, job_id: str) -> str:
    """The object naming ``job_id`` under its owner's prefix; names sort newest first."""
    micros = round(created_at.timestamp() * 1_000_000)
    return f"{owner_prefix(owner)}{TIME_CEILING - micros:016d}-{job_id}"


def job_id_of_entry(entry: str) -> str:
    return entry.rsplit("/", 1)[1].split("-", 1)[1]


class JobStatus:
    def __init__(self, workers: Workers, store: ObjectStore, watcher: StatusWatcher) -> None:
        self.workers = workers
        self.store = store
        self.watcher = watcher
        self.documents = ResultDocuments(store)

    async def with_documents(self, view: JobView) -> JobView:
        """``view`` with its completed ops' result documents, as ``GET /v1/jobs/{job_id}`` answers it."""
        return await self.documents.with_documents(view)

    async def lookup(self, job_id: str, owner: str | None, documents: bool = True) -> JobView:
        """The job, if ``owner`` (a key_id) made it, with its result documents unless ``documents`` is false.
        ``owner=None`` finds anyone's job: only for the routes public by design, which rely on job ids
        being unguessable."""
        unknown = NotFound(f"no job with id {job_id}", code="job_not_found")
        if not is_job_id(job_id):
            raise unknown
        # The documents are read here, where recent ones are kept for the clients polling this process.
        status, document = await self.workers.get(f"/jobs/{job_id}", {"documents": "false"})
        if status == 200:
            view = JobView.model_validate(document)
        elif status != 404:
            raise WorkerError(status, document)
        elif job_id in self.watcher.queued:
            view = self.watcher.queued[job_id]
        elif (record := await asyncio.to_thread(self.store.get_json_or_none, request_key(job_id))) is not None:
            view = queued_view(JobRecord.model_validate(record))
        else:
            raise unknown
        if not view.status.terminal:
            # The table folds a job's end a moment after this process has answered it: never step back.
            view = self.watcher.ended.get(job_id, view)
        if owner is not None and view.owner != owner:
            raise unknown
        return await self.with_documents(view) if documents else view

    async def owned(self, owner: str, limit: int, cursor: str | None = None) -> tuple[list[JobView], str | None]:
        """A page of ``owner``'s jobs, newest first, and the cursor of the next page (None on the last)."""
        if cursor is not None and not CURSOR.fullmatch(cursor):
            raise InvalidParameter("cursor is not one this API returned", code="invalid_cursor", field="cursor")
        prefix = owner_prefix(owner)
        start = prefix + cursor if cursor else None
        entries = await asyncio.to_thread(self.store.list_page, prefix, start, limit + 1)
        page = entries[:limit]
        found = await asyncio.gather(*(self.lookup(job_id_of_entry(entry), owner, documents=False) for entry in page),
                                     return_exceptions=True)  # fmt: skip
        for failure in (view for view in found if isinstance(view, BaseException)):
            # A job deleted between the listing and its lookup is simply gone from the page.
            if not isinstance(failure, NotFound):
                raise failure
        views = [view for view in found if isinstance(view, JobView)]
        return views, page[-1][len(prefix):] if len(entries) > limit else None


class StatusWatcher:
    """Follows the status topic from its end, for jobs someone is waiting on.

    It remembers the last ``REMEMBERED`` jobs it saw end, so that a lookup this process serves right after
    answering a ``?wait`` never shows an older state than the answer did (the workers' table folds the
    same end a moment later). Another ingest process may, for that moment, still show the job running.
    It remembers as many jobs queued (by this process, or by another as it reads their queued events), so
    that a lookup right after ``POST /v1/jobs`` finds the job before the table has folded it.
    """

    def __init__(self, settings: Settings, on_end: Callable[[str], None] = lambda job_id: None) -> None:
        # Told of every job the topic says ended, watched or not: the guard stops counting it as active.
        self.on_end = on_end
        # Told of every status event (ingest/events.py): one consumer of the topic per process, since every
        # fetch that finds data costs the embedded broker a listing and a read of each partition.
        self.listeners: list[Callable[[str, StatusStep], None]] = []
        self.bootstrap = settings.kafka_bootstrap
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                         fetch_max_wait_ms=settings.kafka_fetch_wait_ms)  # fmt: skip
        self.watched: dict[str, tuple[JobView, asyncio.Future[JobView]]] = {}
        self.ended: OrderedDict[str, JobView] = OrderedDict()
        self.queued: OrderedDict[str, JobView] = OrderedDict()
        # The status topic is read beside medialane.deletions: a deleted job's events can still come after.
        self.deleted: OrderedDict[str, None] = OrderedDict()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        # Deletions too: a deleted job is forgotten here as the status table forgets it (ingest/deletion.py).
        assignment = [TopicPartition(topic, p) for topic in (STATUS_TOPIC, DELETIONS.name)
                      for p in self.consumer.partitions_for_topic(topic) or ()]  # fmt: skip
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

    def remember_queued(self, view: JobView) -> None:
        remember(self.queued, view.job_id, view)

    def forget(self, job_id: str) -> None:
        """A deleted job: neither remembered as queued nor as ended any more."""
        self.queued.pop(job_id, None)
        self.ended.pop(job_id, None)
        remember(self.deleted, job_id, None)

    async def _follow(self) -> None:
        async for record in self.consumer:
            job_id = record.key.decode(errors="replace") if record.key else ""
            if record.topic == DELETIONS.name:
                self.forget(job_id)
                continue
            # The documents a job's end may carry are read only for a job someone waits on.
            model = StatusEvent if job_id in self.watched else StatusStep
            try:
                event = model.model_validate_json(record.value)
            except ValueError:
                continue
            for listener in self.listeners:
                listener(job_id, event)
            if job_id in self.deleted:
                continue
            if event.status is Status.QUEUED and event.ops is not None and job_id not in self.queued:
                self.remember_queued(fold(None, event))
            if event.status.terminal:
                self.on_end(job_id)
            if job_id not in self.watched:
                continue
            view, future = self.watched[job_id]
            view = fold(view, event)
            self.watched[job_id] = (view, future)
            if view.status.terminal and not future.done():
                remember(self.ended, job_id, view)
                future.set_result(with_carried_documents(view, event))


def with_carried_documents(view: JobView, end: StatusEvent) -> JobView:
    """``view`` with the documents its ending event carries, if any: the answer to whoever waited then need
    not read them back. The view kept to answer lookups stays without them, as the table's is."""
    documents = end.documents
    return view.model_copy(update={"result": {**view.result, **documents}}) if documents else view


def remember(jobs: OrderedDict, job_id: str, value) -> None:
    """``value`` kept for ``job_id`` among the last ``REMEMBERED`` jobs, the oldest forgotten first."""
    jobs[job_id] = value
    if len(jobs) > REMEMBERED:
        jobs.popitem(last=False)

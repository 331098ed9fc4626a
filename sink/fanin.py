"""The fan-in of uniquification jobs: each job's copies gathered into its ledger (table ``uniquify``), the zip
once every copy is made or has failed, and the redrive of jobs whose copies stalled.

What each event means for the ledger is decided by sink/ledger.py; this stage keeps the table, orders
retries, reports progress and builds the archive. Two indexes beside the table (adapters/due.py) say which
jobs the redrive looks at and which finished ledgers are old enough to delete, so neither reads the table.
"""

from __future__ import annotations

import asyncio
import logging
import time

from adapters.due import indexed
from adapters.links import sign
from adapters.worker_app import WorkerApp
from schemas.errors import MedialaneError
from schemas.messages import CopyProgress, Status, Uniquified, utcnow
from schemas.tables import UNIQUIFY, Ledger
from schemas.topics import COPIES, UNIQUIFIED
from sink.archive import build_archive
from sink.ledger import done, percent, record, stalled_tasks

log = logging.getLogger(__name__)


def register(app: WorkerApp) -> None:
    fanin = FanIn(app)

    @app.agent(app.topic_of(COPIES))
    async def gather_copies(stream):
        await fanin.gather(stream)

    @app.timer(interval=app.settings.uniquify_redrive_seconds)
    async def redrive_stalled_copies() -> None:
        await fanin.redrive(app.active_partitions(COPIES), time.time())


def finished(ledger: Ledger) -> bool:
    return ledger.zipped or ledger.expected is not None and done(ledger) == ledger.expected


def redrive_at(ledger: Ledger, period: float) -> float | None:
    """When the redrive next looks at a job: a period after its last progress, never once it has finished."""
    if ledger.job is None or ledger.progressed_at is None or finished(ledger):
        return None
    return ledger.progressed_at + period


def prune_at(ledger: Ledger, keep: float) -> float | None:
    """When a finished ledger is deleted: ``keep`` after its last progress, so redelivered events are still
    recognised as already folded until then."""
    if not finished(ledger):
        return None
    return (ledger.progressed_at or 0.0) + keep


class FanIn:
    """One worker's fan-in: the ledgers it folds, the jobs the redrive looks at next, the ledgers to delete."""

    def __init__(self, app: WorkerApp) -> None:
        self.app = app
        self.courier = app.courier
        self.table = app.table_of(UNIQUIFY)
        self.period = app.settings.uniquify_redrive_seconds
        self.stalled_at = indexed(Ledger.model_validate_json, redrive_at, self.period)
        self.expired_at = indexed(Ledger.model_validate_json, prune_at, app.settings.finished_entries_keep_seconds)
        self.stalled = app.due_index(UNIQUIFY, self.stalled_at, "redrive")
        self.expired = app.due_index(UNIQUIFY, self.expired_at, "prune")

    def ledger(self, job_id: str) -> Ledger | None:
        current = self.table.get(job_id.encode())
        return Ledger.model_validate_json(current) if current is not None else None

    def keep(self, job_id: str, ledger: Ledger) -> None:
        key, value = job_id.encode(), ledger.model_dump_json().encode()
        self.table[key] = value
        self.stalled.set(key, self.stalled_at(value))
        self.expired.set(key, self.expired_at(value))

    async def gather(self, stream) -> None:
        """One ledger per job; the zip once every copy is made or has failed."""
        async for event, progress in self.courier.messages(stream, CopyProgress):
            # Deleted from within the partition's own stream, so the changelog's tombstone lands in its partition.
            for key in self.expired.pop_due(time.time(), {event.message.partition}):
                self.table.pop(key, None)
            job_id = progress.event.job_id
            outcome = record(self.ledger(job_id), progress.event)
            update: dict = {"partition": event.message.partition}
            if outcome.progressed:
                update["progressed_at"] = time.time()
            job_ledger = outcome.ledger.model_copy(update=update)
            self.keep(job_id, job_ledger)
            try:
                if outcome.retry is not None:
                    assert job_ledger.job is not None
                    await self.courier.order_copy(job_ledger.job, outcome.retry)
                elif outcome.complete:
                    await self.finish(job_id, job_ledger)
                elif outcome.progressed:
                    await self.courier.report(job_id, Status.PROCESSING, percent=percent(job_ledger))
            except Exception as exc:  # noqa: BLE001 - every failure ends the job with its reason
                await self.courier.report_failure(job_id, exc)

    async def finish(self, job_id: str, job_ledger: Ledger) -> None:
        if not job_ledger.made:
            reasons = sorted({failure.message for failure in job_ledger.failed.values()})
            raise MedialaneError(f"no copy could be made: {'; '.join(reasons)}", code="uniquify_failed")
        key, size, document = await asyncio.to_thread(build_archive, self.app.store, job_id, job_ledger)
        url, expires_at = sign(self.app.settings, key, key.rsplit("/", 1)[1])
        result = Uniquified(
            job_id=job_id, object_key=key, download_url=url, expires_at=expires_at, copies=len(job_ledger.made),
            files=len(job_ledger.made) + 1, size=size, failed=document["failed"], manifest=document,
            finished_at=utcnow(),
        )  # fmt: skip
        await self.courier.publish(UNIQUIFIED, job_id, result)
        self.keep(job_id, job_ledger.model_copy(update={"zipped": True}))

    async def redrive(self, partitions: set[int], now: float) -> None:
        """Orders again the missing copies of the jobs of ``partitions`` that have made no progress for a period.

        Orders are idempotent (a copy already in the ledger is ignored), so ordering the missing ones again is
        safe; a standby copy of the table is never acted on. A job re-ordered waits another period.
        """
        for key in self.stalled.pop_due(now, partitions):
            job_id = key.decode()
            job_ledger = self.ledger(job_id)
            if job_ledger is None or job_ledger.partition is None:
                continue
            # The index found the job a period past its last progress or re-order.
            missing = stalled_tasks(job_ledger, now, now - self.period, self.period)
            if missing:
                # A copy order or its result can be lost to a reader on the embedded broker (docs/topics.md): the
                # job then takes a redrive period longer, which this line explains in its log.
                log.info("uniquify job %s: %d copies ordered again, none made for %.0f s", job_id, len(missing),
                         self.period, extra={"job_id": job_id, "copies": len(missing)})  # fmt: skip
                self.stalled.set(key, (now + self.period, job_ledger.partition))
                job = job_ledger.job
                assert job is not None
                for task in missing:
                    await self.courier.order_copy(job, task)

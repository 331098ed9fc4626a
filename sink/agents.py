"""What flows into the sink: results to the object store, status events into the status table,
pHash records into this worker's replica of the near-duplicate index, finished jobs to their webhooks.

The worker's web server answers ``GET /jobs/{job_id}`` from the table (Faust routes the request to
the worker that owns the job's partition, so any worker can be asked) and ``GET /similar`` from
the replica.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import TypeVar

from faust.web import Request, Response, View

from processors import delivery
from processors.app import (
    app, copies_topic, metadata_topic, phash_topic, settings, status_table, status_topic, stripped_topic,
    uniquified_topic, uniquify_table, webhooks_table, webhooks_topic,
)
from schemas.errors import InvalidParameter, MedialaneError
from schemas.messages import (
    CopyProgress, ErrorBody, JobView, Message, MetadataResult, Op, PHashRecord, Status, StatusEvent, StrippedFile,
    Uniquified, UniquifyJob, WebhookAttempted, WebhookEvent, utcnow,
)
from sink import ledger, webhooks
from sink.apikeys import KeyStore
from sink.archive import build_archive
from sink.downloads import sign
from sink.objects import ObjectStore, result_key
from sink.similar import ReplicaFollower, parse_query
from sink.status import fold

M = TypeVar("M", bound=Message)

store = ObjectStore(settings)


similar_images = ReplicaFollower(settings, store)


async def store_results(stream, model: type[M], op: Op, document: Callable[[M], dict]) -> None:
    """Each op's result: to the object store (overwriting: a redelivery is harmless), then to the job."""
    async for _, result in delivery.messages(stream, model):
        try:
            body = document(result)
            await asyncio.to_thread(store.put_json, result_key(result.job_id, op), body)
            await delivery.report(result.job_id, Status.PROCESSING, op=op, result=body)
        except Exception as exc:  # noqa: BLE001
            await delivery.report_failure(result.job_id, exc)


@app.agent(metadata_topic)
async def store_metadata(stream):
    await store_results(stream, MetadataResult, Op.METADATA, lambda result: result.metadata)


@app.agent(phash_topic)
async def store_phash(stream):
    await store_results(stream, PHashRecord, Op.PHASH, lambda record: record.model_dump(
        mode="json", exclude={"job_id", "name", "hashed_at", "owner"}))  # fmt: skip


@app.agent(stripped_topic)
async def store_strip(stream):
    await store_results(stream, StrippedFile, Op.STRIP, lambda file: {
        "downloadUrl": file.download_url, "expiresAt": file.expires_at.isoformat(), "size": file.size,
        "format": file.format, "removed": file.removed, "kept": file.kept,
    })  # fmt: skip


@app.agent(copies_topic)
async def gather_copies(stream):
    """The fan-in: one ledger per job; the zip once every copy is made or has failed."""
    async for event, progress in delivery.messages(stream, CopyProgress):
        job_id = progress.event.job_id
        current = uniquify_table.get(job_id.encode())
        outcome = ledger.record(json.loads(current) if current is not None else None, progress.event)
        if outcome.progressed:
            outcome.ledger["progressed_at"] = time.time()
        outcome.ledger["partition"] = event.message.partition
        uniquify_table[job_id.encode()] = json.dumps(outcome.ledger).encode()
        try:
            if outcome.retry is not None:
                await delivery.order_copy(UniquifyJob.model_validate(outcome.ledger["job"]), outcome.retry)
            elif outcome.complete:
                await finish_uniquify(job_id, outcome.ledger)
            elif outcome.progressed:
                await delivery.report(job_id, Status.PROCESSING, percent=ledger.percent(outcome.ledger))
        except Exception as exc:  # noqa: BLE001
            await delivery.report_failure(job_id, exc)


async def finish_uniquify(job_id: str, job_ledger: dict) -> None:
    if not job_ledger["made"]:
        reasons = sorted({failure["message"] for failure in job_ledger["failed"].values()})
        raise MedialaneError(f"no copy could be made: {'; '.join(reasons)}", code="uniquify_failed")
    key, size, document = await asyncio.to_thread(build_archive, store, job_id, job_ledger)
    url, expires_at = sign(settings, key, key.rsplit("/", 1)[1])
    result = Uniquified(
        job_id=job_id, object_key=key, download_url=url, expires_at=expires_at, copies=len(job_ledger["made"]),
        files=len(job_ledger["made"]) + 1, size=size, failed=document["failed"], manifest=document,
        finished_at=utcnow(),
    )  # fmt: skip
    await delivery.publish(uniquified_topic, job_id, result)
    uniquify_table[job_id.encode()] = json.dumps({**job_ledger, "zipped": True}).encode()


def active_partitions(topic) -> set[int]:
    """The partitions of ``topic`` this worker owns (not the ones it keeps a standby table copy of)."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic.get_topic_name()}


# When each job's missing copies were last ordered again, so a stalled job is re-ordered once a period.
redriven: dict[str, float] = {}


@app.timer(interval=settings.uniquify_redrive_seconds)
async def redrive_stalled_copies() -> None:
    """Orders again the missing copies of this worker's jobs that have made no progress for a while.

    Orders are idempotent (a copy already in the ledger is ignored), so ordering the missing ones again is
    safe; a standby copy of the table is never acted on.
    """
    now = time.time()
    partitions = active_partitions(copies_topic)
    for key, value in list(uniquify_table.items()):
        job_ledger = json.loads(value)
        job_id = key.decode()
        if job_ledger.get("partition") not in partitions:
            continue
        since = max(job_ledger.get("progressed_at", now), redriven.get(job_id, 0))
        missing = ledger.stalled_tasks(job_ledger, now, since, settings.uniquify_redrive_seconds)
        if missing:
            redriven[job_id] = now
            job = UniquifyJob.model_validate(job_ledger["job"])
            for task in missing:
                await delivery.order_copy(job, task)


@app.agent(uniquified_topic)
async def store_uniquified(stream):
    await store_results(stream, Uniquified, Op.UNIQUIFY, lambda done: {
        "downloadUrl": done.download_url, "expiresAt": done.expires_at.isoformat(), "copies": done.copies,
        "files": done.files, "size": done.size, "failed": done.failed, "list": done.manifest["copies"],
    })  # fmt: skip


@app.task
async def follow_phash_index() -> None:
    await similar_images.run()


@app.agent(status_topic)
async def record_status(stream):
    async for _, status in delivery.messages(stream, StatusEvent):
        key = status.job_id.encode()
        current = status_table.get(key)
        view = fold(JobView.model_validate_json(current) if current is not None else None, status)
        status_table[key] = view.model_dump_json().encode()
        if webhooks.needs_order(view, status):
            await delivery.publish(webhooks_topic, view.job_id, WebhookEvent(event=webhooks.order(view)))


@app.agent(webhooks_topic)
async def deliver_webhooks(stream):
    """Folds orders and attempt outcomes into each job's delivery, and shows it in the job's status."""
    async for event, message in delivery.messages(stream, WebhookEvent):
        key = message.event.job_id.encode()
        current = webhooks_table.get(key)
        before = webhooks.Delivery.model_validate_json(current) if current is not None else None
        after = webhooks.fold(before, message.event, event.message.partition, settings, random.random())
        if after is None:
            continue
        webhooks_table[key] = after.model_dump_json().encode()
        await delivery.report(after.order.job_id, Status(after.order.document["status"]), webhook=after.state)


api_keys = KeyStore(store)
# How often each worker looks for webhook deliveries due: a retry is at most this late.
WEBHOOK_TICK_SECONDS = 1.0
# The attempt number each delivery was last POSTed for, so a POST whose outcome is not folded yet is not repeated.
webhook_posted: dict[str, int] = {}


@app.timer(interval=WEBHOOK_TICK_SECONDS)
async def retry_webhooks() -> None:
    """POSTs the due deliveries of this worker's partitions (a table's standby copy is never POSTed from)."""
    now = utcnow()
    partitions = active_partitions(webhooks_topic)
    due = []
    for value in list(webhooks_table.values()):
        job_delivery = webhooks.Delivery.model_validate_json(value)
        job_id, number = job_delivery.order.job_id, len(job_delivery.state.attempts) + 1
        if job_delivery.state.next_attempt_at is None:
            webhook_posted.pop(job_id, None)
        elif (job_delivery.partition in partitions and webhooks.due(job_delivery, now)
              and webhook_posted.get(job_id) != number):  # fmt: skip
            webhook_posted[job_id] = number
            due.append((job_delivery, number))
    await asyncio.gather(*(post_webhook(job_delivery, number) for job_delivery, number in due))


async def post_webhook(job_delivery: webhooks.Delivery, number: int) -> None:
    attempt = await webhooks.post(job_delivery.order, api_keys, settings)
    outcome = WebhookAttempted(job_id=job_delivery.order.job_id, number=number, attempt=attempt)
    await delivery.publish(webhooks_topic, outcome.job_id, WebhookEvent(event=outcome))


@app.page("/similar")
class SimilarImagesView(View):
    """This worker's replica answers alone: every replica holds every hash."""

    async def get(self, request: Request) -> Response:
        if not similar_images.ready.is_set():
            return self.json(error_body("the pHash index is still loading", "index_not_ready"), status=503)
        try:
            found = similar_images.replica.search(parse_query(request.query))
        except InvalidParameter as exc:
            return self.json(error_body(exc.message, exc.code), status=exc.status)
        return self.json(found.model_dump(mode="json"))


def error_body(message: str, code: str) -> dict:
    return ErrorBody(error=message, code=code).model_dump()


def recovering() -> bool:
    """Partitions are moving, or this worker's tables are still replaying their changelogs: its tables may
    hold an older state of a job, or none, and its streams are paused."""
    return app.rebalancing or not app.tables.recovery.completed.is_set()


@app.page("/ready")
class Readiness(View):
    """200 once this worker has its partitions and its tables; until then 503."""

    async def get(self, request: Request) -> Response:
        if recovering():
            return self.json(error_body("the worker is recovering its tables", "table_recovering"), status=503)
        return self.json({"ready": True})


@app.page("/jobs/{job_id}")
class JobLookup(View):
    @app.table_route(table=status_table, match_info="job_id")
    async def get(self, request: Request, job_id: str) -> Response:
        # 503 tells the caller to ask again rather than read a step back in time.
        if recovering():
            return self.json(error_body("the status table is recovering", "table_recovering"), status=503)
        document = status_table.get(job_id.encode())
        if document is None:
            return self.json(error_body(f"no job {job_id}", "job_not_found"), status=404)
        return self.bytes(document, content_type="application/json")

"""What flows into the sink: results to the object store, status events into the status table,
pHash records into this worker's replica of the near-duplicate index.

The worker's web server answers ``GET /jobs/{job_id}`` from the table (Faust routes the request to
the worker that owns the job's partition, so any worker can be asked) and ``GET /similar`` from
the replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from faust.web import Request, Response, View

from processors import delivery
from processors.app import app, metadata_topic, phash_topic, settings, status_table, status_topic
from schemas.errors import InvalidParameter
from schemas.messages import ErrorBody, JobView, Message, MetadataResult, Op, PHashRecord, Status, StatusEvent
from sink.objects import ObjectStore, result_key
from sink.similar import ReplicaFollower, parse_query
from sink.status import fold

M = TypeVar("M", bound=Message)

store = ObjectStore(settings)


similar_images = ReplicaFollower(settings, store)


async def store_results(stream, model: type[M], op: Op, document: Callable[[M], dict]) -> None:
    """Each op's result: to the object store (overwriting: a redelivery is harmless), then to the job."""
    async for event in stream.events():
        result = await delivery.decode(event, model)
        if result is None:
            continue
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
        mode="json", exclude={"job_id", "name", "hashed_at"}))  # fmt: skip


@app.task
async def follow_phash_index() -> None:
    await similar_images.run()


@app.agent(status_topic)
async def record_status(stream):
    async for event in stream.events():
        status = await delivery.decode(event, StatusEvent)
        if status is None:
            continue
        key = status.job_id.encode()
        current = status_table.get(key)
        view = fold(JobView.model_validate_json(current) if current is not None else None, status)
        status_table[key] = view.model_dump_json().encode()


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


@app.page("/jobs/{job_id}")
class JobLookup(View):
    @app.table_route(table=status_table, match_info="job_id")
    async def get(self, request: Request, job_id: str) -> Response:
        document = status_table.get(job_id.encode())
        if document is None:
            return self.json(error_body(f"no job {job_id}", "job_not_found"), status=404)
        return self.bytes(document, content_type="application/json")

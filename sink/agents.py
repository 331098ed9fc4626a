"""What flows into the sink: results to the object store, status events into the status table.

The worker's web server answers ``GET /jobs/{job_id}`` from the table; Faust routes the request to
the worker that owns the job's partition, so any worker can be asked.
"""

from __future__ import annotations

import asyncio

from faust.web import Request, Response, View

from processors import delivery
from processors.app import app, metadata_topic, settings, status_table, status_topic
from schemas.messages import JobView, MetadataResult, Op, Status, StatusEvent
from sink.objects import ObjectStore
from sink.status import fold

store = ObjectStore(settings)


@app.agent(metadata_topic)
async def store_metadata(stream):
    async for event in stream.events():
        result = await delivery.decode(event, MetadataResult)
        if result is None:
            continue
        try:
            # Overwriting the same key makes a redelivered result harmless.
            await asyncio.to_thread(store.put_json, result.object_key, result.metadata)
            await delivery.report(result.job_id, Status.PROCESSING, op=Op.METADATA, result=result.metadata)
        except Exception as exc:  # noqa: BLE001
            await delivery.report_failure(result.job_id, exc)


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


@app.page("/jobs/{job_id}")
class JobLookup(View):
    @app.table_route(table=status_table, match_info="job_id")
    async def get(self, request: Request, job_id: str) -> Response:
        document = status_table.get(job_id.encode())
        if document is None:
            return self.json({"success": False, "error": f"no job {job_id}", "code": "job_not_found"}, status=404)
        return self.bytes(document, content_type="application/json")

"""A rolling upgrade: a newer ingest's messages, with fields this version does not know, are processed, not
dead-lettered (every message model ignores unknown fields: schemas/messages.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

from conftest import SAMPLES, holding, known_job, produce
from test_pipeline import find_record, submit
from adapters.objects import original_key
from schemas.messages import Status, utcnow
from schemas.status_events import StatusEvent
from schemas.topics import JOBS, STATUS

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


async def test_a_message_with_fields_this_version_does_not_know_is_processed(api, settings):
    # A real request as ingest wrote it, reused under a new job id with its original still in the store.
    async with holding(settings, JOBS.name):
        template = await find_record(settings, JOBS.name, (await submit(api, CANON)).encode())
    job_id = str(uuid.uuid4())
    source = {**template["source"], "object_key": original_key(template["job_id"]), "checksum_v2": "later"}
    request = {**template, "job_id": job_id, "ops": ["metadata", "phash"], "source": source,
               "priority": "high", "options": {**template["options"], "future_option": True}}  # fmt: skip
    queued = StatusEvent(job_id=job_id, status=Status.QUEUED, at=utcnow(), ops=request["ops"])
    newer_queued = {**json.loads(queued.model_dump_json()), "region": "eu-1"}

    await produce(settings, STATUS.name, json.dumps(newer_queued).encode(), job_id.encode())
    await produce(settings, JOBS.name, json.dumps(request).encode(), job_id.encode())

    job = await known_job(settings, job_id)
    for _ in range(200):
        if job["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.1)
        job = await known_job(settings, job_id)
    assert job["status"] == "completed", job
    assert {op for op, outcome in job["outcomes"].items() if outcome["status"] == "completed"} == {"metadata", "phash"}

"""The worker's batching streams (adapters/batching_stream.py), on the status stage's agent: a batch holds what
came together, and an idle agent sleeps instead of looking every ``within`` seconds."""

from __future__ import annotations

import asyncio
from unittest.mock import patch

from adapters.batching_stream import BatchingStream
from schemas import tables
from schemas.job_state import queued
from schemas.messages import JobRecord, Op, new_job_id, utcnow
from tests.sink_context import app  # noqa: F401 - fixture

AGENT = "sink.status.record_status"


async def test_an_idle_batching_agent_sleeps_until_an_event_comes(app):
    waits = 0
    wait_for_stopped = BatchingStream.wait_for_stopped

    async def counted(self, *args, **kwargs):
        nonlocal waits
        waits += 1
        return await wait_for_stopped(self, *args, **kwargs)

    with patch.object(BatchingStream, "wait_for_stopped", counted):
        async with app.agents[AGENT].test_context() as agent:
            await asyncio.sleep(0.5)
            # Faust's take_events would have looked 50 times by now (every 10 ms).
            assert waits <= 2
            job_id = new_job_id()
            target = app.finished.count + 1
            event = queued(JobRecord(job_id=job_id, ops=[Op.METADATA], created_at=utcnow(), owner="k"))
            await agent.put(event.model_dump_json().encode(), key=job_id.encode(), partition=0)
            # The event that came wakes it: taken within its window, not at the next look.
            async with asyncio.timeout(2):
                await app.finished.reach(target)
    assert job_id.encode() in app.table_of(tables.STATUS)

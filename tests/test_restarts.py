"""Restarts lose nothing: the status table comes back from its changelog, the broker from the object store.

These tests stop and start the session's shared processes, and leave them running again.
"""

from __future__ import annotations

import asyncio

from conftest import poll_job
from test_pipeline import CANON, submit


async def test_killed_worker_loses_no_job(api, workers):
    job_ids = [await submit(api, CANON) for _ in range(6)]
    workers.children[0].kill()
    job_ids += [await submit(api, CANON) for _ in range(4)]
    await asyncio.to_thread(workers.start, 0)

    jobs = [await poll_job(api, job_id, timeout=60) for job_id in job_ids]

    assert [job["status"] for job in jobs] == ["completed"] * len(job_ids)


async def test_status_table_survives_restart_of_every_worker(api, workers):
    finished = await poll_job(api, await submit(api, CANON))
    assert finished["status"] == "completed"
    for child in workers.children:
        child.kill()
    await asyncio.to_thread(workers.start)

    async with api.get(f"/v1/jobs/{finished['job_id']}") as response:
        after = await response.json()

    assert after == finished


async def test_broker_restart_keeps_topics_and_statuses(api, stack, workers):
    finished = await poll_job(api, await submit(api, CANON))
    workers.stop()
    stack.broker.stop()
    await asyncio.to_thread(stack.start_broker)
    await asyncio.to_thread(workers.start)

    async with api.get(f"/v1/jobs/{finished['job_id']}") as response:
        after = await response.json()
    fresh = await poll_job(api, await submit(api, CANON), timeout=60)

    assert after == finished
    assert fresh["status"] == "completed"

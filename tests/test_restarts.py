"""Restarts lose nothing: the status table comes back from its changelog, the broker from the object store.

These tests stop and start the session's shared processes, and leave them running again. A killed
worker is restarted once the survivor has taken its jobs over: restarting it while the group is still
rebalancing around the dead member has been seen to leave a job idle on Tansu (closing note of issue 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io

from mode.utils.queues import FlowControlQueue
from PIL import Image

from conftest import poll_job
from adapters.worker_app import KeepBuffersFlowControl
from adapters.objects import ObjectStore
from sink.similar import SNAPSHOT_KEY
from test_pipeline import CANON, submit
from test_similar import hash_job
from test_uniquify_pipeline import NIKON, download_zip, images_form


async def test_worker_killed_mid_uniquify_still_gives_a_complete_zip(api, workers):
    with Image.open(NIKON) as im:
        out = io.BytesIO()
        im.convert("RGB").resize((2400, 1600)).save(out, "JPEG", quality=90)
    async with api.post("/v1/uniquify", data=images_form(("big.jpg", out.getvalue())), params={"copies": "16"}) as r:
        job_id = (await r.json())["job_id"]
    await asyncio.sleep(1.5)
    workers.children[0].kill()

    job = await poll_job(api, job_id, timeout=120)
    await asyncio.to_thread(workers.start, 0)

    assert job["status"] == "completed", job
    archive = await download_zip(api, job["result"]["uniquify"]["downloadUrl"])
    copies = [name for name in archive.namelist() if name.endswith(".jpg")]
    assert len(copies) == len(set(copies)) == 16
    assert len({hashlib.md5(archive.read(name)).hexdigest() for name in copies}) == 16


async def test_killed_worker_loses_no_job(api, workers):
    job_ids = [await submit(api, CANON) for _ in range(6)]
    workers.children[0].kill()
    job_ids += [await submit(api, CANON) for _ in range(4)]

    jobs = [await poll_job(api, job_id, timeout=60) for job_id in job_ids]
    await asyncio.to_thread(workers.start, 0)

    assert [job["status"] for job in jobs] == ["completed"] * len(job_ids)


async def test_status_table_and_index_survive_restart_of_every_worker(api, settings, workers):
    finished = await hash_job(api, CANON.read_bytes())
    phash = finished["result"]["phash"]["phash"]
    await asyncio.sleep(settings.phash_snapshot_seconds + 0.5)
    assert await asyncio.to_thread(ObjectStore(settings).get_bytes_or_none, SNAPSHOT_KEY) is not None
    for child in workers.children:
        child.kill()
    await asyncio.to_thread(workers.start)

    after = await first_answer(api, finished["job_id"])
    found = await similar_ids(api, phash, finished["job_id"])

    assert after == finished
    assert finished["job_id"] in found
    assert "restored from snapshot" in "".join(w.log_tail(400) for w in workers.children)


async def test_worker_restarted_at_once_loses_no_job(api, workers):
    job_ids = [await submit(api, CANON) for _ in range(4)]
    workers.children[1].kill()
    await asyncio.to_thread(workers.start, 1)
    job_ids += [await submit(api, CANON) for _ in range(4)]

    jobs = [await poll_job(api, job_id, timeout=60) for job_id in job_ids]

    assert [job["status"] for job in jobs] == ["completed"] * len(job_ids)


def test_resuming_running_flow_keeps_what_the_agents_were_handed():
    """After a rebalance Faust resumes flow once more after seeking the streams (adapters/worker_app.py)."""
    flow = KeepBuffersFlowControl()
    buffer = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()
    buffer.put_nowait("a record fetched while the streams were sought")
    flow.resume()
    assert buffer.qsize() == 1

    flow.suspend()
    flow.resume()
    assert buffer.qsize() == 0


async def first_answer(api, job_id: str) -> dict:
    """The first job document the API gives: 503 (the table is recovering) is asked again, but a stale
    document is not, so a test sees any step back in time."""
    async with asyncio.timeout(30):
        while True:
            async with api.get(f"/v1/jobs/{job_id}") as response:
                if response.status != 503:
                    assert response.status == 200, await response.text()
                    return await response.json()
            await asyncio.sleep(0.1)


async def similar_ids(api, phash: str, expected: str) -> set[str]:
    """Job ids at distance 0 once ``expected`` is among them; a replica answers 503 until it has caught up."""
    params = {"phash": phash, "max_distance": "0", "limit": "1000"}
    ids: set[str] = set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            while expected not in ids:
                async with api.get("/v1/similar", params=params) as response:
                    if response.status == 200:
                        ids = {r["job_id"] for r in (await response.json())["results"]}
                await asyncio.sleep(0.05)
    return ids


async def test_broker_restart_keeps_topics_and_statuses(api, stack, workers):
    finished = await poll_job(api, await submit(api, CANON))
    workers.stop()
    stack.broker.stop()
    await asyncio.to_thread(stack.start_broker)
    await asyncio.to_thread(workers.start)

    after = await first_answer(api, finished["job_id"])
    fresh = await poll_job(api, await submit(api, CANON), timeout=60)
    hashed = await hash_job(api, CANON.read_bytes())

    assert after == finished
    assert fresh["status"] == "completed"
    assert hashed["job_id"] in await similar_ids(api, hashed["result"]["phash"]["phash"], hashed["job_id"])

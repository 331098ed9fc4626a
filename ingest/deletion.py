"""``DELETE /v1/jobs/{job_id}``: a job's owner deletes it, and with it everything medialane keeps of it.

The objects go first (the original, the result documents and files, the request record and the listing
entry), then ``JobDeleted`` is published on ``medialane.deletions``: the status table drops the job, every
replica of the pHash index drops its hash, and subscribers delete what they kept. In that order a deletion
cut short by a crash is finished by asking again: the status table still knows the job until the event
is out. The answer waits (a bounded time) until the workers show the job gone, so a lookup or a search
right after it no longer finds the job.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from ingest import auth, keys
from ingest.status import owner_entry
from schemas.deletion import JobDeleted
from schemas.errors import MedialaneError
from schemas.messages import Op, utcnow
from schemas.topics import DELETIONS
from schemas.views import JobView

# How long the answer waits for the workers to show the deletion; past it, they show it soon after.
SETTLE_SECONDS = 10.0
SETTLE_POLL_SECONDS = 0.05


class JobRunning(MedialaneError):
    """Deleting a job whose stages still write its objects would leave the objects they write after it."""

    status, code = 409, "job_running"


async def delete_job(request: web.Request) -> web.Response:
    owner = request[auth.CALLER].key_id
    view = await request.app[keys.JOB_STATUS].lookup(request.match_info["job_id"], owner)
    if not view.status.terminal:
        raise JobRunning(f"job {view.job_id} is still {view.status}: delete it once it has ended")
    store = request.app[keys.STORE]
    listing = owner_entry(owner, view.created_at, view.job_id)
    deleted = await asyncio.to_thread(store.delete_job, view.job_id, listing)
    deletion = JobDeleted(job_id=view.job_id, owner=owner, deleted_at=utcnow())
    await (await request.app[keys.PUBLISHER].send(DELETIONS.name, view.job_id, deletion))
    request.app[keys.WATCHER].forget(view.job_id)
    await settled(request, view)
    return web.json_response({"success": True, "job_id": view.job_id, "deleted": True, "objects": len(deleted)})


async def settled(request: web.Request, view: JobView) -> None:
    """Waits until the status table no longer has the job and no worker's index finds its hash."""
    workers = request.app[keys.WORKERS]
    phash = view.result.get(Op.PHASH) or {}
    deadline = time.monotonic() + SETTLE_SECONDS
    pending = {f"{url}/jobs/{view.job_id}": None for url in workers.urls[:1]}
    if "phash" in phash:
        params = {"phash": phash["phash"], "max_distance": "0", "limit": "1000", "owner": view.owner}
        pending |= {f"{url}/similar": params for url in workers.urls}
    while True:
        for url, params in list(pending.items()):
            if await gone(workers.session, url, params, view.job_id):
                del pending[url]
        if not pending or time.monotonic() > deadline:
            return
        await asyncio.sleep(SETTLE_POLL_SECONDS)


async def gone(session: aiohttp.ClientSession, url: str, params: dict | None, job_id: str) -> bool:
    """Whether the worker page at ``url`` no longer shows the job; a worker that does not answer does not say.
    The status table shows it deleted, not merely absent: a job that ended a moment ago may not be in it yet,
    and would come into it after the answer."""
    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=2)) as response:
            body = await response.json() if response.status in (200, 404) else {}
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False
    if params is None:
        return response.status == 404 and body.get("code") == "job_deleted"
    return response.status == 200 and all(match["job_id"] != job_id for match in body["results"])

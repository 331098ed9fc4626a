"""``GET /v1/events``: the caller's job changes, pushed as Server-Sent Events (the web page's live rows).

One ``EventFeed`` per ingest process hands each event of the status topic, as the status watcher reads it
from the end, to the streams that follow its job: a stream follows the jobs named in ``?ids=`` (looked up
first, so a client that reconnects resumes them) and every job its key makes while it is open (a job's first
event names its owner). Each stream folds the events onto its own copy of the job with the status table's
``fold``, so it sends whole job documents that never step back. A stream lasts ``wait`` seconds; the client
reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from ingest import auth, keys
from ingest.status import JobStatus
from schemas.errors import InvalidParameter
from schemas.job_state import fold
from schemas.status_events import StatusStep
from schemas.views import JobView

MAX_IDS = 100
DEFAULT_WAIT = 300
MAX_WAIT = 3600
# Proxies close connections idle for a minute or so; a comment line keeps the stream alive.
KEEPALIVE_SECONDS = 15
# A stream that lags this many events behind is closed: its client reconnects and resumes by ids.
QUEUE_LIMIT = 1000


@dataclass(eq=False)
class Follower:
    owner: str
    ids: set[str]
    queue: asyncio.Queue[StatusStep | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class EventFeed:
    """Hands the status watcher's events (ingest/status.py) to the open streams."""

    def __init__(self) -> None:
        self.followers: set[Follower] = set()

    def hear(self, job_id: str, event: StatusStep) -> None:
        for follower in list(self.followers):
            if job_id in follower.ids or event.owner == follower.owner:
                follower.ids.add(job_id)
                self.deliver(follower, event)

    def deliver(self, follower: Follower, event: StatusStep) -> None:
        try:
            follower.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.followers.discard(follower)
            follower.queue.get_nowait()
            follower.queue.put_nowait(None)


FEED = web.AppKey("event_feed", EventFeed)


async def event_feed(app: web.Application):
    """cleanup_ctx: the feed runs while the app does."""
    app[FEED] = EventFeed()
    app[keys.WATCHER].listeners.append(app[FEED].hear)
    yield
    app[keys.WATCHER].listeners.remove(app[FEED].hear)


def parse_ids(raw: str | None) -> list[str]:
    ids = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if len(ids) > MAX_IDS:
        raise InvalidParameter(f"at most {MAX_IDS} job ids", code="too_many_ids", field="ids")
    return ids


def parse_stream_wait(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_WAIT
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidParameter(f"wait must be a number of seconds from 0 to {MAX_WAIT}", code="invalid_wait",
                               field="wait")  # fmt: skip
    return wait


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def job_events(request: web.Request) -> web.StreamResponse:
    ids = parse_ids(request.query.get("ids"))
    wait = parse_stream_wait(request.query.get("wait"))
    owner = request[auth.CALLER].key_id
    feed = request.app[FEED]
    # Following before looking up: an event folded twice is harmless, one missed between the two is not.
    follower = Follower(owner, set(ids))
    feed.followers.add(follower)
    try:
        views = {view.job_id: view for view in await asyncio.gather(
            *(request.app[keys.JOB_STATUS].lookup(job_id, owner) for job_id in ids))}  # fmt: skip
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})  # fmt: skip
        await response.prepare(request)
        # A client gone mid-stream is the normal end of a stream, not an error to report.
        with contextlib.suppress(ConnectionResetError):
            await response.write(sse("ready", {"following": sorted(views)}))
            for view in views.values():
                await response.write(sse("job", view.model_dump(mode="json")))
            await relay(response, follower, views, request.app[keys.JOB_STATUS], time.monotonic() + wait)
            await response.write_eof()
        return response
    finally:
        feed.followers.discard(follower)


async def relay(response: web.StreamResponse, follower: Follower, views: dict[str, JobView], jobs: JobStatus,
                deadline: float) -> None:  # fmt: skip
    """Sends each followed job's document as it changes, until ``deadline`` or the feed drops the stream."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = await asyncio.wait_for(follower.queue.get(), min(left, KEEPALIVE_SECONDS))
        except TimeoutError:
            await response.write(b": keepalive\n\n")
            continue
        if event is None:
            return
        before = views.get(event.job_id)
        view = views[event.job_id] = fold(before, event)
        if view != before:
            # Events name an op's result document; the job's view shows the document itself.
            view = views[event.job_id] = await jobs.with_documents(view)
            await response.write(sse("job", view.model_dump(mode="json")))

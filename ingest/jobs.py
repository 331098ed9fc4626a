"""``POST /v1/jobs``, ``GET /v1/jobs/{job_id}`` and ``GET /v1/jobs`` (the caller's jobs).

A submission is checked in a fixed order, each check with its own error code: the ``wait`` parameter,
the content type, the body, the ops, the webhook (these read by ingest/parsing.py), then the media (size,
emptiness, type sniffed from the bytes, truncation) or the URL (through the URL guard), and last the
caller's active-job cap. Only then is anything stored or published, so a refused job leaves nothing behind;
and a job refused after that (the broker or the store down: 503 with the code of what is down) is taken back:
it stops counting against the cap (ingest/auth.py) and its listing entry and objects are deleted.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from pydantic import BaseModel

from media.media_type import MediaType, check_media
from adapters.urlguard import check_url
from schemas.errors import EmptyFile
from schemas.job_state import queued_view
from schemas.messages import JobRecord, JobRequest, RemoteUrl, UniquifyJob, Upload, new_job_id, utcnow
from schemas.views import JobAccepted, JobPage, JobView
from ingest import auth, keys
from ingest.parsing import Submission, parse_limit, parse_wait, read_submission
from ingest.status import owner_entry
from adapters.objects import ObjectStore, original_key, request_key

log = logging.getLogger(__name__)
# A refused job's objects are deleted in the background, so the answer never waits on a store that may be the
# part that is down; tried again (1, 2, 4... 30 s apart) for this long, then left to the bucket's expiry.
TAKE_BACK_SECONDS = 600
TAKING_BACK: set[asyncio.Task] = set()


async def create_job(request: web.Request) -> web.Response:
    wait = parse_wait(request)
    return answer(await submit(request, await read_submission(request), wait))


async def submit(request: web.Request, submission: Submission, wait: float) -> JobView:
    """A checked submission as a job: what ``POST /v1/jobs`` does once it has read the request. The
    job's view as ``enqueue`` returns it, for adapters to answer in their own shape."""
    if submission.data is not None:
        mime = checked_media(submission.data).mime
    else:
        await check_url(submission.url, request.app[keys.SETTINGS])
    job_id = await admitted_job_id(request)
    if submission.data is not None:
        source = await store_upload(request, job_id, submission.data, mime)
    else:
        source = RemoteUrl(url=submission.url)
    job = JobRequest(
        job_id=job_id, ops=submission.ops, options=submission.options, name=submission.name, source=source,
        created_at=utcnow(), client_id=submission.callback.client_id, webhook_url=submission.callback.webhook_url,
    )  # fmt: skip
    return await enqueue(request, "medialane.jobs", job, wait)


async def admitted_job_id(request: web.Request) -> str:
    """A new job's id, counted against the caller's active jobs: refused (429) when the caller has as many
    running as it may. Called once the request is checked and before anything of the job is stored."""
    job_id = new_job_id()
    await request.app[keys.GUARD].admit_job(request[auth.CALLER], job_id, request.app[keys.JOB_STATUS])
    request[auth.ADMITTED] = job_id
    return job_id


async def enqueue(request: web.Request, topic: str, job: JobRequest | UniquifyJob, wait: float) -> JobView:
    """Records the job (its id from ``admitted_job_id``) as the caller's and publishes it as queued; its view
    once it ends within ``wait``, else as it stands."""
    caller = request[auth.CALLER]
    job = job.model_copy(update={"owner": caller.key_id})
    record = JobRecord.model_validate(job.model_dump())
    store, document = request.app[keys.STORE], job.model_dump(mode="json")
    watcher = request.app[keys.WATCHER]
    try:
        # The key's listing entry is the job's request record: one object, not two.
        await asyncio.to_thread(store.put_json, owner_entry(caller.key_id, job.created_at, job.job_id), document)
        if isinstance(job, UniquifyJob):
            # Read by job id alone: imgfactory's task list counts a uniquify job's sources and copies there.
            await asyncio.to_thread(store.put_json, request_key(job.job_id), document)
        watcher.remember_queued(queued_view(record))
        with watcher.watch(queued_view(record)) as finished:
            await request.app[keys.PUBLISHER].submit(record, topic, job)
            request.pop(auth.ADMITTED, None)
            view = await finished(wait) if wait else queued_view(record)
    except BaseException:
        if auth.ADMITTED in request:
            watcher.forget(job.job_id)
            task = asyncio.create_task(take_back(store, job))
            TAKING_BACK.add(task)
            task.add_done_callback(TAKING_BACK.discard)
        raise
    return await request.app[keys.JOB_STATUS].with_documents(view)


async def take_back(store: ObjectStore, job: JobRequest | UniquifyJob) -> None:
    """Deletes a refused job's listing entry, request record and originals, so nothing lists it or answers for it."""
    entry = owner_entry(job.owner, job.created_at, job.job_id)
    deadline, pause = asyncio.get_running_loop().time() + TAKE_BACK_SECONDS, 1.0
    while True:
        try:
            await asyncio.to_thread(store.delete_job, job.job_id, entry)
            return
        except Exception as exc:  # noqa: BLE001 - the store is down or failing: try again, then give up saying so
            if asyncio.get_running_loop().time() + pause > deadline:
                log.warning("refused job %s: its objects stay until they expire (%s)", job.job_id, exc)
                return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 30.0)


def json_of(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``model`` as a JSON response, serialised by pydantic in one step: a job's view with its documents
    took a tenth of ingest's CPU per job through ``model_dump`` and ``json.dumps``."""
    return web.Response(text=model.model_dump_json(), status=status, headers=headers, content_type="application/json")


def answer(view: JobView) -> web.Response:
    """200 with the job once it ended; else 202, and where to ask."""
    headers = {"Location": f"/v1/jobs/{view.job_id}"}
    if view.status.terminal:
        return json_of(view, 200, headers)
    return json_of(JobAccepted(job_id=view.job_id, status="queued"), 202, headers)


def checked_media(data: bytes) -> MediaType:
    if not data:
        raise EmptyFile("the uploaded file is empty")
    return check_media(data)


async def store_upload(request: web.Request, job_id: str, data: bytes, mime: str) -> Upload:
    upload = Upload.of(original_key(job_id), data, mime)
    await asyncio.to_thread(request.app[keys.STORE].put_bytes, upload.object_key, data, mime)
    return upload


async def get_job(request: web.Request) -> web.Response:
    view = await request.app[keys.JOB_STATUS].lookup(request.match_info["job_id"], request[auth.CALLER].key_id)
    return json_of(view)


async def list_jobs(request: web.Request) -> web.Response:
    limit = parse_limit(request.query.get("limit"))
    owner = request[auth.CALLER].key_id
    jobs, cursor = await request.app[keys.JOB_STATUS].owned(owner, limit, request.query.get("cursor"))
    page = JobPage(jobs=jobs, next_cursor=cursor)
    return json_of(page)

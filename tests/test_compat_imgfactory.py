"""imgfactory's drop-in routes (reference 004): the shape functions without Kafka, then the document's
own curl examples replayed against the running stack (host and token changed)."""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image

from conftest import SAMPLES
from ingest.compat_imgfactory import error_body, task, timestamp
from schemas.errors import InvalidParameter, MalformedRequest, MedialaneError, NotFound, RateLimited, Unauthorized
from schemas.messages import ErrorInfo, Op, Status
from schemas.views import JobView
from test_compat_media_metadata import client

NIKON = SAMPLES / "exif-samples" / "jpg" / "Nikon_D70.jpg"
CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
AUDIO = SAMPLES / "exiftool-formats" / "AAC.aac"
# The document's task examples, verbatim.
DOC_TASKS = [
    {"id": "467668e0-a17d-11ec-b2c3-a73bc049c5f6", "status": "PENDING", "files": "2", "copies": "1", "percent": None,
     "result": None, "created_at": "2022-03-11 23:53:16", "updated_at": "2022-03-11 23:53:16"},
    {"id": "7bab5ad0-a1e0-11ec-80a4-2d8155d1e15d", "status": "STARTED", "files": "2", "copies": "2", "percent": "20",
     "result": None, "created_at": "2022-03-12 11:43:26", "updated_at": "2022-03-12 11:43:30"},
    {"id": "d4ea7250-a1ea-11ec-9001-8bb6308e00c9", "status": "DONE", "files": "1", "copies": "1", "percent": "100",
     "result": "https://imgfactory.ru/storage/uploads/api/d4ea7250-a1ea-11ec-9001-8bb6308e00c9.zip",
     "created_at": "2022-03-12 12:57:30", "updated_at": "2022-03-12 12:57:33"},
]  # fmt: skip
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
AUTH_REQUIRED = {"type": "auth error", "detail": "Authorization required"}
INVALID_TOKEN = {"type": "auth error", "detail": "Invalid token"}
TASK_NOT_FOUND = {"type": "search error", "detail": "Task not found"}


def job_view(status: Status, percent: int, result: dict | None = None) -> JobView:
    created = datetime(2022, 3, 11, 23, 53, 16, 412000, tzinfo=UTC)
    return JobView(job_id=str(uuid.uuid4()), status=status, percent=percent, ops=[Op.UNIQUIFY], created_at=created,
                   updated_at=created + timedelta(seconds=3), result=result or {},
                   error=ErrorInfo(code="uniquify_failed", message="x") if status is Status.FAILED else None)  # fmt: skip


def request_record(files: int, copies: int) -> dict:
    sources = [{"object_key": f"k{i}", "name": f"{i}.jpg", "md5": "0" * 32} for i in range(files)]
    return {"params": {"copies": copies}, "sources": sources}


# --- shape functions ----------------------------------------------------------------------------


def test_tasks_have_the_documented_fields_and_types():
    url = "http://medialane/v1/downloads/t"
    cases = [
        (job_view(Status.QUEUED, 0), request_record(2, 1), DOC_TASKS[0]),
        (job_view(Status.PROCESSING, 20), request_record(2, 2), DOC_TASKS[1]),
        (job_view(Status.COMPLETED, 100, {Op.UNIQUIFY: {"downloadUrl": url}}), request_record(1, 1), DOC_TASKS[2]),
    ]
    for view, record, documented in cases:
        shown = task(view, record)
        assert set(shown) == set(documented)
        for key in ("status", "files", "copies", "percent"):
            assert shown[key] == documented[key], key
        assert shown["id"] == view.job_id
        assert shown["result"] == (url if view.status is Status.COMPLETED else None)
        assert (shown["created_at"], shown["updated_at"]) == ("2022-03-11 23:53:16", "2022-03-11 23:53:19")


def test_failed_task_is_failure_with_no_result():
    shown = task(job_view(Status.FAILED, 40), request_record(1, 5))
    assert (shown["status"], shown["percent"], shown["result"]) == ("FAILURE", "40", None)


def test_timestamps_are_utc():
    moment = datetime(2022, 3, 12, 15, 17, 35, tzinfo=UTC).astimezone(ZoneInfo("Europe/Moscow"))
    assert timestamp(moment) == "2022-03-12 15:17:35"


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (Unauthorized("missing API key", code="missing_api_key"), 401, AUTH_REQUIRED),
        (Unauthorized("invalid API key"), 401, INVALID_TOKEN),
        (MalformedRequest("no images", code="missing_file", field="images"), 400,
         {"type": "validation error", "detail": {"images": ["Поле images обязательно для заполнения."]}}),
        (MalformedRequest("no image", code="missing_file", field="image"), 400,
         {"type": "validation error", "detail": {"image": ["Поле image обязательно для заполнения."]}}),
        (InvalidParameter("validation.uuid", field="task_id"), 400,
         {"type": "validation error", "detail": {"task_id": ["validation.uuid"]}}),
        (InvalidParameter("copies: must be an integer", field="copies"), 400,
         {"type": "validation error", "detail": {"copies": ["copies: must be an integer"]}}),
        (NotFound("no job", code="job_not_found"), 400, TASK_NOT_FOUND),
        (RateLimited("slow down", retry_after=2), 429, {"type": "rate limit error", "detail": "slow down"}),
        (MedialaneError("boom"), 500, {"type": "server error", "detail": "boom"}),
    ],
)  # fmt: skip
def test_errors_in_the_documented_shape(error, status, body):
    assert error_body(error) == (status, body)


def test_upload_errors_without_a_field_name_images():
    error = MedialaneError("file is larger than the limit", code="file_too_large")
    error.status = 413
    assert error_body(error) == (400, {"type": "validation error", "detail": {"images": ["file is larger than the limit"]}})


# --- the document's examples against the running stack ---------------------------------------------


@pytest.fixture
def base_url(ingest) -> str:
    return str(ingest.make_url("/"))


def parts(field: str, *files: tuple[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, content in files:
        data.add_field(field, content, filename=name, content_type="image/jpeg")
    return data


def form(field: str, *paths) -> aiohttp.FormData:
    return parts(field, *((path.name, path.read_bytes()) for path in paths))


async def tasks(session: aiohttp.ClientSession, **query: str) -> tuple[int, dict]:
    """``GET /api/v1/tasks``; 503 (no worker could answer, e.g. while one is still loading) is retried, as
    clients are told to."""
    async with asyncio.timeout(30):
        while True:
            async with session.get("/api/v1/tasks", params=query) as response:
                if response.status != 503:
                    return response.status, await response.json()
            await asyncio.sleep(0.2)


async def done_task(session: aiohttp.ClientSession, task_id: str, timeout: float = 60) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            status, body = await tasks(session, task_id=task_id)
            assert status == 200 and body["type"] == "success" and len(body["detail"]) == 1, body
            shown = body["detail"][0]
            assert shown["status"] in ("PENDING", "STARTED", "DONE"), shown
            if shown["status"] == "DONE":
                return shown
            assert shown["result"] is None
            await asyncio.sleep(0.2)


async def test_example_async_unique_then_task(base_url, api_key):
    async with client(base_url, Authorization=api_key) as session:
        # curl --location --request POST 'https://imgfactory.ru/api/v1/async/unique?copies=1'
        #   --header 'Authorization: <token>' --form 'images[]=@"/folder/test.jpg"' --form 'images[]=@"/folder/another_test.jpg"'
        async with session.post("/api/v1/async/unique?copies=1", data=form("images[]", NIKON, CANON)) as response:
            body = await response.json()
        assert response.status == 200, body
        assert set(body) == {"type", "task_id"} and body["type"] == "success" and uuid.UUID(body["task_id"])
        # curl --location --request GET 'https://imgfactory.ru/api/v1/tasks?task_id=<id>' --header 'Authorization: <token>'
        shown = await done_task(session, body["task_id"])
    assert set(shown) == set(DOC_TASKS[2])
    assert (shown["id"], shown["status"], shown["files"], shown["copies"], shown["percent"]) == (
        body["task_id"], "DONE", "2", "1", "100"
    )
    assert TIMESTAMP.fullmatch(shown["created_at"]) and TIMESTAMP.fullmatch(shown["updated_at"])
    assert shown["updated_at"] >= shown["created_at"]
    # The result link is a public download, valid 24 h.
    async with aiohttp.ClientSession() as anonymous, anonymous.get(shown["result"]) as response:
        assert response.status == 200
        archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert sorted(name.endswith(".jpg") for name in archive.namelist()) == [False, True, True]


async def test_task_list_is_the_tokens_uniquify_jobs_oldest_first(base_url, api_key, other_key, api):
    async with client(base_url, Authorization=api_key) as session:
        ids = []
        for path in (NIKON, CANON):
            async with session.post("/api/v1/async/unique?copies=2&rotate=null", data=form("images[]", path)) as r:
                ids.append((await r.json())["task_id"])
        async with api.post("/v1/jobs", data=form("file", NIKON)) as response:
            metadata_job = (await response.json())["job_id"]
        status, body = await tasks(session)
    assert status == 200 and body["type"] == "success"
    listed = [shown["id"] for shown in body["detail"]]
    assert metadata_job not in listed
    assert listed.index(ids[0]) < listed.index(ids[1])
    assert all(set(shown) == set(DOC_TASKS[0]) for shown in body["detail"])
    async with client(base_url, Authorization=other_key) as other:
        status, body = await tasks(other)
        assert status == 200 and not set(ids) & {shown["id"] for shown in body["detail"]}
        assert await tasks(other, task_id=ids[0]) == (400, TASK_NOT_FOUND)
    async with client(base_url, Authorization=api_key) as session:
        assert await tasks(session, task_id=metadata_job) == (400, TASK_NOT_FOUND)


async def test_example_sync_single_unique(base_url, api_key):
    async with client(base_url, Authorization=api_key) as session:
        # curl --location --request POST 'https://imgfactory.ru/api/v1/sync/single/unique'
        #   --header 'Authorization: <token>' --form 'image=@"/folder/test.jpg"'
        async with session.post("/api/v1/sync/single/unique", data=form("image", NIKON)) as response:
            copy = await response.read()
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert copy != NIKON.read_bytes()
    assert Image.open(io.BytesIO(copy)).format == "JPEG"


async def test_documented_errors(base_url, api_key):
    routes = [
        ("post", "/api/v1/async/unique", lambda: form("images[]", NIKON)),
        ("post", "/api/v1/sync/single/unique", lambda: form("image", NIKON)),
        ("get", "/api/v1/tasks", lambda: None),
    ]
    async with client(base_url) as anonymous:
        for method, path, data in routes:
            async with anonymous.request(method, path, data=data()) as response:
                assert (response.status, await response.json()) == (401, AUTH_REQUIRED)
            async with anonymous.request(method, path, data=data(), headers={"Authorization": "wrong"}) as response:
                assert (response.status, await response.json()) == (401, INVALID_TOKEN)
    async with client(base_url, Authorization=api_key) as session:
        for path, field in (("/api/v1/async/unique", "images"), ("/api/v1/sync/single/unique", "image")):
            empty = aiohttp.FormData()
            empty.add_field("other", "x", content_type="text/plain")
            required = {"type": "validation error", "detail": {field: [f"Поле {field} обязательно для заполнения."]}}
            for data in (empty, None):
                async with session.post(path, data=data) as response:
                    assert (response.status, await response.json()) == (400, required)
        for path, field in (("/api/v1/async/unique", "images[]"), ("/api/v1/sync/single/unique", "image")):
            named = field.removesuffix("[]")
            for data in (form(field, AUDIO), parts(field, ("empty.jpg", b""))):
                async with session.post(path, data=data) as response:
                    body = await response.json()
                assert response.status == 400 and body["type"] == "validation error", body
                assert list(body["detail"]) == [named] and len(body["detail"][named]) == 1
        async with session.post("/api/v1/async/unique?copies=ten", data=form("images[]", NIKON)) as response:
            body = await response.json()
        assert response.status == 400 and body["type"] == "validation error" and list(body["detail"]) == ["copies"]
        crop = json.dumps({"enable": True, "side": 7})
        async with session.post("/api/v1/sync/single/unique", params={"crop": crop}, data=form("image", NIKON)) as r:
            body = await r.json()
        assert r.status == 400 and list(body["detail"]) == ["crop.side"]
        assert await tasks(session, task_id="41572e60") == (
            400, {"type": "validation error", "detail": {"task_id": ["validation.uuid"]}}
        )
        assert await tasks(session, task_id=str(uuid.uuid4())) == (400, TASK_NOT_FOUND)

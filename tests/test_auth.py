"""API keys (the four ways to send one, refusals, revocation), job and donor ownership, the caller's job
listing, per-key limits, access-log redaction, and the ``medialane keys`` command, on the real stack."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from compose.embedded import EmbeddedPipeline
from conftest import SAMPLES, poll_job
from ingest.accesslog import redact_url
from ingest.app import create_app
from ingest.status import job_id_of_entry, owner_entry
from schemas.messages import Op, Status
from schemas.status_events import StatusEvent
from adapters import apikeys
from adapters.apikeys import KeyStore, key_id_of
from adapters.objects import ObjectStore
from schemas.job_state import fold

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
ACCESS_LOG = "aiohttp.access"


def upload(path=CANON, field: str = "file") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(field, path.read_bytes(), filename=path.name, content_type="image/jpeg")
    return form


def new_key(settings, name: str) -> str:
    return KeyStore(ObjectStore(settings)).create(name)[0]


@contextlib.asynccontextmanager
async def client(base_url: str, **session_options):
    async with aiohttp.ClientSession(base_url=base_url, **session_options) as session:
        yield session


@pytest.fixture
def base_url(ingest) -> str:
    return str(ingest.make_url("/"))


async def submit(session: aiohttp.ClientSession, **params) -> str:
    async with session.post("/v1/jobs", data=upload(), params=params) as response:
        body = await response.json()
        assert response.status in (200, 202), body
        return body["job_id"]


async def expect_401(response: aiohttp.ClientResponse, code: str) -> dict:
    body = await response.json()
    assert response.status == 401, body
    assert body == {"success": False, "error": body["error"], "code": code}
    return body


@pytest.mark.parametrize(
    "how",
    [
        {"headers": {"X-API-Key": "{key}"}},
        {"headers": {"Authorization": "Bearer {key}"}},
        {"headers": {"Authorization": "{key}"}},
        {"params": {"key": "{key}"}},
    ],
    ids=["x-api-key", "bearer", "bare-authorization", "query"],
)
async def test_each_way_of_sending_the_key(base_url, api_key, how):
    options = {part: {name: value.format(key=api_key) for name, value in fields.items()} for part, fields in how.items()}
    async with client(base_url) as session, session.get("/v1/jobs", **options) as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["success"] is True


async def test_no_key(base_url):
    async with client(base_url) as session, session.get("/v1/jobs") as response:
        body = await expect_401(response, "missing_api_key")
    assert "X-API-Key" in body["error"]


@pytest.mark.parametrize("key", ["not-a-key", "ml_0123456789ab_" + "A" * 43, ""])
async def test_wrong_key(base_url, api_key, key):
    # An empty header counts as none; the others are refused alike, whether malformed or unknown.
    async with client(base_url, headers={"X-API-Key": key}) as session, session.get("/v1/jobs") as response:
        await expect_401(response, "invalid_api_key" if key else "missing_api_key")


async def test_a_known_key_id_with_a_wrong_secret(base_url, api_key):
    forged = api_key[:-43] + ("B" if api_key[-43] != "B" else "C") + api_key[-42:]
    async with client(base_url, headers={"X-API-Key": forged}) as session, session.get("/v1/jobs") as response:
        await expect_401(response, "invalid_api_key")


async def test_revoked_key_stops_working_within_the_cache_time(base_url, settings):
    raw = new_key(settings, "to-revoke")
    async with client(base_url, headers={"X-API-Key": raw}) as session:
        async with session.get("/v1/jobs") as response:
            assert response.status == 200
        KeyStore(ObjectStore(settings)).revoke(key_id_of(raw))
        await refused_within_cache_time(session, settings)


async def refused_within_cache_time(session, settings) -> None:
    """A revoked key answers 401 once the ingest service's key cache has let it go."""
    deadline = time.monotonic() + settings.api_key_cache_seconds + 2
    while True:
        async with session.get("/v1/jobs") as response:
            if response.status == 401 or time.monotonic() > deadline:
                await expect_401(response, "invalid_api_key")
                return
        await asyncio.sleep(0.2)


async def test_public_routes_need_no_key(base_url):
    async with client(base_url) as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(path) as response:
                assert response.status == 200, path
        async with session.get("/v1/downloads/not.signed") as response:
            assert (response.status, (await response.json())["code"]) == (404, "download_not_found")
        async with session.get("/no/such/route") as response:
            assert (response.status, (await response.json())["code"]) == (404, "route_not_found")


async def test_another_keys_job_is_not_found_exactly_as_an_unknown_one(api, base_url, other_key, api_key):
    job_id = await submit(api)
    mine = await poll_job(api, job_id)
    assert mine["owner"] == key_id_of(api_key)
    unknown = str(uuid.uuid4())
    async with client(base_url, headers={"X-API-Key": other_key}) as other:
        for path in ("/v1/jobs/{}", "/v1/jobs/{}/similar"):
            async with other.get(path.format(job_id)) as theirs, other.get(path.format(unknown)) as nobodys:
                assert theirs.status == nobodys.status == 404
                assert (await theirs.text()).replace(job_id, "ID") == (await nobodys.text()).replace(unknown, "ID")
        async with other.get("/v1/jobs", params={"limit": "100"}) as response:
            assert job_id not in [job["job_id"] for job in (await response.json())["jobs"]]


async def test_listing_is_newest_first_and_paged(base_url, settings):
    async with client(base_url, headers={"X-API-Key": new_key(settings, "lister")}) as session:
        submitted = [await submit(session) for _ in range(3)]
        async with session.get("/v1/jobs", params={"limit": "2"}) as response:
            first = await response.json()
        assert response.status == 200, first
        assert [job["job_id"] for job in first["jobs"]] == submitted[:0:-1]
        assert first["jobs"][0]["created_at"] > first["jobs"][1]["created_at"]
        async with session.get("/v1/jobs", params={"limit": "2", "cursor": first["next_cursor"]}) as response:
            second = await response.json()
        assert [job["job_id"] for job in second["jobs"]] == submitted[:1]
        assert second["next_cursor"] is None
        async with session.get("/v1/jobs") as response:
            assert [job["job_id"] for job in (await response.json())["jobs"]] == submitted[::-1]


@pytest.mark.parametrize(
    "params, code",
    [({"limit": "0"}, "invalid_limit"), ({"limit": "101"}, "invalid_limit"), ({"limit": "x"}, "invalid_limit"),
     ({"cursor": "../../keys"}, "invalid_cursor")],
)  # fmt: skip
async def test_bad_listing_parameters(api, params, code):
    async with api.get("/v1/jobs", params=params) as response:
        body = await response.json()
    assert (response.status, body["code"], body["field"]) == (422, code, next(iter(params)))


async def test_donors_belong_to_their_key(api, base_url, other_key):
    async with api.post("/v1/exif-donors", data=upload(field="images")) as response:
        donor = await response.json()
        assert response.status == 201, donor
    async with client(base_url, headers={"X-API-Key": other_key}) as other:
        async with other.get("/v1/exif-donors") as response:
            assert donor["id"] not in [d["id"] for d in (await response.json())["donors"]]
        params = {"exif": "3", "self_exif_id": str(donor["id"])}
        async with other.post("/v1/uniquify/single", data=upload(field="images"), params=params) as response:
            body = await response.json()
            assert (response.status, body["field"]) == (422, "self_exif_id")
        async with other.delete(f"/v1/exif-donors/{donor['id']}") as response:
            assert (response.status, (await response.json())["code"]) == (404, "donor_not_found")
    async with api.get("/v1/exif-donors") as response:
        assert donor["id"] in [d["id"] for d in (await response.json())["donors"]]
    async with api.delete(f"/v1/exif-donors/{donor['id']}") as response:
        assert response.status == 200


@contextlib.asynccontextmanager
async def ingest_with(settings, **limits):
    """A second ingest service on the session's stack, with its own limits."""
    server = TestServer(create_app(settings.model_copy(update=limits)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/"))
    finally:
        await server.close()


async def test_rate_limit_answers_429_with_retry_after(stack, workers, settings):
    async with ingest_with(settings, rate_limit_per_second=0.5, rate_limit_burst=3) as url:
        async with client(url, headers={"X-API-Key": new_key(settings, "rate")}) as session:
            statuses = []
            for _ in range(4):
                async with session.get("/v1/jobs") as response:
                    statuses.append(response.status)
                    body = await response.json()
            assert statuses == [200, 200, 200, 429]
            assert body["code"] == "rate_limited"
            assert response.headers["Retry-After"] == "2"
        # Another key has its own bucket.
        async with client(url, headers={"X-API-Key": new_key(settings, "rate-2")}) as session:
            async with session.get("/v1/jobs") as response:
                assert response.status == 200


RELEASE = web.AppKey("release", asyncio.Event)


async def held_sample(request: web.Request) -> web.StreamResponse:
    """A download that lasts until the test releases it, so its job stays active meanwhile."""
    await request.app[RELEASE].wait()
    return web.FileResponse(CANON)


# Every route that stores an upload: native jobs, uniquification, and the drop-in routes over them.
UPLOAD_ROUTES = [("/v1/jobs", "file"), ("/v1/uniquify", "images"), ("/api/v1/async/unique", "images[]"),
                 ("/api/v1/extract", "file"), ("/api/v1/remove", "file")]  # fmt: skip


async def test_active_job_cap(stack, workers, settings):
    app = web.Application()
    app[RELEASE] = release = asyncio.Event()
    app.router.add_get("/slow.jpg", held_sample)
    slow_server = TestServer(app, host="127.0.0.1")
    await slow_server.start_server()
    store = ObjectStore(settings)
    try:
        async with ingest_with(settings, max_active_jobs=1) as url:
            async with client(url, headers={"X-API-Key": new_key(settings, "capped")}) as session:
                async with session.post("/v1/jobs", json={"url": str(slow_server.make_url("/slow.jpg"))}) as response:
                    assert response.status == 202
                    slow_job = (await response.json())["job_id"]
                stored = set(await asyncio.to_thread(store.list, "originals/"))
                async with session.post("/v1/jobs", data=upload()) as response:
                    body = await response.json()
                assert (response.status, body["code"]) == (429, "too_many_active_jobs")
                assert int(response.headers["Retry-After"]) > 0
                for path, field in UPLOAD_ROUTES[1:]:
                    async with session.post(path, data=upload(field=field)) as response:
                        assert response.status == 429, (path, await response.text())
                # A refused job stores nothing (the slow job's worker stores its download meanwhile).
                added = set(await asyncio.to_thread(store.list, "originals/")) - stored
                assert {key for key in added if not key.startswith(f"originals/{slow_job}/")} == set()
                release.set()
                assert (await poll_job(session, slow_job))["status"] == "completed"
                await submit(session)
    finally:
        release.set()
        await slow_server.close()


async def test_the_key_query_parameter_is_no_routes_own_parameter(base_url, api_key):
    """Routes that refuse unknown query parameters (uniquification's, imgfactory's) leave ``key`` to the guard."""
    async with client(base_url) as session:
        async with session.post("/v1/uniquify", params={"key": api_key, "copies": "1"},
                                data=upload(field="images")) as response:  # fmt: skip
            assert response.status == 202, await response.text()
        for path in ("/v1/uniquify/single", "/api/v1/sync/single/unique"):
            async with session.post(path, params={"key": api_key, "seed": "7"}, data=upload(field="image")) as response:
                assert (response.status, response.content_type) == (200, "image/jpeg"), await response.text()
        async with session.post("/api/v1/async/unique", params={"key": api_key, "copies": "1"},
                                data=upload(field="images[]")) as response:  # fmt: skip
            body = await response.json()
        assert (response.status, body["type"]) == (200, "success"), body
        async with session.get("/api/v1/tasks", params={"key": api_key, "task_id": body["task_id"]}) as response:
            assert response.status == 200, await response.text()
        # A wrong key there is refused like anywhere else.
        async with session.post("/v1/uniquify", params={"key": "not-a-key"}, data=upload(field="images")) as response:
            await expect_401(response, "invalid_api_key")


def test_the_owner_survives_every_later_event():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    queued = StatusEvent(job_id="j", status=Status.QUEUED, at=at, ops=[Op.METADATA], owner="0123456789ab")
    done = StatusEvent(job_id="j", status=Status.PROCESSING, at=at, op=Op.METADATA, result={})
    assert fold(fold(None, queued), done).owner == "0123456789ab"
    # A stage's event folded before the queued one (a foreign producer's order) still gets the owner.
    assert fold(fold(None, done.model_copy(update={"op": None})), queued).owner == "0123456789ab"


def test_owner_entries_sort_newest_first():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    job_id = str(uuid.uuid4())
    older, newer = owner_entry("k", at, str(uuid.uuid4())), owner_entry("k", at + timedelta(microseconds=1), job_id)
    assert newer.startswith("owners/k/") and newer < older
    assert job_id_of_entry(newer) == job_id


def test_redact_url():
    url = "https://x.test/v1/jobs?key=ml_abc_secret&wait=3&X-Amz-Signature=deadbeef&token=t"
    assert redact_url(url) == "https://x.test/v1/jobs?key=REDACTED&wait=3&X-Amz-Signature=REDACTED&token=REDACTED"
    assert redact_url("/healthz") == "/healthz"


async def access_lines(caplog, count: int) -> list[str]:
    """The access log's lines once there are ``count`` (each is written after its response is sent)."""
    async with asyncio.timeout(5):
        while len(lines := [r.getMessage() for r in caplog.records if r.name == ACCESS_LOG]) < count:
            await asyncio.sleep(0.05)
    return lines


async def test_access_log_redacts_keys_and_download_tokens(base_url, api_key, caplog):
    caplog.set_level(logging.DEBUG)
    token = "eyJrIjoic2VjcmV0In0.c2lnbmF0dXJl"
    async with client(base_url) as session:
        async with session.get("/v1/jobs", params={"key": api_key, "limit": "1"}) as response:
            assert response.status == 200
        async with session.get(f"/v1/downloads/{token}") as response:
            assert response.status == 404
        async with session.get("/v1/jobs", headers={"Authorization": f"Bearer {api_key}",
                                                    "Referer": f"https://app.test/?key={api_key}"}) as response:  # fmt: skip
            assert response.status == 200
    lines = await access_lines(caplog, 3)
    assert "/v1/jobs?key=REDACTED&limit=1" in lines[0]
    assert "/v1/downloads/REDACTED" in lines[1]
    assert "?key=REDACTED" in lines[2]
    assert api_key not in caplog.text and token not in caplog.text


async def test_verify_compares_digests_in_constant_time(settings, monkeypatch):
    store = KeyStore(ObjectStore(settings))
    raw, key = store.create("constant-time")
    compared = []
    real = apikeys.hmac.compare_digest
    monkeypatch.setattr(apikeys.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert store.verify(raw) == key
    assert store.verify(raw[:-1] + ("x" if raw[-1] != "x" else "y")) is None
    assert compared[0] == (key.digest, key.digest)
    assert len(compared) == 2 and compared[1][1] == key.digest


async def cli(settings, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "compose.cli", "keys", *args, env=settings.env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_keys_command_creates_lists_and_revokes(base_url, settings):
    code, out = await cli(settings, "create", "from the command line")
    assert code == 0, out
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("The"))
    raw, key_id = fields["API key"].strip(), fields["key_id"].strip()
    assert key_id_of(raw) == key_id
    assert fields["webhook secret"].strip().startswith("whsec_")
    async with client(base_url, headers={"X-API-Key": raw}) as session:
        async with session.get("/v1/jobs") as response:
            assert response.status == 200
        code, out = await cli(settings, "list")
        assert code == 0 and raw not in out
        assert any(line.startswith(key_id) and "active" in line and "from the command line" in line for line in out.splitlines())
        assert (await cli(settings, "revoke", key_id))[0] == 0
        await refused_within_cache_time(session, settings)
    code, out = await cli(settings, "list")
    assert any(line.startswith(key_id) and "revoked" in line for line in out.splitlines())
    code, out = await cli(settings, "revoke", "0123456789ab")
    assert code == 1 and "no key" in out


def test_up_creates_a_first_key_only_in_an_empty_store(stack, settings):
    fresh = settings.model_copy(update={"s3_bucket": f"fresh-{uuid.uuid4().hex[:12]}"})
    ObjectStore(fresh).ensure_bucket()
    pipeline = EmbeddedPipeline(fresh)
    raw, key = pipeline.first_key()
    assert KeyStore(ObjectStore(fresh)).verify(raw) == key
    assert pipeline.first_key() is None

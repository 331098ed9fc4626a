"""pHash jobs and near-duplicate search through the HTTP API, on the session's real stack."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import pytest
from PIL import Image, ImageOps

from conftest import SAMPLES, poll_job
from media.phash import ALGORITHM, ALGORITHM_VERSION, phash_image
from adapters.apikeys import key_id_of
from test_rejections import expect_error

NIKON = SAMPLES / "exif-samples" / "jpg" / "Nikon_D70.jpg"
CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def variants(path) -> dict[str, bytes]:
    """An original and what near-duplicate search must tell apart from it and from each other."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        return {
            "original": path.read_bytes(),
            "copy": path.read_bytes(),
            "smaller": jpeg(im.resize((im.width * 3 // 4, im.height * 3 // 4))),
            "mirrored": jpeg(ImageOps.mirror(im)),
        }


async def hash_job(api, data: bytes, name: str = "image.jpg") -> dict:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="image/jpeg")
    form.add_field("ops", '["phash"]')
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
        assert response.status == 200, job
    assert job["status"] == "completed", job
    await searchable(api, job)
    return job


async def searchable(api, job: dict, timeout: float = 10) -> None:
    """Waits until the replicas have the job's hash: they follow medialane.phash on their own, a moment
    behind the job's end (docs/similar.md)."""
    params = {"phash": job["result"]["phash"]["phash"], "max_distance": "0", "limit": "1000"}
    async with asyncio.timeout(timeout):
        while True:
            async with api.get("/v1/similar", params=params) as response:
                if job["job_id"] in {r["job_id"] for r in (await response.json()).get("results", [])}:
                    return
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def indexed(api) -> dict[str, dict]:
    jobs = {}
    for label, data in variants(NIKON).items():
        jobs[label] = await hash_job(api, data, f"{label}.jpg")
    return jobs


async def test_phash_job_result(indexed):
    result = indexed["original"]["result"]["phash"]
    expected = phash_image(NIKON.read_bytes())
    assert result["phash"] == expected.hash
    assert result["mirrored_phash"] == expected.mirrored_hash
    assert (result["algorithm"], result["algorithm_version"]) == (ALGORITHM, ALGORITHM_VERSION)
    assert result["orientation_applied"] is True
    assert result["sha256"] == expected.sha256


async def test_metadata_and_phash_in_one_job(api):
    form = aiohttp.FormData()
    form.add_field("file", CANON.read_bytes(), filename="canon.jpg", content_type="image/jpeg")
    form.add_field("ops", '["metadata", "phash"]')
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
    assert job["status"] == "completed"
    assert set(job["result"]) == {"metadata", "phash"}
    assert job["result"]["phash"]["sha256"] == job["result"]["metadata"]["file"]["sha256"]


async def test_similar_to_a_job_finds_copies_sorted_by_distance(api, indexed):
    async with api.get(f"/v1/jobs/{indexed['original']['job_id']}/similar", params={"max_distance": "12"}) as response:
        body = await response.json()
        assert response.status == 200, body

    found = {r["job_id"]: r for r in body["results"]}
    copy, smaller = found[indexed["copy"]["job_id"]], found[indexed["smaller"]["job_id"]]
    assert indexed["original"]["job_id"] not in found
    assert (copy["distance"], copy["exact_duplicate"], copy["name"]) == (0, True, "copy.jpg")
    assert smaller["exact_duplicate"] is False and smaller["distance"] <= 12
    distances = [r["distance"] for r in body["results"]]
    assert distances == sorted(distances)


async def test_mirror_transform_matches_mirrored_copies(api, indexed):
    job_id = indexed["original"]["job_id"]
    mirrored_id = indexed["mirrored"]["job_id"]
    async with api.get(f"/v1/jobs/{job_id}/similar", params={"max_distance": "4"}) as response:
        plain = {r["job_id"] for r in (await response.json())["results"]}
    async with api.get(f"/v1/jobs/{job_id}/similar", params={"max_distance": "4", "transforms": "mirror"}) as response:
        with_mirror = {r["job_id"]: r for r in (await response.json())["results"]}

    assert mirrored_id not in plain
    assert with_mirror[mirrored_id]["mirrored"] is True


async def test_similar_by_hash_and_by_uploaded_image(api, indexed):
    phash = indexed["original"]["result"]["phash"]["phash"]
    async with api.get("/v1/similar", params={"phash": phash, "max_distance": "0"}) as response:
        by_hash = await response.json()
    form = aiohttp.FormData()
    form.add_field("file", NIKON.read_bytes(), filename="query.jpg", content_type="image/jpeg")
    async with api.post("/v1/similar", data=form, params={"max_distance": "0"}) as response:
        by_image = await response.json()

    ids = {indexed["original"]["job_id"], indexed["copy"]["job_id"]}
    assert {r["job_id"] for r in by_hash["results"]} >= ids
    assert {r["exact_duplicate"] for r in by_hash["results"]} == {None}
    assert {r["job_id"] for r in by_image["results"] if r["exact_duplicate"]} >= ids


async def test_every_worker_replica_sees_every_hash(api, api_key, settings, indexed):
    """Jobs land on both workers' partitions; each worker's replica alone must hold all of them."""
    jobs = [await hash_job(api, jpeg(Image.new("RGB", (64, 64), (i * 40, 0, 255 - i * 40)))) for i in range(6)]
    wanted = {job["job_id"] for job in jobs} | {job["job_id"] for job in indexed.values()}
    async with aiohttp.ClientSession() as session:
        for url in settings.worker_urls:
            # Each replica follows medialane.phash on its own, a moment behind the job's end (docs/similar.md):
            # `searchable` saw one of them have the last job's hash, this one may be a fetch behind.
            deadline = time.monotonic() + 10
            while True:
                seen = set()
                for job in [*jobs, *indexed.values()]:
                    params = {"phash": job["result"]["phash"]["phash"], "max_distance": "0", "limit": "1000",
                              "owner": key_id_of(api_key)}  # fmt: skip
                    async with session.get(f"{url}/similar", params=params) as response:
                        seen |= {r["job_id"] for r in (await response.json())["results"]}
                if wanted <= seen or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert wanted <= seen, url


async def test_a_key_finds_only_its_own_images(api, ingest, other_key, indexed):
    """The same image hashed by two keys: each key's searches, by hash, image and job, find only its own job,
    even when it names the other key as the owner in the query string."""
    async with aiohttp.ClientSession(base_url=str(ingest.make_url("/")), headers={"X-API-Key": other_key}) as other:
        theirs = await hash_job(other, NIKON.read_bytes(), "theirs.jpg")
        mine = {job["job_id"] for job in indexed.values()}
        phash = indexed["original"]["result"]["phash"]["phash"]
        params = {"phash": phash, "max_distance": "32", "limit": "1000", "owner": indexed["original"]["owner"]}
        async with other.get("/v1/similar", params=params) as response:
            by_hash = await response.json()
            assert response.status == 200, by_hash
        form = aiohttp.FormData()
        form.add_field("file", NIKON.read_bytes(), filename="query.jpg", content_type="image/jpeg")
        async with other.post("/v1/similar", data=form, params={"max_distance": "32", "limit": "1000"}) as response:
            by_image = await response.json()
        # The job is answered completed from the status watcher; its lookup may lag behind for a moment.
        await poll_job(other, theirs["job_id"])
        async with other.get(f"/v1/jobs/{theirs['job_id']}/similar", params=params) as response:
            by_job = await response.json()
        found = [r for body in (by_hash, by_image, by_job) for r in body["results"]]
        for job_id in {r["job_id"] for r in found}:
            async with other.get(f"/v1/jobs/{job_id}") as response:
                assert response.status == 200, f"{job_id} is not the other key's"
    assert {(r["job_id"], r["name"]) for r in by_hash["results"]} >= {(theirs["job_id"], "theirs.jpg")}
    assert theirs["job_id"] in {r["job_id"] for r in by_image["results"]}
    assert not mine & {r["job_id"] for r in found}
    async with api.get(f"/v1/jobs/{indexed['original']['job_id']}/similar", params=params) as response:
        found = {r["job_id"] for r in (await response.json())["results"]}
    assert indexed["copy"]["job_id"] in found and theirs["job_id"] not in found


async def test_a_completed_image_is_searchable_within_a_second(api):
    job = await hash_job(api, jpeg(Image.new("RGB", (80, 60), (10, 200, 30))))
    deadline = time.monotonic() + 1.0
    while True:
        params = {"phash": job["result"]["phash"]["phash"], "max_distance": "0", "limit": "1000"}
        async with api.get("/v1/similar", params=params) as response:
            if job["job_id"] in {r["job_id"] for r in (await response.json())["results"]}:
                break
        assert time.monotonic() < deadline, "not searchable within 1 s of completing"
        await asyncio.sleep(0.02)


async def test_corrupt_image_fails_its_job_and_is_not_indexed(api):
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(image, "PNG")
    corrupt = bytearray(image.getvalue())
    at = corrupt.index(b"IDAT")
    corrupt[at + 6 : at + 14] = bytes(8)
    form = aiohttp.FormData()
    form.add_field("file", bytes(corrupt), filename="broken.png", content_type="image/png")
    form.add_field("ops", '["phash"]')
    async with api.post("/v1/jobs", data=form) as response:
        job_id = (await response.json())["job_id"]

    job = await poll_job(api, job_id)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "corrupt_media"
    async with api.get(f"/v1/jobs/{job_id}/similar") as response:
        await expect_error(response, 422, "job_has_no_phash")


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("f06830ca9f1e3e90", "f06830ca9f1e3e90", 0), ("2d5ad3936d2e015b", "2d6ed293db36a4fb", 17),
     ("a4a65595ac94518b", "7838873e791f8400", 37)],
)  # fmt: skip
async def test_distance_of_imagekits_examples(api, a, b, distance):
    async with api.get("/v1/phash/distance", params={"a": a, "b": b}) as response:
        assert await response.json() == {"success": True, "a": a, "b": b, "distance": distance}


@pytest.mark.parametrize(
    ("params", "code"),
    [({"phash": "xyz"}, "invalid_phash"), ({"phash": "f06830ca9f1e3e9"}, "invalid_phash"), ({}, "invalid_phash"),
     ({"phash": "f06830ca9f1e3e90", "max_distance": "33"}, "invalid_distance"),
     ({"phash": "f06830ca9f1e3e90", "max_distance": "-1"}, "invalid_distance"),
     ({"phash": "f06830ca9f1e3e90", "limit": "0"}, "invalid_limit"),
     ({"phash": "f06830ca9f1e3e90", "transforms": "rotate"}, "invalid_transforms"),
     ({"phash": "f06830ca9f1e3e90", "transforms": "mirror"}, "invalid_transforms")],
)  # fmt: skip
async def test_similar_rejections(api, params, code):
    async with api.get("/v1/similar", params=params) as response:
        await expect_error(response, 422, code)


async def test_distance_rejects_a_bad_hash(api):
    async with api.get("/v1/phash/distance", params={"a": "f06830ca9f1e3e90", "b": "nope"}) as response:
        body = await expect_error(response, 422, "invalid_phash")
    assert body["error"].startswith("b:")


async def test_similar_to_an_unknown_job(api):
    async with api.get("/v1/jobs/6f1c1d1e-0000-4000-8000-000000000000/similar") as response:
        await expect_error(response, 404, "job_not_found")


async def test_similar_to_a_job_without_phash(api):
    form = aiohttp.FormData()
    form.add_field("file", CANON.read_bytes(), filename="canon.jpg", content_type="image/jpeg")
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
    async with api.get(f"/v1/jobs/{job['job_id']}/similar") as response:
        body = await expect_error(response, 422, "job_has_no_phash")
    assert "ops ['metadata']" in body["error"]

"""Uniquification through the HTTP API: fan-out over the workers, fan-in to a zip, progress, donors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
import zipfile

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer
from PIL import Image

from conftest import SAMPLES, known_job, poll_job, produce
from schemas.uniquify import UniquifyParams
from schemas.messages import CopyPlanned, CopyProgress, Op, Status, UniquifyJob, UniquifySource, new_job_id, utcnow
from schemas.status_events import StatusEvent
from adapters.objects import ObjectStore, source_key
from test_rejections import expect_error

NIKON = SAMPLES / "exif-samples" / "jpg" / "Nikon_D70.jpg"
CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


def images_form(*images: tuple[str, bytes], field: str = "images") -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, data in images:
        form.add_field(field, data, filename=name, content_type="image/jpeg")
    return form


def corrupt_png() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(image, "PNG")
    data = bytearray(image.getvalue())
    at = data.index(b"IDAT")
    data[at + 6 : at + 14] = bytes(8)
    return bytes(data)


async def uniquify(api, *images: tuple[str, bytes], **params: str) -> dict:
    async with api.post("/v1/uniquify", data=images_form(*images), params=params) as response:
        body = await response.json()
        assert response.status == 202, body
    return await poll_job(api, body["job_id"], timeout=90)


async def download_zip(api, url: str) -> zipfile.ZipFile:
    async with api.get(url[url.index("/v1/downloads/") :]) as response:
        assert response.status == 200
        return zipfile.ZipFile(io.BytesIO(await response.read()))


async def test_job_zips_every_copy_with_its_manifest(api):
    sources = [("nikon-d70.jpg", NIKON.read_bytes()), ("canon.jpg", CANON.read_bytes())]
    job = await uniquify(api, *sources, copies="3", names="2", folders="1", seed="7")

    assert job["status"] == "completed", job
    assert job["percent"] == 100
    result = job["result"]["uniquify"]
    assert (result["copies"], result["files"], result["failed"]) == (6, 7, [])
    archive = await download_zip(api, result["downloadUrl"])
    names = sorted(archive.namelist())
    assert names == sorted(["manifest.json", *(f"nikon-d70/nikon-d70_{i}.jpg" for i in (1, 2, 3)),
                            *(f"canon/canon_{i}.jpg" for i in (1, 2, 3))])  # fmt: skip
    md5s = {hashlib.md5(archive.read(name)).hexdigest() for name in names if name.endswith(".jpg")}
    assert len(md5s) == 6
    assert not md5s & {hashlib.md5(data).hexdigest() for _, data in sources}
    manifest = json.loads(archive.read("manifest.json"))
    assert {entry["md5"] for entry in manifest["copies"]} == md5s
    assert all("rotate" in entry["transforms"] and entry["phash_distance"] >= 0 for entry in manifest["copies"])
    assert [entry["path"] for entry in result["list"]] == [entry["path"] for entry in manifest["copies"]]


async def test_same_seed_same_copies(api):
    first = await uniquify(api, ("a.jpg", NIKON.read_bytes()), copies="2", seed="42")
    second = await uniquify(api, ("a.jpg", NIKON.read_bytes()), copies="2", seed="42")
    md5s = [[entry["md5"] for entry in job["result"]["uniquify"]["list"]] for job in (first, second)]
    assert md5s[0] == md5s[1]


async def test_percent_rises_with_the_copies(api, settings):
    consumer = AIOKafkaConsumer("medialane.status", bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="latest")  # fmt: skip
    await consumer.start()
    try:
        for tp in consumer.assignment():
            await consumer.position(tp)
        job = await uniquify(api, ("a.jpg", NIKON.read_bytes()), copies="4")
        percents = []
        async with asyncio.timeout(20):
            async for record in consumer:
                if record.key == job["job_id"].encode():
                    event = json.loads(record.value)
                    if event.get("percent") is not None:
                        percents.append(event["percent"])
                    if event.get("op") == "uniquify":
                        break
    finally:
        await consumer.stop()
    assert [p for p in percents if 0 < p < 100] == [25, 50, 75]


async def test_a_corrupt_source_fails_only_its_own_copies(api):
    job = await uniquify(api, ("good.jpg", NIKON.read_bytes()), ("broken.png", corrupt_png()), copies="2")

    assert job["status"] == "completed", job
    result = job["result"]["uniquify"]
    assert result["copies"] == 2
    assert [(f["source"], f["code"]) for f in result["failed"]] == [(1, "corrupt_media")] * 2
    archive = await download_zip(api, result["downloadUrl"])
    assert len([n for n in archive.namelist() if n.endswith(".jpg")]) == 2


async def test_a_job_whose_every_source_is_corrupt_fails(api):
    job = await uniquify(api, ("broken.png", corrupt_png()), copies="2")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "uniquify_failed"


async def test_single_answers_one_jpeg(api):
    async with api.post("/v1/uniquify/single", data=images_form(("a.jpg", NIKON.read_bytes()), field="image"),
                        params={"seed": "3"}) as response:  # fmt: skip
        body = await response.read()
        assert response.status == 200
        assert response.content_type == "image/jpeg"
    assert body != NIKON.read_bytes()
    assert Image.open(io.BytesIO(body)).format == "JPEG"


async def test_exif_donor_lifecycle_and_use(api):
    async with api.post("/v1/exif-donors", data=images_form(("donor.jpg", CANON.read_bytes()), field="file")) as r:
        donor = await r.json()
        assert r.status == 201, donor
    async with api.get("/v1/exif-donors") as response:
        assert donor["id"] in [d["id"] for d in (await response.json())["donors"]]

    job = await uniquify(api, ("a.jpg", NIKON.read_bytes()), copies="1", exif="3", self_exif_id=str(donor["id"]))
    archive = await download_zip(api, job["result"]["uniquify"]["downloadUrl"])
    copy = Image.open(io.BytesIO(archive.read(job["result"]["uniquify"]["list"][0]["path"])))
    assert copy.getexif().get(0x0110) == "Canon EOS 40D"

    async with api.delete(f"/v1/exif-donors/{donor['id']}") as response:
        assert response.status == 200
    async with api.delete(f"/v1/exif-donors/{donor['id']}") as response:
        await expect_error(response, 404, "donor_not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"copies": "0"}, "copies"), ({"copies": "101"}, "copies"), ({"names": "3"}, "names"),
     ({"rotate": "{not json"}, "rotate"), ({"crop": '{"enable": true, "side": 4}'}, "crop.side"),
     ({"exif": "3"}, "self_exif_id"), ({"exif": "3", "self_exif_id": "12345"}, "self_exif_id"),
     ({"flip": "9"}, "flip"), ({"colour": "1"}, "colour")],
)  # fmt: skip
async def test_bad_parameter_names_its_field(api, params, field):
    async with api.post("/v1/uniquify", data=images_form(("a.jpg", NIKON.read_bytes())), params=params) as response:
        body = await expect_error(response, 422, "invalid_parameter")
    assert body["field"] == field


async def test_non_image_is_refused(api):
    async with api.post("/v1/uniquify", data=images_form(("a.mov", (SAMPLES / "exiftool-formats" / "QuickTime.mov").read_bytes()))) as response:
        body = await expect_error(response, 422, "not_an_image")
    assert body["field"] == "images"


async def test_no_images(api):
    form = aiohttp.FormData()
    form.add_field("other", "x", content_type="text/plain")
    async with api.post("/v1/uniquify", data=form) as response:
        await expect_error(response, 400, "missing_file")


async def test_uniquify_is_not_an_op_of_v1_jobs(api):
    form = aiohttp.FormData()
    form.add_field("file", NIKON.read_bytes(), filename="a.jpg", content_type="image/jpeg")
    form.add_field("ops", '["uniquify"]')
    async with api.post("/v1/jobs", data=form) as response:
        body = await expect_error(response, 422, "unknown_op")
    assert "POST /v1/uniquify" in body["error"]


@pytest.mark.parametrize("path", ["/v1/uniquify", "/v1/uniquify/single", "/v1/exif-donors"])
async def test_a_body_that_is_not_multipart(api, path):
    async with api.post(path, json={"images": []}) as response:
        await expect_error(response, 415, "unsupported_content_type")


async def test_an_unreadable_copy_order_fails_its_job(api, settings):
    job_id = str(uuid.uuid4())
    await produce(settings, "medialane.uniquify.tasks", b"poison order", f"{job_id}/0/1/0".encode())
    job = await known_job(settings, job_id)
    assert (job["status"], job["error"]["code"]) == ("failed", "invalid_message")


async def test_a_job_whose_copy_orders_were_lost_is_finished_by_the_redrive(settings):
    """Only the plan reaches the fan-in, as if a crash had lost every order: the missing copies are ordered
    again once the job has made no progress for ``uniquify_redrive_seconds``."""
    job_id = new_job_id()
    source = NIKON.read_bytes()
    await asyncio.to_thread(ObjectStore(settings).put_bytes, source_key(job_id, 0), source, "image/jpeg")
    job = UniquifyJob(
        job_id=job_id, params=UniquifyParams(copies=3).model_dump(mode="json"), seed=11, created_at=utcnow(),
        sources=[UniquifySource(object_key=source_key(job_id, 0), name="nikon.jpg", md5=hashlib.md5(source).hexdigest())],
    )  # fmt: skip
    queued = StatusEvent(job_id=job_id, status=Status.QUEUED, at=utcnow(), ops=[Op.UNIQUIFY])
    await produce(settings, "medialane.status", queued.model_dump_json().encode(), job_id.encode())
    planned = CopyProgress(event=CopyPlanned(job_id=job_id, expected=3, job=job))
    await produce(settings, "medialane.uniquify.copies", planned.model_dump_json().encode(), job_id.encode())

    async with asyncio.timeout(60):
        while (finished := await known_job(settings, job_id))["status"] != "completed":
            await asyncio.sleep(0.2)
    assert finished["result"]["uniquify"]["copies"] == 3

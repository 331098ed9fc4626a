"""The strip op through the HTTP API: a cleaned copy behind an expiring link, the picture untouched."""

from __future__ import annotations

import io
import json
import subprocess

import aiohttp
from PIL import Image, ImageOps

from conftest import SAMPLES
from test_rejections import expect_error

GPS_JPEG = SAMPLES / "exif-samples" / "jpg" / "gps" / "DSCN0012.jpg"
ROTATED = SAMPLES / "exif-samples" / "jpg" / "orientation" / "landscape_6.jpg"


async def strip_job(api, path, **fields: str) -> dict:
    form = aiohttp.FormData()
    form.add_field("file", path.read_bytes(), filename=path.name, content_type="image/jpeg")
    form.add_field("ops", '["strip"]')
    for name, value in fields.items():
        form.add_field(name, value)
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        job = await response.json()
        assert response.status == 200, job
    return job


async def fetch(api, url: str) -> bytes:
    async with api.get(url[url.index("/v1/downloads/") :]) as response:
        assert response.status == 200
        return await response.read()


def exif_groups(data: bytes) -> dict:
    out = subprocess.run(["exiftool", "-j", "-G1", "-"], input=data, capture_output=True, check=True)
    return json.loads(out.stdout)[0]


async def test_cleaned_copy_has_no_metadata_and_the_same_pixels(api):
    job = await strip_job(api, GPS_JPEG)

    assert job["status"] == "completed", job
    result = job["result"]["strip"]
    assert {"EXIF", "GPS"} <= set(result["removed"])
    cleaned = await fetch(api, result["downloadUrl"])
    assert result["size"] == len(cleaned)
    tags = exif_groups(cleaned)
    assert not [key for key in tags if key.split(":")[0] in ("GPS", "ExifIFD", "IFD1", "XMP-x", "IPTC", "MakerNotes")]
    with Image.open(GPS_JPEG) as before, Image.open(io.BytesIO(cleaned)) as after:
        assert before.tobytes() == after.tobytes()


async def test_oriented_image_still_displays_upright_by_default(api):
    job = await strip_job(api, ROTATED)
    cleaned = await fetch(api, job["result"]["strip"]["downloadUrl"])
    with Image.open(ROTATED) as before, Image.open(io.BytesIO(cleaned)) as after:
        assert ImageOps.exif_transpose(before).tobytes() == ImageOps.exif_transpose(after).tobytes()
        assert after.getexif().get(0x0112) == 6
    assert "Orientation" in job["result"]["strip"]["kept"]


async def test_keep_nothing_drops_orientation_too(api):
    job = await strip_job(api, ROTATED, keep="[]")
    cleaned = await fetch(api, job["result"]["strip"]["downloadUrl"])
    with Image.open(io.BytesIO(cleaned)) as after:
        assert 0x0112 not in after.getexif()
    assert job["result"]["strip"]["kept"] == []


async def test_unknown_keep_item_is_refused(api):
    form = aiohttp.FormData()
    form.add_field("file", GPS_JPEG.read_bytes(), filename="a.jpg", content_type="image/jpeg")
    form.add_field("ops", '["strip"]')
    form.add_field("keep", '["gps"]')
    async with api.post("/v1/jobs", data=form) as response:
        await expect_error(response, 422, "invalid_keep")


async def test_a_format_that_cannot_be_cleaned_fails_clearly(api):
    form = aiohttp.FormData()
    form.add_field("file", (SAMPLES / "exiftool-formats" / "RIFF.wav").read_bytes(), filename="a.wav")
    form.add_field("ops", '["strip"]')
    async with api.post("/v1/jobs", data=form, params={"wait": "30"}) as response:
        body = await response.json()
    # No op of the job takes a WAV: refused at once, saying what strip takes (issue 18's one rule for types).
    assert (response.status, body["code"]) == (415, "unsupported_media")
    assert "strip takes" in body["error"]

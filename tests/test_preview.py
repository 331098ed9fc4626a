"""``GET /v1/jobs/{job_id}/preview``: size, orientation, kept in the store, and only for the job's key."""

from __future__ import annotations

import asyncio
import io

import aiohttp
from PIL import Image, ImageStat

from adapters.objects import ObjectStore, preview_key
from conftest import SAMPLES
from test_pipeline import submit
from test_rejections import expect_error

# Stored 450 x 600 with EXIF orientation 6: displayed as a 600 x 450 landscape.
ROTATED = SAMPLES / "exif-samples" / "jpg" / "orientation" / "landscape_6.jpg"
AUDIO = SAMPLES / "exiftool-formats" / "AAC.aac"


async def preview(api, job_id: str) -> bytes:
    async with api.get(f"/v1/jobs/{job_id}/preview") as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "image/jpeg"
        return await response.read()


async def test_preview_is_small_upright_and_without_metadata(api):
    job_id = await submit(api, ROTATED)

    image = Image.open(io.BytesIO(await preview(api, job_id)))

    assert image.format == "JPEG"
    assert image.size == (512, 384)
    assert not image.getexif()
    # The sample's sky is at the top once the orientation is applied: the top row is brighter than the bottom.
    grey = image.convert("L")
    top, bottom = (ImageStat.Stat(grey.crop((0, y, 512, y + 20))).mean[0] for y in (0, 364))
    assert top > bottom + 40


async def test_preview_is_made_once_then_read_back_from_the_store(api, settings):
    job_id = await submit(api, ROTATED)
    store = ObjectStore(settings)
    assert await asyncio.to_thread(store.get_bytes_or_none, preview_key(job_id)) is None

    first = await preview(api, job_id)

    assert await asyncio.to_thread(store.get_bytes, preview_key(job_id)) == first
    # Replaced in the store, the object is what the next request answers: it is not rendered again.
    marker = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(marker, "JPEG")
    await asyncio.to_thread(store.put_bytes, preview_key(job_id), marker.getvalue(), "image/jpeg")
    assert await preview(api, job_id) == marker.getvalue()


async def test_another_keys_job_has_no_preview(api, ingest, other_key):
    job_id = await submit(api, ROTATED)
    async with aiohttp.ClientSession(headers={"X-API-Key": other_key}) as other:
        async with other.get(ingest.make_url(f"/v1/jobs/{job_id}/preview")) as response:
            await expect_error(response, 404, "job_not_found")


async def test_a_file_that_is_no_image_has_no_preview(api):
    job_id = await submit(api, AUDIO)
    async with api.get(f"/v1/jobs/{job_id}/preview") as response:
        await expect_error(response, 422, "preview_unsupported")

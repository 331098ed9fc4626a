"""exiftools.com's API (reference 000): shapes from native documents, then the document's own curl and
Python examples replayed against the running server (host and key changed), field by field."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import pytest
from PIL import Image

from conftest import SAMPLES
from ingest.compat_exiftools import extraction, metadata_groups, removal, render_error
from adapters.exiftool import ExifTool
from media.metadata import extract_metadata
from schemas.errors import CorruptMedia, MedialaneError, NotFound, RateLimited, Unauthorized
from schemas.views import JobView
from schemas.settings import Settings

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
GPS = SAMPLES / "exif-samples" / "jpg" / "gps" / "DSCN0029.jpg"
IPTC = SAMPLES / "exif-samples" / "jpg" / "xmp" / "BlueSquare.jpg"
INVALID_KEY = {"success": False, "error": "Invalid API key"}
NO_EXTRACTION = {"success": False, "error": "No extraction found with the given UUID."}


@pytest.fixture(scope="module")
def exiftool() -> Iterator[ExifTool]:
    with ExifTool(shutil.which(Settings().exiftool_path) or "exiftool", 20) as tool:
        yield tool


def document(exiftool: ExifTool, path) -> dict:
    return extract_metadata(path.read_bytes(), path.name, exiftool)


def view(status: str, ops: list[str], result: dict | None = None, error: dict | None = None) -> JobView:
    now = datetime.now(UTC)
    return JobView(job_id=str(uuid.uuid4()), status=status, percent=100, ops=ops, created_at=now, updated_at=now,
                   result=result or {}, error=error)  # fmt: skip


def test_metadata_groups_are_exiftool_printed_values(exiftool):
    groups = metadata_groups(document(exiftool, CANON))
    # The document's example: exif tags printed as exiftool prints them, all strings.
    assert groups["exif"]["Make"] == "Canon"
    assert groups["exif"]["Model"] == "Canon EOS 40D"
    assert groups["exif"]["DateTimeOriginal"] == "2008:05:30 15:56:01"
    assert groups["exif"]["ExposureTime"] == "1/160"
    assert groups["exif"]["FNumber"] == "7.1"
    assert groups["exif"]["ISO"] == "100"
    assert all(isinstance(value, str) for value in groups["exif"].values())
    assert list(groups["File"])[:3] == ["Name", "Size", "Type"]
    assert groups["File"]["Name"] == "Canon_40D.jpg"
    assert groups["File"]["Size"] == CANON.stat().st_size
    assert groups["File"]["Type"] == "image/jpeg"
    assert groups["File"]["ImageWidth"] == "100"
    assert groups["JFIF"]["JFIFVersion"] == "1.01"
    assert "iptc" not in groups and "ifds" not in groups


def test_iptc_and_gps_groups(exiftool):
    groups = metadata_groups(document(exiftool, IPTC))
    assert groups["iptc"]["ObjectName"] == "Blue Square Test File - .jpg"
    assert groups["xmp"]["Title"] == "Blue Square Test File - .jpg"
    exif = metadata_groups(document(exiftool, GPS))["exif"]
    assert exif["GPSLatitudeRef"] == "North"
    assert exif["GPSLatitude"].startswith("43 deg 28'")


def test_first_directory_wins_a_shared_tag_name(exiftool):
    # IFD0 and the thumbnail's IFD1 both have XResolution; the image's is the one shown.
    doc = document(exiftool, CANON)
    doc["exif"]["IFD1"]["XResolution"] = {"value": 1, "text": "1"}
    assert metadata_groups(doc)["exif"]["XResolution"] == "72"


def test_extraction_shapes(exiftool):
    doc = document(exiftool, CANON)
    done = view("completed", ["metadata"], {"metadata": doc})
    body = extraction(done, "ignored.jpg")
    assert body["success"] is True and body["status"] == "completed" and body["uuid"] == done.job_id
    assert body["fileName"] == body["filename"] == "Canon_40D.jpg"
    assert body["metadata"] == metadata_groups(doc)
    processing = view("processing", ["metadata"])
    assert extraction(processing, "a.jpg") == {"success": True, "status": "processing", "fileName": "a.jpg",
                                               "filename": "a.jpg", "uuid": processing.job_id}  # fmt: skip
    with pytest.raises(MedialaneError) as failed:
        extraction(view("failed", ["metadata"], error={"code": "corrupt_media", "message": "truncated"}), "a.jpg")
    assert (failed.value.status, failed.value.message) == (422, "truncated")


def test_removal_shape():
    done = view("completed", ["strip"], {"strip": {"downloadUrl": "http://x/v1/downloads/t"}})
    assert removal(done, "https://media.example") == {
        "success": True, "status": "completed", "uuid": done.job_id,
        "downloadUrl": f"https://media.example/download-cleaned/{done.job_id}",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (Unauthorized("missing API key", code="missing_api_key"), 401, INVALID_KEY),
        (NotFound("No extraction found with the given UUID."), 404, NO_EXTRACTION),
        (CorruptMedia("the image cannot be read"), 400, {"success": False, "error": "the image cannot be read"}),
        (MedialaneError("exiftool crashed"), 500,
         {"success": False, "error": "An error occurred while processing your request"}),
        (RateLimited("slow down", retry_after=2), 429, {"success": False, "error": "slow down"}),
    ],
)
def test_errors_in_the_documents_shape(error, status, body):
    response = render_error(error)
    assert response.status == status
    assert json.loads(response.body) == body


# The document's examples, replayed. Its sample is "image.jpg": the Canon 40D under that name.


def image_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", CANON.read_bytes(), filename="image.jpg", content_type="image/jpeg")
    return form


@pytest.fixture
async def anonymous(ingest) -> Iterator[aiohttp.ClientSession]:
    """A client that sends no X-API-Key header: the examples that pass ?key=, and the public GET."""
    async with aiohttp.ClientSession(base_url=str(ingest.make_url("/"))) as session:
        yield session


def assert_extraction(body: dict, name: str) -> None:
    assert body["success"] is True
    assert body["status"] == "completed"
    assert body["fileName"] == name
    uuid.UUID(body["uuid"])
    exif = body["metadata"]["exif"]
    assert (exif["Make"], exif["Model"], exif["ExposureTime"], exif["FNumber"], exif["ISO"]) == (
        "Canon", "Canon EOS 40D", "1/160", "7.1", "100")  # fmt: skip
    assert exif["DateTimeOriginal"] == "2008:05:30 15:56:01"
    assert body["metadata"]["File"]["Size"] == CANON.stat().st_size
    assert body["metadata"]["File"]["Type"] == "image/jpeg"


async def test_file_upload_using_header(api):
    # curl -X POST .../api/v1/extract -H "X-API-Key: ..." -F "file=@image.jpg"
    async with api.post("/api/v1/extract", data=image_form()) as response:
        assert response.status == 200
        body = await response.json()
    assert_extraction(body, "image.jpg")
    assert body["metadata"]["File"]["Name"] == "image.jpg"


async def test_file_upload_using_query_parameter(anonymous, api_key):
    # curl -X POST ".../api/v1/extract?key=..." -F "file=@image.jpg"
    async with anonymous.post("/api/v1/extract", params={"key": api_key}, data=image_form()) as response:
        assert response.status == 200
        assert_extraction(await response.json(), "image.jpg")


async def test_url_processing_using_header(api, file_server):
    # requests.post(url, headers={"X-API-Key": ..., "Content-Type": "application/json"}, json={"url": ...})
    url = f"{file_server}/samples/exif-samples/jpg/Canon_40D.jpg"
    async with api.post("/api/v1/extract", json={"url": url}) as response:
        assert response.status == 200
        assert_extraction(await response.json(), "Canon_40D.jpg")


async def test_url_processing_using_query_parameters(anonymous, api_key, file_server):
    # "Can be passed as POST body or query string parameter": the key and the url in the query.
    url = f"{file_server}/samples/exif-samples/jpg/Canon_40D.jpg"
    async with anonymous.post("/api/v1/extract", params={"key": api_key}, json={"url": url}) as response:
        assert response.status == 200
        assert_extraction(await response.json(), "Canon_40D.jpg")
    async with anonymous.post("/api/v1/extract", params={"key": api_key, "url": url}) as response:
        assert response.status == 200
        assert_extraction(await response.json(), "Canon_40D.jpg")


async def completed_extraction(session: aiohttp.ClientSession, job_id: str) -> dict:
    """The extraction once the status table has folded the completion the POST already answered with."""
    async with asyncio.timeout(10):
        while True:
            async with session.get(f"/api/v1/extract/{job_id}") as response:
                assert response.status == 200
                body = await response.json()
            if body["status"] == "completed":
                return body
            assert body["status"] in ("queued", "processing")
            await asyncio.sleep(0.05)


async def test_get_results_by_uuid_needs_no_key(api, anonymous):
    async with api.post("/api/v1/extract", data=image_form()) as response:
        posted = await response.json()
    # curl -X GET .../api/v1/extract/<uuid>   (no API key)
    body = await completed_extraction(anonymous, posted["uuid"])
    assert body["filename"] == "image.jpg"
    assert body["metadata"] == posted["metadata"]
    assert_extraction(body, "image.jpg")
    # With a key, the owner's own extraction is found too.
    async with api.get(f"/api/v1/extract/{posted['uuid']}") as response:
        assert response.status == 200


async def test_get_results_errors(api, anonymous, other_key):
    async with api.post("/api/v1/extract", data=image_form()) as response:
        job_id = (await response.json())["uuid"]
    async with anonymous.get(f"/api/v1/extract/{uuid.uuid4()}") as response:
        assert (response.status, await response.json()) == (404, NO_EXTRACTION)
    async with anonymous.get("/api/v1/extract/not-a-uuid") as response:
        assert (response.status, await response.json()) == (404, NO_EXTRACTION)
    # "Only returned when an invalid API key is provided."
    async with anonymous.get(f"/api/v1/extract/{job_id}", headers={"X-API-Key": "wrong"}) as response:
        assert (response.status, await response.json()) == (401, INVALID_KEY)
    # "If provided, results are filtered to the authenticated user's extractions."
    async with anonymous.get(f"/api/v1/extract/{job_id}", params={"key": other_key}) as response:
        assert (response.status, await response.json()) == (404, NO_EXTRACTION)


async def test_extract_errors(api, anonymous, api_key):
    async with anonymous.post("/api/v1/extract", data=image_form()) as response:
        assert (response.status, await response.json()) == (401, INVALID_KEY)
    async with anonymous.post("/api/v1/extract", params={"key": "YOUR_API_KEY_HERE"}, data=image_form()) as response:
        assert (response.status, await response.json()) == (401, INVALID_KEY)
    async with api.post("/api/v1/extract", json={"file": "binary_file_data"}) as response:
        assert response.status == 400
        body = await response.json()
    assert body["success"] is False and "url" in body["error"] and set(body) == {"success", "error"}
    async with api.post("/api/v1/extract", data=b"not json", headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
    form = aiohttp.FormData()
    # Bytes of no format exiftool knows: text is metadata too (exiftool reads it), these are not.
    form.add_field("file", bytes(range(256)) * 4, filename="notes.bin", content_type="application/octet-stream")
    async with api.post("/api/v1/extract", data=form) as response:
        assert response.status == 400
        assert (await response.json())["success"] is False
    async with api.post("/api/v1/extract", json={"url": "http://10.0.0.1/image.jpg"}) as response:
        assert response.status == 400


async def test_remove_metadata_and_download_the_cleaned_file(api, anonymous, api_key, file_server):
    # The document's Python example: POST the file, then requests.get(result['downloadUrl']).
    async with api.post("/api/v1/remove", data=image_form()) as response:
        assert response.status == 200
        result = await response.json()
    assert set(result) == {"success", "status", "uuid", "downloadUrl"}
    assert (result["success"], result["status"]) == (True, "completed")
    assert result["downloadUrl"].endswith(f"/download-cleaned/{result['uuid']}")
    async with anonymous.get(result["downloadUrl"]) as response:
        assert response.status == 200
        cleaned = await response.read()
    image = Image.open(io.BytesIO(cleaned))
    assert image.size == (100, 68)
    # "All metadata": no EXIF, not even the orientation, and no colour profile.
    assert not image.getexif() and "icc_profile" not in image.info
    # The other three examples: key in the query, URL in a JSON body.
    url = f"{file_server}/samples/exif-samples/jpg/Canon_40D.jpg"
    for session, params, kwargs in (
        (anonymous, {"key": api_key}, {"data": image_form()}),
        (api, {}, {"json": {"url": url}}),
        (anonymous, {"key": api_key}, {"json": {"url": url}}),
    ):
        async with session.post("/api/v1/remove", params=params, **kwargs) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "completed"


async def test_download_cleaned_errors(api, anonymous):
    async with anonymous.get(f"/download-cleaned/{uuid.uuid4()}") as response:
        assert response.status == 404
        assert await response.json() == {"success": False, "error": "No cleaned file found with the given UUID."}
    # An extraction has no cleaned file, and a removal is no extraction.
    async with api.post("/api/v1/extract", data=image_form()) as response:
        extracted = (await response.json())["uuid"]
    async with anonymous.get(f"/download-cleaned/{extracted}") as response:
        assert response.status == 404
    async with api.post("/api/v1/remove", data=image_form()) as response:
        removed = (await response.json())["uuid"]
    async with anonymous.get(f"/api/v1/extract/{removed}") as response:
        assert (response.status, await response.json()) == (404, NO_EXTRACTION)
    async with anonymous.post("/api/v1/remove", data=image_form()) as response:
        assert (response.status, await response.json()) == (401, INVALID_KEY)

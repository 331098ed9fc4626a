"""Qiniu's ``?exif`` (reference 002): every EXIF tag as {"val", "type"}, the types checked against the
document's own example (a Canon EOS 600D photo; our sample is a 40D's, with most of the same tags)."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from conftest import SAMPLES
from ingest.compat_qiniu import exif_tags, readable, render_error, tag_name
from media.tiff import ASCII, RATIONAL, SHORT, UNDEFINED
from adapters.exiftool import ExifTool
from media.metadata import extract_metadata
from schemas.errors import NotFound, Unauthorized
from schemas.settings import Settings

CANON = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "002_dbfb6d378bdfe5ad.txt"


def reference_example() -> dict:
    text = REFERENCE.read_text()
    return json.loads(re.search(r"^\s*(\{\"ApertureValue\".*\})\s*$", text, re.M).group(1))


@pytest.fixture(scope="module")
def exiftool() -> Iterator[ExifTool]:
    with ExifTool(shutil.which(Settings().exiftool_path) or "exiftool", 20) as tool:
        yield tool


@pytest.fixture(scope="module")
def canon(exiftool) -> dict:
    return exif_tags(extract_metadata(CANON.read_bytes(), CANON.name, exiftool))


def assert_like_the_reference(ours: dict) -> None:
    reference = reference_example()
    shared = set(reference) & set(ours)
    # The 600D's example and the 40D share 33 of the example's 37 tags (not MaxApertureValue, ...).
    assert len(shared) >= 33, set(reference) - set(ours)
    for name in shared:
        assert set(ours[name]) == {"val", "type"}
        assert isinstance(ours[name]["val"], str)
        assert ours[name]["type"] == reference[name]["type"], name


def test_every_tag_has_its_printed_value_and_field_type(canon):
    assert_like_the_reference(canon)
    assert canon["Make"] == {"val": "Canon", "type": ASCII}
    assert canon["Model"] == {"val": "Canon EOS 40D", "type": ASCII}
    assert canon["ExposureTime"] == {"val": "1/160", "type": RATIONAL}
    assert canon["ISOSpeedRatings"] == {"val": "100", "type": SHORT}
    assert canon["ExifVersion"] == {"val": "0221", "type": UNDEFINED}
    assert canon["PixelXDimension"] == {"val": "100", "type": 4}
    assert canon["ExposureBiasValue"]["type"] == 10
    assert canon["GPSVersionID"] == {"val": "2.2.0.0", "type": 1}
    assert canon["InteroperabilityIndex"]["type"] == ASCII
    # IFD0's XResolution, not the thumbnail's; the thumbnail's own tags are there under libexif's names.
    assert canon["XResolution"] == {"val": "72", "type": RATIONAL}
    assert canon["JPEGInterchangeFormatLength"] == {"val": "1378", "type": 4}
    # Directory pointers are structure, not tags.
    assert not {"ExifOffset", "GPSInfo", "ExifInteroperabilityOffset", "InteropOffset"} & set(canon)


def test_names_are_libexifs():
    assert tag_name("ExifIFD", 0x9290) == "SubsecTime"
    assert tag_name("ExifIFD", 0x9291) == "SubSecTimeOriginal"
    assert tag_name("IFD0", 0x0132) == "DateTime"
    assert tag_name("GPS", 0x0001) == "GPSLatitudeRef"
    assert tag_name("InteropIFD", 0x0001) == "InteroperabilityIndex"
    assert tag_name("IFD0", 0xFFF0) == "0xfff0"


def test_values_exiftool_does_not_print():
    assert readable(None, {"type": UNDEFINED, "count": 1234, "value": None}) == "1234 bytes undefined data"
    assert readable(None, {"type": SHORT, "count": 2, "value": [1, 2]}) == "1 2"
    assert readable(["a", "b"], {}) == "a, b"


def test_gps_and_big_endian_files(exiftool):
    gps = exif_tags(extract_metadata((SAMPLES / "exif-samples/jpg/gps/DSCN0029.jpg").read_bytes(), "g", exiftool))
    assert gps["GPSLatitudeRef"] == {"val": "North", "type": ASCII}
    assert gps["GPSLatitude"]["type"] == RATIONAL and gps["GPSLatitude"]["val"].startswith("43 deg 28'")
    tiff = exif_tags(extract_metadata((SAMPLES / "exif-samples/tiff/Arbitro.tiff").read_bytes(), "t", exiftool))
    assert tiff["ImageWidth"]["type"] in (3, 4)


def test_no_exif_is_an_empty_object(exiftool):
    assert exif_tags(extract_metadata((SAMPLES / "exiftool-formats/PNG.png").read_bytes(), "p", exiftool)) == {}


def test_errors_in_qinius_shape():
    for error, status in ((Unauthorized("invalid API key"), 401), (NotFound("no job with id x"), 404)):
        response = render_error(error)
        assert (response.status, json.loads(response.body)) == (status, {"error": error.message})


async def upload(api, ops: str) -> dict:
    form = aiohttp.FormData()
    form.add_field("file", CANON.read_bytes(), filename="gogopher.jpg", content_type="image/jpeg")
    form.add_field("ops", ops)
    async with api.post("/v1/jobs", params={"wait": "30"}, data=form) as response:
        assert response.status == 200
        return await response.json()


async def test_exif_of_a_jobs_original(api, canon):
    # The document's example: GET <image URL>?exif, here the job's stored original.
    job = await upload(api, "metadata")
    async with api.get(f"/v1/jobs/{job['job_id']}/original?exif") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
    assert body == canon
    # Without ?exif, the URL is the file itself.
    async with api.get(f"/v1/jobs/{job['job_id']}/original") as response:
        assert response.status == 200
        assert await response.read() == CANON.read_bytes()
        assert "gogopher.jpg" in response.headers["Content-Disposition"]


async def test_exif_of_an_original_whose_job_read_no_metadata(api, canon):
    job = await upload(api, "phash")
    async with api.get(f"/v1/jobs/{job['job_id']}/original", params={"exif": ""}) as response:
        assert response.status == 200
        assert await response.json() == canon


async def test_exif_on_a_download_link(api, ingest, api_key):
    job = await upload(api, "strip")
    link = job["result"]["strip"]["downloadUrl"]
    async with api.get(f"{link}?exif") as response:
        assert response.status == 200
        stripped = await response.json()
    # The native strip keeps the orientation, and nothing else of EXIF.
    assert stripped == {"Orientation": {"val": "Horizontal (normal)", "type": SHORT}}
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{link}?exif") as response:
            assert response.status == 401
            assert "error" in await response.json()
        async with anonymous.get(f"{link}?exif&key={api_key}") as response:
            assert response.status == 200
        async with anonymous.get(link) as response:
            assert response.status == 200


async def test_original_errors(api, ingest, other_key):
    job = await upload(api, "metadata")
    async with aiohttp.ClientSession(base_url=str(ingest.make_url("/"))) as anonymous:
        async with anonymous.get(f"/v1/jobs/{job['job_id']}/original?exif") as response:
            assert response.status == 401
            assert set(await response.json()) == {"error"}
        async with anonymous.get(f"/v1/jobs/{job['job_id']}/original?exif", params={"key": other_key}) as response:
            assert response.status == 404
            assert set(await response.json()) == {"error"}
    async with api.get(f"/v1/jobs/{uuid.uuid4()}/original?exif") as response:
        assert response.status == 404
        assert set(await response.json()) == {"error"}

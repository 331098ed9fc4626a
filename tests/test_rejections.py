"""One test per rejection path of the HTTP API: the exact status and machine code, nothing published."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from conftest import SAMPLES

JPEG = SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg"


def form(data: bytes, filename: str = "upload.jpg", **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        body.add_field(name, value)
    return body


async def expect_error(response: aiohttp.ClientResponse, status: int, code: str) -> dict:
    body = await response.json()
    assert response.status == status, body
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


async def test_empty_file(api):
    async with api.post("/v1/jobs", data=form(b"")) as response:
        await expect_error(response, 400, "empty_file")


async def test_non_media_file(api):
    # Only refused when no op of the job takes it: metadata takes any file (exiftool reads text).
    text = b"just some text, not a picture\n" * 20
    async with api.post("/v1/jobs", data=form(text, "notes.jpg", ops="phash,strip")) as response:
        body = await expect_error(response, 415, "unsupported_media")
    assert "text/plain" in body["error"]
    assert ": phash takes image/avif" in body["error"] and "; strip takes image/gif" in body["error"]
    async with api.post("/v1/jobs", data=form(text, "notes.jpg")) as response:
        assert response.status == 202, await response.text()


async def test_truncated_jpeg(api):
    # A JPEG is what every op takes; that it is cut short is each op's to find, in the job.
    data = JPEG.read_bytes()
    async with api.post("/v1/jobs", data=form(data[: len(data) // 2])) as response:
        assert response.status == 202, await response.text()


async def test_file_over_the_size_limit(api, settings):
    data = JPEG.read_bytes()
    oversized = data + b"\0" * (settings.max_upload_bytes + 1 - len(data))
    async with api.post("/v1/jobs", data=form(oversized)) as response:
        await expect_error(response, 413, "file_too_large")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.2/x.jpg", "http://10.1.2.3/x.jpg", "http://169.254.169.254/latest/meta-data",
     "http://[::1]/x.jpg", "http://[::ffff:10.0.0.1]/x.jpg", "http://0.0.0.0/x.jpg"],
)  # fmt: skip
async def test_url_to_a_private_address(api, url):
    async with api.post("/v1/jobs", json={"url": url}) as response:
        await expect_error(response, 422, "url_forbidden")


async def test_url_with_a_scheme_other_than_http(api):
    async with api.post("/v1/jobs", json={"url": "file:///etc/passwd"}) as response:
        await expect_error(response, 422, "url_forbidden")


async def test_malformed_json(api):
    headers = {"Content-Type": "application/json"}
    async with api.post("/v1/jobs", data=b'{"url": "http://exa', headers=headers) as response:
        await expect_error(response, 400, "malformed_body")


async def test_json_that_is_not_an_object(api):
    async with api.post("/v1/jobs", json=["http://example.com/a.jpg"]) as response:
        await expect_error(response, 400, "malformed_body")


async def test_json_without_url(api):
    async with api.post("/v1/jobs", json={"uri": "http://example.com/a.jpg"}) as response:
        await expect_error(response, 400, "missing_url")


async def test_multipart_without_file(api):
    body = aiohttp.FormData()
    body.add_field("ops", '["metadata"]', content_type="application/json")
    async with api.post("/v1/jobs", data=body) as response:
        await expect_error(response, 400, "missing_file")


async def test_an_image_under_another_field_name_is_a_missing_file_naming_the_expected_field(api):
    body = aiohttp.FormData()
    body.add_field("image", JPEG.read_bytes(), filename="photo.jpg", content_type="image/jpeg")
    async with api.post("/v1/jobs", data=body) as response:
        error = await expect_error(response, 400, "missing_file")
    assert error["field"] == "file"
    assert "'image'" in error["error"]


@pytest.mark.parametrize("route", ["/v1/jobs", "/v1/similar", "/v1/uniquify", "/v1/exif-donors"])
async def test_multipart_part_with_malformed_headers(api, route):
    # aiohttp parses a part's headers only when the handler reads the part (schemathesis found a 500 here).
    body = b'--b0undary\r\nContent-Disposition: form-data; name="\x02"\r\n\r\nx\r\n--b0undary--\r\n'
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    async with api.post(route, data=body, headers=headers) as response:
        await expect_error(response, 400, "malformed_body")


async def test_unknown_op(api):
    async with api.post("/v1/jobs", data=form(JPEG.read_bytes(), ops='["metadata", "teleport"]')) as response:
        body = await expect_error(response, 422, "unknown_op")
    assert "teleport" in body["error"]


async def test_unsupported_content_type(api):
    async with api.post("/v1/jobs", data=b"url=x", headers={"Content-Type": "text/plain"}) as response:
        await expect_error(response, 415, "unsupported_content_type")


@pytest.mark.parametrize("wait", ["-1", "61", "soon"])
async def test_bad_wait(api, wait):
    async with api.post("/v1/jobs", data=form(JPEG.read_bytes()), params={"wait": wait}) as response:
        await expect_error(response, 422, "invalid_wait")


async def test_unknown_job(api):
    async with api.get(f"/v1/jobs/{uuid.uuid4()}") as response:
        await expect_error(response, 404, "job_not_found")


async def test_job_id_that_is_not_a_uuid(api):
    async with api.get("/v1/jobs/..%2F..%2Fadmin") as response:
        await expect_error(response, 404, "job_not_found")


async def test_unknown_route(api):
    async with api.get("/v1/nothing-here") as response:
        await expect_error(response, 404, "route_not_found")


async def test_method_not_allowed_names_the_allowed_methods(api):
    async with api.delete("/v1/jobs") as response:
        await expect_error(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= set(response.headers["Allow"].split(","))


async def test_health_and_readiness(api):
    async with api.get("/healthz") as response:
        assert response.status == 200
    async with api.get("/readyz") as response:
        body = await response.json()
        assert response.status == 200, body
    assert body["checks"] == {"broker": "ok", "object_store": "ok", "workers": "ok"}

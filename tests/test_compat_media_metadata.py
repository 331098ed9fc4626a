"""The media metadata API's drop-in routes (reference 003): the shape functions without Kafka, then the
document's own curl examples replayed against the running stack (host, key and URLs changed)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import aiohttp
import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from conftest import SAMPLES
from ingest.app import create_app
from ingest.compat_media_metadata import clock, job_answer, media_fields, render_error, status_answer
from media.media_type import check_media
from media.metadata import av_metadata, file_metadata
from schemas.errors import Unauthorized
from schemas.messages import ErrorInfo, Op, Status
from schemas.views import JobView

FORMATS = SAMPLES / "exiftool-formats"
MOV = FORMATS / "QuickTime.mov"

# The document's examples, verbatim: the 200 answer, the 202 answer, the error answer, the status answer.
DOC_200 = {
    "code": 200, "job_id": "550e8400-e29b-41d4-a716-446655440000", "id": "custom-id",
    "response": {
        "filesize": 15679283, "filesize_mb": 14.95, "duration": 87.46, "duration_formatted": "00:01:27.46",
        "format": "mp4,mov,m4a,3gp,3g2,mj2", "overall_bitrate": 1438692, "overall_bitrate_mbps": 1.44,
        "has_video": True, "video_codec": "h264", "video_codec_long": "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10",
        "width": 1920, "height": 1080, "resolution": "1920x1080", "fps": 30.0, "video_bitrate": 1300000,
        "video_bitrate_mbps": 1.3, "pixel_format": "yuv420p", "has_audio": True, "audio_codec": "aac",
        "audio_codec_long": "AAC (Advanced Audio Coding)", "audio_channels": 2, "audio_sample_rate": 48000,
        "audio_sample_rate_khz": 48.0, "audio_bitrate": 128000, "audio_bitrate_kbps": 128,
    },
    "message": "success", "run_time": 0.542, "queue_time": 0, "total_time": 0.542, "pid": 12345, "queue_id": 67890,
    "queue_length": 0, "build_number": "123",
}  # fmt: skip
DOC_202 = {
    "code": 202, "id": "custom-id", "job_id": "550e8400-e29b-41d4-a716-446655440000", "message": "processing",
    "pid": 12345, "queue_id": 67890, "max_queue_length": "unlimited", "queue_length": 0, "build_number": "123",
}  # fmt: skip
DOC_ERROR = {
    "code": 500, "id": "custom-id", "job_id": "550e8400-e29b-41d4-a716-446655440000",
    "message": "Error extracting metadata: [chi tiết lỗi]", "pid": 12345, "queue_id": 67890, "queue_length": 0,
    "build_number": "123",
}  # fmt: skip
DOC_STATUS = {
    "endpoint": "/v1/toolkit/job/status", "code": 200, "id": None, "job_id": "a1b2c3d4-e5f6-g7h8-i9j0-k1l2m3n4o5p6",
    "response": {
        "job_status": "done", "job_id": "a1b2c3d4-e5f6-g7h8-i9j0-k1l2m3n4o5p6", "queue_id": 140368864456064,
        "process_id": 123456,
        "response": {
            "endpoint": "/v1/endpoint/name", "code": 200, "id": "request-123",
            "job_id": "a1b2c3d4-e5f6-g7h8-i9j0-k1l2m3n4o5p6", "response": "https://cloud-storage.example.com/output.mp4",
            "message": "success", "pid": 123456, "queue_id": 140368864456064, "run_time": 2.345, "queue_time": 0.123,
            "total_time": 2.468, "queue_length": 0, "build_number": "1.0.0",
        },
    },
    "message": "success", "pid": 123456, "queue_id": 140368864456064, "run_time": 0.001, "queue_time": 0.0,
    "total_time": 0.001, "queue_length": 0, "build_number": "1.0.0",
}  # fmt: skip
VIDEO_FIELDS = {"video_codec", "video_codec_long", "width", "height", "resolution", "fps", "video_bitrate",
                "video_bitrate_mbps", "pixel_format"}  # fmt: skip
AUDIO_FIELDS = {"audio_codec", "audio_codec_long", "audio_channels", "audio_sample_rate", "audio_sample_rate_khz",
                "audio_bitrate", "audio_bitrate_kbps"}  # fmt: skip


def same_shape(actual: dict, documented: dict, ignore: frozenset[str] = frozenset()) -> None:
    """Same keys, and each value of the documented JSON type (an int where the document shows 0 may be a float)."""
    assert set(actual) == set(documented)
    for key, example in documented.items():
        if key in ignore:
            continue
        kinds = (int, float) if example == 0 and not isinstance(example, bool) else type(example)
        assert isinstance(actual[key], kinds) and isinstance(actual[key], bool) == isinstance(example, bool), key


def h264_aac_clip() -> bytes:
    """One second of H.264 and AAC in MP4: the codecs of the document's example."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        audio.bit_rate = 128000
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.random.default_rng(i).integers(0, 255, (240, 320, 3), np.uint8))
            container.mux(video.encode(frame))
        for i in range(47):
            samples = np.sin(np.arange(1024 * 2) / 10).astype(np.float32).reshape(1, -1) * 0.5
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, i * 1024, Fraction(1, 48000)
            container.mux(audio.encode(frame))
        for stream in (video, audio):
            container.mux(stream.encode(None))
    return out.getvalue()


def av_document(data: bytes, name: str) -> dict:
    """The native document's sections the adapter reads (exiftool's sections play no part)."""
    return {"file": file_metadata(data, name, check_media(data)), "image": None, "av": av_metadata(data)}


def view(status: Status, **fields) -> JobView:
    created = datetime(2025, 1, 1, tzinfo=UTC)
    return JobView(job_id=str(uuid.uuid4()), status=status, percent=100 if status is Status.COMPLETED else 0,
                   ops=[Op.METADATA], created_at=created, updated_at=created + timedelta(seconds=0.542), **fields)  # fmt: skip


# --- shape functions ----------------------------------------------------------------------------


def test_h264_aac_clip_has_every_documented_field_with_its_type():
    data = h264_aac_clip()
    fields = media_fields(av_document(data, "clip.mp4"))
    same_shape(fields, DOC_200["response"])
    assert fields["filesize"] == len(data) and fields["filesize_mb"] == round(len(data) / 1024 / 1024, 2)
    assert fields["format"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert fields["duration"] == pytest.approx(1.0, abs=0.1)
    assert fields["duration_formatted"] == clock(fields["duration"])
    assert (fields["video_codec"], fields["video_codec_long"]) == ("h264", DOC_200["response"]["video_codec_long"])
    assert (fields["width"], fields["height"], fields["resolution"], fields["fps"]) == (320, 240, "320x240", 30.0)
    assert fields["pixel_format"] == "yuv420p"
    assert (fields["audio_codec"], fields["audio_codec_long"]) == ("aac", DOC_200["response"]["audio_codec_long"])
    assert (fields["audio_channels"], fields["audio_sample_rate"], fields["audio_sample_rate_khz"]) == (2, 48000, 48.0)
    assert fields["audio_bitrate_kbps"] == round(fields["audio_bitrate"] / 1000)
    assert fields["video_bitrate_mbps"] == round(fields["video_bitrate"] / 1e6, 2)
    assert fields["overall_bitrate_mbps"] == round(fields["overall_bitrate"] / 1e6, 2)


def test_audio_only_file_has_no_video_fields():
    fields = media_fields(av_document((FORMATS / "AAC.aac").read_bytes(), "AAC.aac"))
    assert fields["has_video"] is False and not VIDEO_FIELDS & set(fields)
    assert (fields["has_audio"], fields["audio_codec"], fields["audio_channels"], fields["audio_sample_rate"]) == (
        True, "aac", 2, 44100
    )
    assert fields["audio_sample_rate_khz"] == 44.1


def test_cover_art_is_not_video():
    """QuickTime.m4a carries two MJPEG cover pictures; the document says audio files have no video fields."""
    fields = media_fields(av_document((FORMATS / "QuickTime.m4a").read_bytes(), "QuickTime.m4a"))
    assert fields["has_video"] is False and not VIDEO_FIELDS & set(fields)
    assert fields["audio_codec"] == "aac"


def test_unknown_values_are_left_out():
    """What PyAV cannot tell (a truncated stream's duration, an AC-3 stream's sample rate) is left out."""
    stream = {"codec": "x", "codecLongName": "X", "width": 0, "height": 0, "fps": None, "bitrate": None,
              "pixelFormat": None, "channels": None, "sampleRate": 0, "attachedPicture": False}  # fmt: skip
    document = {
        "file": {"size": 1672, "extension": "mts"},
        "image": None,
        "av": {"container": "mpegts", "duration": None, "bitrate": None,
               "streams": [{**stream, "type": "video"}, {**stream, "type": "audio"}]},
    }  # fmt: skip
    assert media_fields(document) == {
        "filesize": 1672, "filesize_mb": 0.0, "format": "mpegts", "has_video": True, "video_codec": "x",
        "video_codec_long": "X", "has_audio": True, "audio_codec": "x", "audio_codec_long": "X",
    }  # fmt: skip


def test_image_has_dimensions_and_no_streams():
    document = {
        "file": {"size": 7958, "extension": "jpg"},
        "image": {"format": "JPEG", "width": 100, "height": 68},
        "av": None,
    }
    assert media_fields(document) == {
        "filesize": 7958, "filesize_mb": 0.01, "format": "jpeg", "has_video": False, "has_audio": False,
        "width": 100, "height": 68, "resolution": "100x68",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(87.46, "00:01:27.46"), (0, "00:00:00.00"), (5.2, "00:00:05.20"), (3599.999, "01:00:00.00"), (90061.5, "25:01:01.50")],
)
def test_clock(seconds, text):
    assert clock(seconds) == text


def test_completed_job_answers_the_documented_200():
    done = view(Status.COMPLETED, id="custom-id", result={Op.METADATA: av_document(MOV.read_bytes(), "a.mov")})
    status, body = job_answer(done)
    assert status == 200
    same_shape(body, DOC_200, ignore=frozenset({"response"}))
    assert (body["code"], body["id"], body["job_id"], body["message"]) == (200, "custom-id", done.job_id, "success")
    assert body["run_time"] == body["total_time"] == 0.542


def test_unfinished_job_answers_the_documented_202():
    for status in (Status.QUEUED, Status.PROCESSING):
        code, body = job_answer(view(status, id="custom-id"))
        assert code == 202
        same_shape(body, DOC_202)
        assert (body["code"], body["message"], body["max_queue_length"]) == (202, "processing", "unlimited")


def test_failed_job_answers_the_documented_error():
    failed = view(Status.FAILED, error=ErrorInfo(code="extract_failed", message="exiftool crashed"))
    code, body = job_answer(failed)
    same_shape(body, DOC_ERROR, ignore=frozenset({"id"}))
    assert code == body["code"] == 500 and body["id"] is None
    assert body["message"] == "Error extracting metadata: exiftool crashed"
    fetch = view(Status.FAILED, error=ErrorInfo(code="fetch_failed", message="HTTP 404"))
    assert job_answer(fetch)[0] == 422


def test_status_answer_wraps_the_jobs_own_answer():
    done = view(Status.COMPLETED, id="request-123", result={Op.METADATA: av_document(MOV.read_bytes(), "a.mov")})
    body = status_answer(done, None, 0.001)
    same_shape(body, DOC_STATUS, ignore=frozenset({"id", "response"}))
    same_shape(body["response"], DOC_STATUS["response"], ignore=frozenset({"response"}))
    inner = body["response"]["response"]
    same_shape(inner, {**DOC_200, "endpoint": "/v1/media/metadata"}, ignore=frozenset({"response"}))
    assert (body["job_id"], body["response"]["job_status"], inner["id"]) == (done.job_id, "done", "request-123")
    assert inner["endpoint"] == "/v1/media/metadata" and inner["response"] == job_answer(done)[1]["response"]
    running = status_answer(view(Status.PROCESSING), "mine", 0.001)
    assert (running["id"], running["response"]["job_status"], running["response"]["response"]) == ("mine", "running", None)
    assert status_answer(view(Status.QUEUED), None, 0.0)["response"]["job_status"] == "queued"


def test_errors_render_in_the_documented_envelope():
    response = render_error(Unauthorized("invalid API key"))
    assert response.status == 401
    same_shape(json.loads(response.body), DOC_ERROR, ignore=frozenset({"id", "job_id"}))


# --- the document's examples against the running stack ---------------------------------------------


@contextlib.asynccontextmanager
async def client(base_url: str, **headers: str):
    """A client that sends only what the example sends (the ``api`` session adds its own key header)."""
    async with aiohttp.ClientSession(base_url=base_url, headers=headers) as session:
        yield session


@pytest.fixture
def base_url(ingest) -> str:
    return str(ingest.make_url("/"))


@pytest.fixture
async def webhook_receiver():
    """A local receiver for the examples' ``webhook_url`` ("https://your-server.com/webhook")."""
    received: asyncio.Queue = asyncio.Queue()

    async def webhook(request: web.Request) -> web.Response:
        await received.put((dict(request.headers), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/webhook")), received
    await server.close()


async def test_example_request_answers_200_with_the_media_fields(base_url, api_key, file_server, webhook_receiver):
    webhook_url, received = webhook_receiver
    # curl -X POST https://api.example.com/v1/media/metadata -H "Content-Type: application/json"
    #   -H "Authorization: Bearer your_api_key" -d '{"media_url": ..., "webhook_url": ...}'
    payload = json.dumps({"media_url": f"{file_server}/samples/exiftool-formats/QuickTime.mov", "webhook_url": webhook_url})
    async with client(base_url, **{"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}) as session:
        async with session.post("/v1/media/metadata", data=payload) as response:
            body = await response.json()
    assert response.status == 200, body
    same_shape(body, DOC_200, ignore=frozenset({"id", "response"}))
    assert (body["code"], body["id"], body["message"], body["queue_time"]) == (200, None, "success", 0)
    assert uuid.UUID(body["job_id"]) and body["total_time"] >= body["run_time"] > 0
    fields = body["response"]
    assert fields["filesize"] == MOV.stat().st_size and fields["format"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert fields["duration"] == pytest.approx(0.4346, abs=0.001) and fields["duration_formatted"] == "00:00:00.43"
    assert (fields["has_video"], fields["video_codec"], fields["video_codec_long"]) == (True, "mjpeg", "MJPEG (Motion JPEG)")
    assert (fields["width"], fields["height"], fields["resolution"], fields["fps"]) == (320, 240, "320x240", 30.0)
    assert (fields["has_audio"], fields["audio_codec"], fields["audio_channels"]) == (True, "pcm_u8", 1)
    assert (fields["audio_sample_rate"], fields["audio_sample_rate_khz"], fields["audio_bitrate_kbps"]) == (7875, 7.9, 63)
    # The webhook_url of the example hears of the job, signed.
    headers, document = await asyncio.wait_for(received.get(), 60)
    assert document["job_id"] == body["job_id"] and document["status"] == "completed"
    assert headers["Medialane-Signature"].startswith("t=")


async def status_when_done(session: aiohttp.ClientSession, path: str, job_id: str, timeout: float = 30) -> dict:
    """The status route's answer once the job is done; until then it has no inner response. The status
    table may fold a job's end a moment after the POST that waited on it saw it; 503 (no worker could
    answer yet) is retried, as clients are told to."""
    async with asyncio.timeout(timeout):
        while True:
            async with session.post(path, json={"job_id": job_id}) as response:
                body = await response.json()
            if response.status == 503:
                await asyncio.sleep(0.1)
                continue
            assert response.status == 200, body
            if body["response"]["job_status"] == "done":
                return body
            assert body["response"]["job_status"] in ("queued", "running") and body["response"]["response"] is None
            await asyncio.sleep(0.1)


async def test_example_status_request_answers_the_documented_envelope(base_url, api_key, file_server):
    async with client(base_url, **{"x-api-key": api_key, "Content-Type": "application/json"}) as session:
        media_url = f"{file_server}/samples/exiftool-formats/AAC.aac"
        async with session.post("/paid/media/metadata", data=json.dumps({"media_url": media_url, "id": "custom-id"})) as r:
            answer = await r.json()
        assert (r.status, answer["id"]) == (200, "custom-id"), answer
        assert answer["response"]["has_video"] is False and not VIDEO_FIELDS & set(answer["response"])
        assert AUDIO_FIELDS <= set(answer["response"]) and answer["response"]["audio_codec"] == "aac"
        # curl -X POST -H "x-api-key: YOUR_API_KEY" -H "Content-Type: application/json"
        #   -d '{"job_id": "..."}' https://api.revidapi.com/paid/get/job/status
        for path in ("/paid/get/job/status", "/v1/toolkit/job/status"):
            body = await status_when_done(session, path, answer["job_id"])
            same_shape(body, DOC_STATUS, ignore=frozenset({"id", "response"}))
            same_shape(body["response"], DOC_STATUS["response"], ignore=frozenset({"response"}))
            assert (body["endpoint"], body["id"], body["job_id"]) == ("/v1/toolkit/job/status", None, answer["job_id"])
            assert body["response"]["response"] == {**answer, "endpoint": "/v1/media/metadata"}


async def test_slow_job_answers_202_then_its_status(stack, workers, settings, api_key, file_server):
    server = TestServer(create_app(settings.model_copy(update={"media_metadata_wait_seconds": 0.001})), host="127.0.0.1")
    await server.start_server()
    try:
        async with client(str(server.make_url("/")), **{"x-api-key": api_key}) as session:
            payload = {"media_url": f"{file_server}/samples/exiftool-formats/QuickTime.m4a", "id": "custom-id"}
            async with session.post("/v1/media/metadata", json=payload) as response:
                queued = await response.json()
            assert response.status == 202, queued
            same_shape(queued, DOC_202)
            assert (queued["code"], queued["id"], queued["message"]) == (202, "custom-id", "processing")
            status = await status_when_done(session, "/v1/toolkit/job/status", queued["job_id"])
            inner = status["response"]["response"]
            assert (inner["code"], inner["id"], inner["job_id"]) == (200, "custom-id", queued["job_id"])
            assert inner["response"]["has_video"] is False and inner["response"]["audio_codec"] == "aac"
    finally:
        await server.close()


async def expect_envelope(response: aiohttp.ClientResponse, status: int) -> dict:
    body = await response.json()
    assert response.status == status, body
    same_shape(body, DOC_ERROR, ignore=frozenset({"id", "job_id"}))
    assert body["code"] == status
    return body


async def test_documented_errors(base_url, api_key, other_key, file_server):
    media = {"media_url": f"{file_server}/samples/exiftool-formats/AAC.aac"}
    async with client(base_url) as anonymous:
        async with anonymous.post("/v1/media/metadata", json=media) as response:
            assert "API key" in (await expect_envelope(response, 401))["message"]
        async with anonymous.post("/v1/media/metadata", json=media, headers={"x-api-key": "wrong"}) as response:
            await expect_envelope(response, 401)
    async with client(base_url, **{"x-api-key": api_key}) as session:
        async with session.post("/v1/media/metadata", json={"webhook_url": "https://example.com/hook"}) as response:
            assert "media_url" in (await expect_envelope(response, 400))["message"]
        async with session.post("/v1/media/metadata", data=b"{not json", headers={"Content-Type": "application/json"}) as r:
            await expect_envelope(r, 400)
        async with session.post("/v1/media/metadata", json={"media_url": "http://10.0.0.1/a.mp4"}) as response:
            await expect_envelope(response, 422)
        async with session.post("/v1/media/metadata", json={**media, "webhook_url": "http://10.0.0.1/hook"}) as response:
            assert "webhook_url" in (await expect_envelope(response, 422))["message"]
        missing = {"media_url": f"{file_server}/samples/no-such-file.mp4", "id": "custom-id"}
        async with session.post("/v1/media/metadata", json=missing) as response:
            failed = await expect_envelope(response, 422)
        assert failed["message"].startswith("Error extracting metadata: ") and failed["id"] == "custom-id"
        assert uuid.UUID(failed["job_id"])
        unknown = str(uuid.uuid4())
        for job_id in (unknown, "a1b2c3d4-e5f6-g7h8-i9j0-k1l2m3n4o5p6"):
            async with session.post("/paid/get/job/status", json={"job_id": job_id}) as response:
                assert (response.status, await response.json()) == (404, {"error": "Job not found", "job_id": job_id})
    # Another key's job answers exactly as an unknown one.
    async with client(base_url, **{"x-api-key": other_key}) as other:
        async with other.post("/paid/get/job/status", json={"job_id": failed["job_id"]}) as response:
            assert (response.status, await response.json()) == (404, {"error": "Job not found", "job_id": failed["job_id"]})

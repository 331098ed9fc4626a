"""Every format through every op: the acceptance table (media/accepts), each sample through phash and strip,
files made here that ../shared/samples lacks (MP3, AIFF, WMV, ZIP), and the same rule end to end.

The metadata op on every sample, with its groups held to exiftool's own, is in test_metadata.py.
"""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from adapters.exiftool import ExifTool
from conftest import SAMPLES, poll_job
from media.accepts import ACCEPTS, check_accepted, takes
from media.media_type import sniff
from media.metadata import extract_metadata
from media.phash import phash_image
from media.strip import KEEP_DEFAULT, strip_metadata
from schemas.errors import MedialaneError, UnsupportedMedia
from schemas.messages import Op
from schemas.settings import Settings

ALL_SAMPLES = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
SECONDS_PER_FILE = 20.0
OWN_CODES = {Op.PHASH: "phash_unsupported_format", Op.STRIP: "strip_unsupported_format"}
# Codes an op may fail a file with besides its own: the file is broken, or has too many pixels.
FILE_CODES = {"corrupt_media", "file_too_large"}


@pytest.fixture(scope="module")
def exiftool() -> Iterator[ExifTool]:
    with ExifTool(shutil.which(Settings().exiftool_path) or Settings().exiftool_path, SECONDS_PER_FILE) as tool:
        yield tool


def _audio(container: str, codec: str) -> bytes:
    """A second of a 440 Hz tone, as PyAV writes it."""
    out, rate = io.BytesIO(), 44100
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate)
        stream.layout = "mono"
        tone = (np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 8000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            muxer.mux(packet)
    return out.getvalue()


def _wmv() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="asf") as muxer:
        stream = muxer.add_stream("wmv2", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        frames = [av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24") for i in range(10)]
        for packet in [*(p for f in frames for p in stream.encode(f)), *stream.encode(None)]:
            muxer.mux(packet)
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return out.getvalue()


MP3 = _audio("mp3", "mp3")
# The ID3 tag and the first frame header alone: exiftool reads both, FFmpeg finds no audio to demux.
MP3_HEADERS = MP3[: MP3.index(b"\xff\xfb") + 4]
MADE = {"mp3": MP3, "mp3-headers": MP3_HEADERS, "aiff": _audio("aiff", "pcm_s16be"), "wmv": _wmv(), "zip": _zip()}


def outcome(op: Op, data: bytes, exiftool: ExifTool) -> str:
    run = {
        Op.METADATA: lambda: extract_metadata(data, "file", exiftool),
        Op.PHASH: lambda: phash_image(data),
        Op.STRIP: lambda: strip_metadata(data, frozenset(KEEP_DEFAULT), exiftool),
    }[op]
    start = time.monotonic()
    try:
        run()
    except MedialaneError as exc:
        assert exc.status < 500, exc.message
        result = exc.code
    else:
        result = "completed"
    assert time.monotonic() - start < SECONDS_PER_FILE
    return result


@pytest.mark.parametrize("op", [Op.PHASH, Op.STRIP])
@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_sample_completes_or_fails_with_the_ops_own_code(path: Path, op: Op, exiftool: ExifTool) -> None:
    data = path.read_bytes()
    result = outcome(op, data, exiftool)
    if takes(op, sniff(data)):
        assert result in {"completed", OWN_CODES[op], *FILE_CODES}
    else:
        assert result == OWN_CODES[op]


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("mp3", "audio/mpeg", {Op.METADATA: "completed", Op.PHASH: "phash_unsupported_format",
                               Op.STRIP: "strip_unsupported_format"}),
        ("mp3-headers", "audio/mpeg", {Op.METADATA: "completed", Op.PHASH: "phash_unsupported_format",
                                       Op.STRIP: "strip_unsupported_format"}),
        ("aiff", "audio/aiff", {Op.METADATA: "completed", Op.PHASH: "phash_unsupported_format",
                                Op.STRIP: "strip_unsupported_format"}),
        ("wmv", "video/x-ms-wmv", {Op.METADATA: "completed", Op.PHASH: "phash_unsupported_format",
                                   Op.STRIP: "strip_unsupported_format"}),
        ("zip", "application/zip", {Op.METADATA: "completed", Op.PHASH: "phash_unsupported_format",
                                    Op.STRIP: "strip_unsupported_format"}),
    ],
)  # fmt: skip
def test_made_files(name: str, mime: str, expected: dict[Op, str], exiftool: ExifTool) -> None:
    data = MADE[name]
    assert sniff(data).mime == mime
    assert {op: outcome(op, data, exiftool) for op in expected} == expected


@pytest.mark.parametrize(
    ("name", "group", "container", "warned"),
    [("mp3", "MPEG", "mp3", False), ("mp3-headers", "MPEG", None, True), ("aiff", "AIFF", "aiff", False),
     ("wmv", "ASF", "asf", False), ("zip", "ZIP", None, False)],
)  # fmt: skip
def test_made_files_documents(name: str, group: str, container: str | None, warned: bool, exiftool: ExifTool) -> None:
    doc = extract_metadata(MADE[name], name, exiftool)
    assert group in doc["other"]
    assert (doc["av"] or {}).get("container") == container
    # An audio decoder failing on a file exiftool reads is a warning in the document, never the op's end.
    assert [w["reader"] for w in doc["warnings"]] == (["PyAV"] if warned else [])


def test_the_table_says_what_each_op_does() -> None:
    assert ACCEPTS.get(Op.METADATA) is None
    assert {"image/jpeg", "image/png", "image/heic"} <= ACCEPTS[Op.PHASH]
    assert "audio/aiff" not in ACCEPTS[Op.PHASH] and "application/pdf" not in ACCEPTS[Op.STRIP]


def test_a_file_no_op_takes_is_refused_naming_the_type_and_what_each_op_takes() -> None:
    with pytest.raises(UnsupportedMedia) as refused:
        check_accepted(sniff(MADE["zip"]), [Op.PHASH, Op.STRIP])
    message = refused.value.message
    assert refused.value.code == "unsupported_media"
    assert message.startswith("the file is application/zip (.zip), which no op of the job takes: phash takes ")
    assert "; strip takes image/gif, image/heic" in message


def test_a_file_one_op_takes_is_not_refused() -> None:
    check_accepted(sniff(MADE["aiff"]), [Op.PHASH, Op.METADATA])


def _form(data: bytes, ops: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename="upload", content_type="application/octet-stream")
    body.add_field("ops", ops)
    return body


@pytest.mark.parametrize(
    ("name", "ops", "status"),
    [("mp3", "metadata", "completed"), ("zip", "metadata", "completed"), ("aiff", "metadata,phash", None)],
)
async def test_end_to_end(api, name: str, ops: str, status: str | None) -> None:
    async with api.post("/v1/jobs", data=_form(MADE[name], ops)) as response:
        assert response.status == 202, await response.text()
        job = await poll_job(api, (await response.json())["job_id"])
    if status is None:
        # phash cannot take AIFF, which metadata can: phash fails inside the job with its own code (whether
        # the job then ends failed or partial is the per-op outcome's rule).
        assert job["error"]["code"] == "phash_unsupported_format", job
        assert "audio/aiff" in job["error"]["message"]
    else:
        assert job["status"] == status, job
        assert job["result"]["metadata"]["file"]["mime"] == sniff(MADE[name]).mime


async def test_end_to_end_refusal(api) -> None:
    async with api.post("/v1/jobs", data=_form(MADE["zip"], "phash,strip")) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (415, "unsupported_media")
    assert "application/zip" in body["error"]


async def test_end_to_end_every_sample_through_metadata_is_answered(api) -> None:
    """A smaller check through the API than test_metadata.py's: one job per format family, none 5xx."""
    picks = [SAMPLES / "README.md", SAMPLES / "exiftool-formats" / "PDF.pdf", SAMPLES / "exiftool-formats" / "TNEF.tnef",
             SAMPLES / "exiftool-formats" / "Pentax.avi"]  # fmt: skip
    expected = ["completed", "completed", "failed", "completed"]
    jobs = []
    for path in picks:
        async with api.post("/v1/jobs", data=_form(path.read_bytes(), "metadata")) as response:
            assert response.status == 202, await response.text()
            jobs.append((await response.json())["job_id"])
    finished = [await poll_job(api, job_id) for job_id in jobs]
    assert [job["status"] for job in finished] == expected
    assert finished[2]["error"]["code"] == "unsupported_format"

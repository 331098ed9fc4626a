"""Drop-in routes of the media metadata API (reference 003, the No-Code Architects toolkit's envelope).

``POST /v1/media/metadata`` runs a native metadata job on ``media_url`` and answers 200 with the
documented ``response`` fields when the job ends within ``MEDIALANE_MEDIA_METADATA_WAIT_SECONDS``,
else 202 queued; ``POST /v1/toolkit/job/status`` answers a job's status in the toolkit's envelope.
The document names both ``/v1/...`` (its example) and ``/paid/...`` (its endpoint headings) paths, so
both are served. docs/compat.md lists every choice made where the document is silent.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from importlib.metadata import version
from typing import Any

from aiohttp import web

from ingest import auth, jobs, keys
from ingest.compat import failure, other_failures, settled
from ingest.parsing import Submission, read_callback, read_json_object, url_name
from schemas.errors import MalformedRequest, MedialaneError, NotFound
from schemas.messages import Op, OpOptions, Status
from schemas.views import JobView

DIALECT = "media_metadata"
METADATA_ENDPOINT = "/v1/media/metadata"
STATUS_ENDPOINT = "/v1/toolkit/job/status"
PID = os.getpid()
# The toolkit numbers its in-process queues; medialane has one queue, the Kafka topic.
QUEUE_ID = 0
BUILD_NUMBER = version("medialane")
# The toolkit has no failure state: a failed job is done, its answer carrying the error.
JOB_STATUS = {Status.QUEUED: "queued", Status.PROCESSING: "running", Status.COMPLETED: "done", Status.FAILED: "done"}
MEBI = 1024 * 1024


# --- the response fields, from the native metadata document ------------------------------------


def media_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The documented ``response`` object of a metadata document (media/metadata.py).

    A field whose value is unknown is left out, as the reference leaves out the video fields of an audio
    file: the first video stream that is not cover art gives the video fields, the first audio stream
    the audio ones. An image has no ``av`` section: its format and size come from the ``image`` section.
    """
    size = document["file"]["size"]
    fields: dict[str, Any] = {"filesize": size, "filesize_mb": round(size / MEBI, 2)}
    av = document["av"]
    if av is None:
        return fields | image_fields(document["image"], document["file"]["extension"])
    if av["duration"] is not None:
        fields |= {"duration": av["duration"], "duration_formatted": clock(av["duration"])}
    fields["format"] = av["container"]
    if av["bitrate"]:
        fields |= {"overall_bitrate": av["bitrate"], "overall_bitrate_mbps": round(av["bitrate"] / 1e6, 2)}
    video = next((s for s in av["streams"] if s["type"] == "video" and not s.get("attachedPicture")), None)
    audio = next((s for s in av["streams"] if s["type"] == "audio"), None)
    fields["has_video"] = video is not None
    if video is not None:
        fields |= video_fields(video)
    fields["has_audio"] = audio is not None
    if audio is not None:
        fields |= audio_fields(audio)
    return fields


def image_fields(image: dict[str, Any], extension: str) -> dict[str, Any]:
    # A camera RAW's format is exiftool's file type, which it may not know.
    fields: dict[str, Any] = {"format": (image["format"] or extension).lower(), "has_video": False, "has_audio": False}
    if image["width"] and image["height"]:
        fields |= dimensions(image["width"], image["height"])
    return fields


def video_fields(stream: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"video_codec": stream["codec"], "video_codec_long": stream["codecLongName"]}
    if stream["width"] and stream["height"]:
        fields |= dimensions(stream["width"], stream["height"])
    if stream["fps"]:
        fields["fps"] = round(stream["fps"], 2)
    if stream["bitrate"]:
        fields |= {"video_bitrate": stream["bitrate"], "video_bitrate_mbps": round(stream["bitrate"] / 1e6, 2)}
    if stream["pixelFormat"]:
        fields["pixel_format"] = stream["pixelFormat"]
    return fields


def audio_fields(stream: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"audio_codec": stream["codec"], "audio_codec_long": stream["codecLongName"]}
    if stream["channels"]:
        fields["audio_channels"] = stream["channels"]
    if stream["sampleRate"]:
        rate = stream["sampleRate"]
        fields |= {"audio_sample_rate": rate, "audio_sample_rate_khz": round(rate / 1000, 1)}
    if stream["bitrate"]:
        fields |= {"audio_bitrate": stream["bitrate"], "audio_bitrate_kbps": round(stream["bitrate"] / 1000)}
    return fields


def dimensions(width: int, height: int) -> dict[str, Any]:
    return {"width": width, "height": height, "resolution": f"{width}x{height}"}


def clock(seconds: float) -> str:
    """``HH:MM:SS.ss``, as the document's ``duration_formatted`` ("00:01:27.46")."""
    centis = round(seconds * 100)
    minutes, centis = divmod(centis, 6000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}"


# --- envelopes ----------------------------------------------------------------------------------


def envelope(code: int, job_id: str | None, client_id: str | None, **fields: Any) -> dict[str, Any]:
    """The toolkit's envelope around every answer: the process and queue fields clients may log."""
    return {"code": code, "id": client_id, "job_id": job_id, **fields, "pid": PID, "queue_id": QUEUE_ID,
            "queue_length": 0, "build_number": BUILD_NUMBER}  # fmt: skip


def seconds_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)


def job_answer(view: JobView) -> tuple[int, dict[str, Any]]:
    """What ``POST /v1/media/metadata`` answers for the job as it stands: its HTTP status and body.

    The toolkit's own timing splits queue and run time; a medialane job is consumed as soon as it is
    published, so all of its time is run time.
    """
    status = settled(view, Op.METADATA)
    if status is Status.COMPLETED:
        elapsed = seconds_between(view.created_at, view.updated_at)
        # The toolkit has no partial state: other ops that failed are told in its message field.
        errors = other_failures(view, Op.METADATA)
        return 200, envelope(200, view.job_id, view.id, response=media_fields(view.result[Op.METADATA]),
                             message=f"success; {errors}" if errors else "success", run_time=elapsed, queue_time=0,
                             total_time=elapsed)  # fmt: skip
    if status is Status.FAILED:
        error = failure(view, Op.METADATA)
        message = f"Error extracting metadata: {error.message}"
        return error.status, envelope(error.status, view.job_id, view.id, message=message)
    return 202, envelope(202, view.job_id, view.id, message="processing", max_queue_length="unlimited")


def status_answer(view: JobView, request_id: str | None, run_time: float) -> dict[str, Any]:
    """The status route's body: the job's state and, once it ended, the answer its POST would have had."""
    ended = view.status.terminal
    answer = {"endpoint": METADATA_ENDPOINT, **job_answer(view)[1]} if ended else None
    job = {"job_status": JOB_STATUS[settled(view, Op.METADATA)], "job_id": view.job_id, "queue_id": QUEUE_ID, "process_id": PID,
           "response": answer}  # fmt: skip
    return {"endpoint": STATUS_ENDPOINT, **envelope(200, view.job_id, request_id, response=job, message="success",
                                                    run_time=run_time, queue_time=0.0, total_time=run_time)}  # fmt: skip


def render_error(error: MedialaneError) -> web.Response:
    return web.json_response(envelope(error.status, None, None, message=error.message), status=error.status)


# --- requests -----------------------------------------------------------------------------------


def required_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedRequest(f"{field} is required: a non-empty string", field=field)
    return value


async def extract(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    media_url = required_text(body, "media_url")
    settings = request.app[keys.SETTINGS]
    callback = await read_callback(body, settings)
    submission = Submission([Op.METADATA], OpOptions(), url_name(media_url), url=media_url, callback=callback)
    status, answer = job_answer(await jobs.submit(request, submission, settings.media_metadata_wait_seconds))
    return web.json_response(answer, status=status)


async def job_status(request: web.Request) -> web.Response:
    started = time.monotonic()
    body = await read_json_object(request)
    job_id = required_text(body, "job_id")
    try:
        view = await request.app[keys.JOB_STATUS].lookup(job_id, request[auth.CALLER].key_id)
    except NotFound:
        view = None
    except MedialaneError as error:
        return web.json_response({"error": f"Failed to retrieve job status: {error.message}", "code": error.status},
                                 status=error.status)  # fmt: skip
    if view is None or Op.METADATA not in view.ops:
        return web.json_response({"error": "Job not found", "job_id": job_id}, status=404)
    run_time = round(time.monotonic() - started, 3)
    request_id = body.get("id") if isinstance(body.get("id"), str) else None
    return web.json_response(status_answer(view, request_id, run_time))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(METADATA_ENDPOINT, extract, name=f"{DIALECT}.metadata")
    router.add_post("/paid/media/metadata", extract, name=f"{DIALECT}.metadata_paid")
    router.add_post(STATUS_ENDPOINT, job_status, name=f"{DIALECT}.job_status")
    router.add_post("/paid/get/job/status", job_status, name=f"{DIALECT}.job_status_paid")

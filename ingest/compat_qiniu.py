"""Qiniu's ``?exif`` (reference 002): ``GET <file URL>?exif`` answers every EXIF tag of the file as
``{"<tag>": {"val": <human-readable value>, "type": <EXIF field type code>}}``.

Served on the files we serve: a job's original (``GET /v1/jobs/{job_id}/original``, which without
``?exif`` streams the original itself) and expiring download links (ingest/downloads.py). Tags are
named as libexif names them, which is what Qiniu's example shows (``ISOSpeedRatings``,
``PixelXDimension``, ``SubsecTime``); ``val`` is exiftool's printed value and ``type`` the stored field
type, both from the native metadata document.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from PIL.ExifTags import GPSTAGS, TAGS

from ingest import auth, keys
from ingest.compat import job_name, result_of, run_job, stored_bytes
from ingest.streaming import stream_object
from media.tiff import EXIF_IFD, GPS_IFD, INTEROP_IFD
from schemas.errors import MedialaneError
from schemas.messages import Op
from adapters.objects import original_key

# Directories in the order their tags win a name both use (IFD0's XResolution over the thumbnail's).
GROUPS = ("IFD0", "ExifIFD", "GPS", "InteropIFD", "IFD1")
# libexif lists the directories' contents, not the pointers that link them.
POINTER_TAGS = frozenset({EXIF_IFD, GPS_IFD, INTEROP_IFD})
# Where libexif's names differ from Pillow's table (which otherwise follows the EXIF specification).
LIBEXIF_NAMES = {
    0x0201: "JPEGInterchangeFormat",
    0x0202: "JPEGInterchangeFormatLength",
    0xA002: "PixelXDimension",
    0xA003: "PixelYDimension",
    0x9291: "SubSecTimeOriginal",
    0x9292: "SubSecTimeDigitized",
}
INTEROP_NAMES = {
    0x0001: "InteroperabilityIndex",
    0x0002: "InteroperabilityVersion",
    0x1000: "RelatedImageFileFormat",
    0x1001: "RelatedImageWidth",
    0x1002: "RelatedImageLength",
}

DIALECT = "qiniu"
# Pillow's names, where libexif (which Qiniu's answers follow) names a tag otherwise, libexif's.
EXIF_NAMES = TAGS | LIBEXIF_NAMES


def tag_name(group: str, tag_id: int) -> str:
    if group == "GPS":
        names = GPSTAGS
    elif group == "InteropIFD":
        names = INTEROP_NAMES
    else:
        names = EXIF_NAMES
    return names.get(tag_id) or f"0x{tag_id:04x}"


def exif_tags(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The native metadata document as Qiniu's ``?exif`` answer."""
    answer: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        for name, entry in document.get("ifds", {}).get(group, {}).items():
            qiniu_name = tag_name(group, entry["id"])
            if entry["id"] in POINTER_TAGS or qiniu_name in answer:
                continue
            printed = document["exif"].get(group, {}).get(name, {}).get("text")
            answer[qiniu_name] = {"val": readable(printed, entry), "type": entry["type"]}
    return answer


def readable(printed: Any, entry: dict[str, Any]) -> str:
    """exiftool's printed value; for what exiftool does not print (a raw maker note), the stored one."""
    if isinstance(printed, list):
        return ", ".join(str(item) for item in printed)
    if printed is not None:
        return str(printed)
    if entry["value"] is None:
        return f"{entry['count']} bytes undefined data"
    if isinstance(entry["value"], list):
        return " ".join(str(item) for item in entry["value"])
    return str(entry["value"])


def render_error(error: MedialaneError) -> web.Response:
    # Qiniu's error body: {"error": "<message>"} with the HTTP status.
    return web.json_response({"error": error.message}, status=error.status)


def exif_response(document: dict[str, Any]) -> web.Response:
    return web.json_response(exif_tags(document), headers={"Cache-Control": "no-store"})


async def metadata_of(request: web.Request, key: str, name: str) -> dict[str, Any]:
    """The metadata document of a stored object, from a native metadata job over a copy of it."""
    view = await run_job(request, [Op.METADATA], name, data=await stored_bytes(request, key))
    return result_of(view, Op.METADATA)


async def object_exif(request: web.Request, key: str, filename: str) -> web.Response:
    """``?exif`` on an expiring download link: the link names the file, the API key pays for the job."""
    await request.app[keys.GUARD].admit(request)
    return exif_response(await metadata_of(request, key, filename))


async def original(request: web.Request) -> web.StreamResponse:
    view = await request.app[keys.JOB_STATUS].lookup(request.match_info["job_id"], request[auth.CALLER].key_id)
    key, name = original_key(view.job_id), await job_name(request, view)
    if "exif" not in request.query:
        return await stream_object(request, key, name)
    if Op.METADATA in view.result:
        return exif_response(view.result[Op.METADATA])
    return exif_response(await metadata_of(request, key, name))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/jobs/{job_id}/original", original, name=f"{DIALECT}.original")

"""ImageKit's metadata API (reference 001): ``GET /v1/metadata?url=...`` answers the image's metadata
object: size and format facts, ``pHash`` (16 hex digits) and ``exif`` grouped as image / thumbnail /
exif / gps / interoperability / makernote with the stored values, numbers as numbers (ImageKit's
``ShutterSpeedValue`` 7.375 is the stored APEX value, its ``ThumbnailOffset`` counts from the TIFF
header), which is what the native document's ``ifds`` hold.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ingest.compat import client_status, result_of, run_job
from ingest.parsing import url_name
from schemas.errors import MalformedRequest, MedialaneError, UnsupportedMedia
from schemas.messages import Op

EXIF_GROUPS = {"image": "IFD0", "thumbnail": "IFD1", "exif": "ExifIFD", "gps": "GPS", "interoperability": "InteropIFD"}
# What ImageKit (libvips) reports for an image that declares no density.
DEFAULT_DENSITY = 72
HELP = "See docs/compat.md (ImageKit) of medialane."

DIALECT = "imagekit"


def metadata_object(document: dict[str, Any], phash: str) -> dict[str, Any]:
    """The native metadata document and pHash as ImageKit's metadata object."""
    image = document["image"]
    if image is None:
        raise UnsupportedMedia(f"{document['file']['mime']} is not an image", code="not_an_image")
    density = (image["density"] or {}).get("x")
    return {
        "height": image["height"],
        "width": image["width"],
        "size": document["file"]["size"],
        "format": document["file"]["extension"],
        "hasColorProfile": image["hasColorProfile"],
        "quality": image["quality"] or 0,
        "density": _number(density) if density else DEFAULT_DENSITY,
        "hasTransparency": image["hasTransparency"],
        "pHash": phash,
        "exif": exif_object(document),
    }


def exif_object(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Stored values by directory; binary values (None in the document) are left out, as ImageKit does."""
    ifds = document.get("ifds", {})
    groups = {
        name: {tag: entry["value"] for tag, entry in ifds.get(group, {}).items() if entry["value"] is not None}
        for name, group in EXIF_GROUPS.items()
    }
    groups["makernote"] = {
        tag: entry["value"] for tags in document["makernotes"].values() for tag, entry in tags.items()
    }
    return groups


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def render_error(error: MedialaneError) -> web.Response:
    # ImageKit's error body.
    return web.json_response({"message": error.message, "help": HELP}, status=client_status(error.status))


async def metadata(request: web.Request) -> web.Response:
    url = request.query.get("url")
    if not url:
        raise MalformedRequest("the url query parameter is required", code="missing_url", field="url")
    view = await run_job(request, [Op.METADATA, Op.PHASH], url_name(url), url=url)
    document = result_of(view, Op.METADATA)
    return web.json_response(metadata_object(document, result_of(view, Op.PHASH)["phash"]))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/metadata", metadata, name=f"{DIALECT}.metadata")

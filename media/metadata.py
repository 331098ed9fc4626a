"""The metadata document: one dict that every reference API's response can be derived from.

Shape (every key always present; ``image``, ``av`` and ``gps`` are None when they do not apply)::

    {
      "file": {"name", "size", "mime", "extension", "sha256"},
      "image": {"format", "width", "height", "mode", "bitDepth", "hasTransparency", "hasColorProfile",
                "colorSpace", "density": {"x", "y", "unit"}, "quality", "orientation", "progressive",
                "frameCount", "animated"},
      "av": {"container", "containerLongName", "duration", "bitrate", "streams": [
                {"index", "type", "codec", "codecLongName", "profile", "duration", "bitrate",
                 "width", "height", "fps", "pixelFormat", "channels", "sampleRate", "attachedPicture"}]},
      "gps": {"latitude", "longitude", "altitude"},
      "exif" | "iptc" | "xmp" | "icc" | "makernotes" | "composite" | "other": {
          <exiftool family-1 group, e.g. "IFD0", "ExifIFD", "GPS", "Canon", "XMP-dc">: {
              <tag>: {"value": 0.00625, "text": "1/160"}}},
      "ifds": {"IFD0" | "IFD1" | "ExifIFD" | "GPS" | "InteropIFD": {
              <tag>: {"id": 33434, "type": 5, "count": 1, "value": 0.00625}}},
      "warnings": [{"reader": "Pillow" | "PyAV" | "structure", "message"}]
    }

``value`` is exiftool's machine-readable value (``-n``), ``text`` its human-readable one. Sections
follow exiftool's family-0 group: EXIF, IPTC, XMP, ICC_Profile, MakerNotes and Composite get their
own section, everything else (File, JFIF, PNG, QuickTime, ExifTool warnings...) goes to ``other``;
exiftool's System group describes our temp file and is left out. Binary values stay exiftool's
placeholder, "(Binary data 1378 bytes, use -b option to extract)", so no blob reaches the document.

``ifds`` holds the EXIF directories as stored (media/tiff.py): the EXIF field type of each
tag and its raw value (APEX units, offsets from the TIFF header), which exiftool does not report; it
is empty for files Pillow does not open (camera RAW, video, audio).

Readers degrade: exiftool reads any file it knows; when Pillow or PyAV cannot decode one, the document
keeps exiftool's groups (``image`` then comes from exiftool's tags) and ``warnings`` holds the decoder's
complaint, as it holds a structural problem (a missing end marker, a box past the end of the file). Only a
file that no reader understands fails: ``unsupported_format`` when exiftool does not know its type,
``corrupt_media`` when it knows the type but cannot read the file.

Every reference shape is a projection of this one: ImageKit's exif.image / exif.exif / exif.gps take
the stored ``value`` from ``ifds`` IFD0 / ExifIFD / GPS, exiftools.com's groups take ``text``, Qiniu's
``val`` is ``text`` and its ``type`` the stored field type.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from PIL import Image

from media.exiftool_port import Exiftool
from media.images import open_image
from media.media_type import MediaType, check_media, truncation
from media.tiff import exif_block, read_ifds
from schemas.errors import CorruptMedia, ExtractFailed, MedialaneError, TooLarge, UnsupportedFormat, UnsupportedMedia

PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF", "JPEG2000")
SECTIONS = {
    "EXIF": "exif",
    "IPTC": "iptc",
    "XMP": "xmp",
    "ICC_Profile": "icc",
    "MakerNotes": "makernotes",
    "Composite": "composite",
}
SECTION_NAMES = (*SECTIONS.values(), "other")
_BIT_DEPTHS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}
# Any mode not listed (RGB, RGBA, P...) is RGB.
_COLOR_SPACES = {"CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV"} | dict.fromkeys(
    ("1", "L", "LA", "La", "I", "I;16", "F"), "Gray"
)
_DENSITY_UNITS = {2: "inch", 3: "cm"}
# exiftool's names of the tags it reads but does not report (directory pointers, the raw maker note).
_IFD_TAG_NAMES = {0x8769: "ExifOffset", 0x8825: "GPSInfo", 0xA005: "InteropOffset", 0x927C: "MakerNote"}
# Where exiftool reports the sample precision: the JPEG frame header, PNG's IHDR, TIFF's IFD0.
_BIT_DEPTH_TAGS = (("other", "File", "BitsPerSample"), ("other", "PNG", "BitDepth"), ("exif", "IFD0", "BitsPerSample"))
# The example tables of the JPEG standard (Annex K), in natural order as Pillow reports them.
_STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
])  # fmt: skip
_STD_CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *[99] * 32,
])  # fmt: skip


def _libjpeg_tables() -> np.ndarray:
    """The (luminance, chrominance) tables libjpeg writes for quality 1..100, shape (100, 2, 64)."""
    quality = np.arange(1, 101)[:, None, None]
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    standard = np.stack([_STD_LUMINANCE, _STD_CHROMINANCE])[None]
    return np.clip((standard * scale + 50) // 100, 1, 255)


LIBJPEG_TABLES = _libjpeg_tables()


def extract_metadata(data: bytes, name: str, exiftool: Exiftool) -> dict[str, Any]:
    """The metadata document of ``data``; raises only the typed errors of schemas.errors."""
    media = check_media(data)
    try:
        return _document(data, name, media, exiftool)
    except MedialaneError:
        raise
    except Exception as exc:
        raise ExtractFailed(f"metadata extraction failed: {type(exc).__name__}: {exc}") from exc


def _document(data: bytes, name: str, media: MediaType, exiftool: Exiftool) -> dict[str, Any]:
    warnings: list[dict[str, str]] = []
    if problem := truncation(data, media):
        warnings.append({"reader": "structure", "message": f"the {media.mime} file is truncated or broken: {problem}"})
    with exiftool.reading(data, media.extension) as exiftool_tags:
        # What needs no tags runs while exiftool parses: Pillow, PyAV, hashing, the stored directories.
        opened = _degrading(warnings, "Pillow", _open_image, data) if _pillow_reads(media) else None
        av_info = _degrading(warnings, "PyAV", av_metadata, data) if media.family in ("video", "audio") else None
        file = file_metadata(data, name, media)
        stored = _degrading(warnings, "Pillow", stored_ifds, opened, data) if opened is not None else None
        tags = exiftool_tags()
    _refuse_unread(tags, media, decoded=opened is not None or av_info is not None)
    sections = group_tags(tags)
    image = _degrading(warnings, "Pillow", image_metadata, opened, sections) if opened is not None else None
    if image is None and media.family == "image":
        image = raw_image_metadata(sections)
    return {
        "file": file,
        "image": image,
        "av": av_info,
        "gps": gps_position(sections),
        **sections,
        "ifds": named_ifds(stored or {}, tags),
        "warnings": warnings,
    }


def _pillow_reads(media: MediaType) -> bool:
    return media.family == "image" and not _is_raw(media)


def _degrading(warnings: list[dict[str, str]], reader: str, read: Callable[..., Any], *args: Any) -> Any:
    """What ``read`` returns, or None with its complaint added to ``warnings``: a decoder failing on a file
    exiftool may still read does not end the op. Too many pixels is a refusal, not a complaint."""
    try:
        return read(*args)
    except TooLarge:
        raise
    except MedialaneError as exc:
        warnings.append({"reader": reader, "message": exc.message})
    # Decoders of untrusted bytes fail in many ways (OSError, ValueError, EOFError, struct.error...).
    except Exception as exc:  # noqa: BLE001
        warnings.append({"reader": reader, "message": f"{type(exc).__name__}: {exc}"})
    return None


def _refuse_unread(tags: dict[str, Any], media: MediaType, *, decoded: bool) -> None:
    """Fail a file no reader understands: exiftool reports an error and no decoder opened it."""
    error = tags.get("ExifTool:Error", {}).get("val")
    if error is None or decoded:
        return
    if error == "Unknown file type":
        raise UnsupportedFormat(f"exiftool does not know the format of this {media.mime} (.{media.extension}) file")
    raise CorruptMedia(f"the {media.mime} (.{media.extension}) file cannot be read: exiftool: {error}")


def stored_ifds(im: Image.Image, data: bytes) -> dict[str, dict[int, dict[str, Any]]]:
    tiff = exif_block(im, data)
    return read_ifds(tiff) if tiff is not None else {}


def named_ifds(
    stored: dict[str, dict[int, dict[str, Any]]], exiftool_json: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The stored EXIF directories, each tag named as exiftool names it in that group (joined on tag id)."""
    names = {}
    for key, tag in exiftool_json.items():
        parts = key.split(":")
        if len(parts) == 3 and parts[0] == "EXIF" and isinstance(tag.get("id"), int):
            names[parts[1], tag["id"]] = parts[2]
    return {
        group: {
            names.get((group, tag_id)) or _IFD_TAG_NAMES.get(tag_id) or f"0x{tag_id:04x}": {"id": tag_id, **entry}
            for tag_id, entry in entries.items()
        }
        for group, entries in stored.items()
    }


def file_metadata(data: bytes, name: str, media: MediaType) -> dict[str, Any]:
    return {
        "name": name,
        "size": len(data),
        "mime": media.mime,
        "extension": media.extension,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def group_tags(exiftool_json: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """exiftool's ``-G0:1 -l`` keys ("EXIF:ExifIFD:ExposureTime") sorted into sections and groups."""
    sections: dict[str, dict[str, dict[str, Any]]] = {section: {} for section in SECTION_NAMES}
    for key, tag in exiftool_json.items():
        parts = key.split(":")
        group = parts[1] if len(parts) == 3 else parts[0]
        if len(parts) < 2 or group == "System":
            continue
        section = sections[SECTIONS.get(parts[0], "other")]
        section.setdefault(group, {})[parts[-1]] = tag_entry(tag)
    return sections


def tag_entry(tag: dict[str, Any]) -> dict[str, Any]:
    text = tag.get("val")
    return {"value": tag.get("num", text), "text": text if isinstance(text, (list, dict)) else str(text)}


def tag_value(sections: dict[str, Any], section: str, group: str, tag: str) -> Any:
    return sections[section].get(group, {}).get(tag, {}).get("value")


def gps_position(sections: dict[str, Any]) -> dict[str, float | None] | None:
    """Decimal degrees and metres, signed (south, west, below sea level are negative).

    exiftool's Composite GPS tags already apply the N/S, E/W and above/below references, and combine
    EXIF, XMP and QuickTime sources.
    """
    latitude = tag_value(sections, "composite", "Composite", "GPSLatitude")
    longitude = tag_value(sections, "composite", "Composite", "GPSLongitude")
    if not isinstance(latitude, (int, float)) or not isinstance(longitude, (int, float)):
        return None
    altitude = tag_value(sections, "composite", "Composite", "GPSAltitude")
    return {
        "latitude": float(latitude),
        "longitude": float(longitude),
        "altitude": float(altitude) if isinstance(altitude, (int, float)) else None,
    }


def _is_raw(media: MediaType) -> bool:
    # Pillow would read a camera RAW's TIFF container and report its small preview as the image.
    return media.mime.startswith("image/x-")


def _open_image(data: bytes) -> Image.Image:
    try:
        return open_image(data, PILLOW_FORMATS)
    except UnsupportedMedia as exc:
        # check_media has recognised an image format already: bytes Pillow cannot identify are broken.
        raise CorruptMedia(f"the image cannot be read: {exc.__cause__}") from exc


def image_metadata(im: Image.Image, sections: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": im.format,
        "width": im.width,
        "height": im.height,
        "mode": im.mode,
        "bitDepth": im.info.get("bit_depth") or _bits_per_sample(sections) or _BIT_DEPTHS.get(im.mode, 8),
        "hasTransparency": "A" in im.mode or "a" in im.mode or "transparency" in im.info,
        "hasColorProfile": bool(im.info.get("icc_profile")),
        "colorSpace": _COLOR_SPACES.get(im.mode, "RGB"),
        "density": _density(im.info, sections),
        "quality": jpeg_quality(im.quantization) if hasattr(im, "quantization") else None,
        "orientation": _orientation(sections),
        "progressive": bool(im.info.get("progressive") or im.info.get("progression") or im.info.get("interlace")),
        "frameCount": getattr(im, "n_frames", 1),
        "animated": bool(getattr(im, "is_animated", False)),
    }


def raw_image_metadata(sections: dict[str, Any]) -> dict[str, Any]:
    """What exiftool knows of an image Pillow does not read (camera RAW, or a file Pillow fails on); the
    pixel-level fields stay None."""
    width, height = _composite_image_size(sections)
    return {
        "format": tag_value(sections, "other", "File", "FileType"),
        "width": width,
        "height": height,
        "mode": None,
        "bitDepth": _bits_per_sample(sections),
        "hasTransparency": False,
        "hasColorProfile": bool(sections["icc"]),
        "colorSpace": None,
        "density": _density({}, sections),
        "quality": None,
        "orientation": _orientation(sections),
        "progressive": False,
        "frameCount": 1,
        "animated": False,
    }


def _composite_image_size(sections: dict[str, Any]) -> tuple[int | None, int | None]:
    # exiftool prints ImageSize as "3456x2304" and, with -n, as "3456 2304".
    size = tag_value(sections, "composite", "Composite", "ImageSize")
    if not size:
        return None, None
    width, height = str(size).replace("x", " ").split()
    return int(float(width)), int(float(height))


def jpeg_quality(quantization: dict[int, list[int]]) -> int | None:
    """The libjpeg quality setting whose scaled standard tables are closest to the file's own.

    This is the estimate libjpeg-based tools (ImageMagick's ``%Q``) make; files written by libjpeg at
    quality q give back exactly q, camera firmware with custom tables gets the nearest equivalent.
    """
    tables = [np.asarray(quantization[i]) for i in sorted(quantization)[:2] if len(quantization[i]) == 64]
    if not tables:
        return None
    errors = sum(np.abs(LIBJPEG_TABLES[:, i, :] - table).sum(axis=1) for i, table in enumerate(tables))
    # Ties go to the highest quality: at the top of the scale several settings clip to all-ones tables.
    return int(100 - np.argmin(errors[::-1]))


def _bits_per_sample(sections: dict[str, Any]) -> int | None:
    for section, group, tag in _BIT_DEPTH_TAGS:
        value = tag_value(sections, section, group, tag)
        if value is not None:
            return int(str(value).split()[0])
    return None


def _density(info: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any] | None:
    if "dpi" in info:
        x, y = info["dpi"]
        return {"x": round(float(x), 2), "y": round(float(y), 2), "unit": "inch"}
    x = tag_value(sections, "exif", "IFD0", "XResolution")
    y = tag_value(sections, "exif", "IFD0", "YResolution")
    unit = tag_value(sections, "exif", "IFD0", "ResolutionUnit")
    if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
        return None
    return {"x": round(float(x), 2), "y": round(float(y), 2), "unit": _DENSITY_UNITS.get(unit)}


def _orientation(sections: dict[str, Any]) -> int | None:
    value = tag_value(sections, "exif", "IFD0", "Orientation") or tag_value(sections, "xmp", "XMP-tiff", "Orientation")
    return value if isinstance(value, int) else None


def av_metadata(data: bytes) -> dict[str, Any]:
    try:
        with av.open(io.BytesIO(data)) as container:
            return {
                "container": container.format.name,
                "containerLongName": container.format.long_name,
                "duration": container.duration / av.time_base if container.duration else None,
                "bitrate": container.bit_rate or None,
                "streams": [stream_metadata(stream) for stream in container.streams],
            }
    except av.FFmpegError as exc:
        raise CorruptMedia(f"the media cannot be read: {exc}") from exc


def stream_metadata(stream: av.stream.Stream) -> dict[str, Any]:
    codec = stream.codec_context
    video = stream.type == "video"
    audio = stream.type == "audio"
    return {
        "index": stream.index,
        "type": stream.type,
        "codec": codec.name,
        "codecLongName": codec.codec.long_name,
        "profile": codec.profile,
        "duration": float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None,
        "bitrate": stream.bit_rate or codec.bit_rate or None,
        "width": codec.width if video else None,
        "height": codec.height if video else None,
        "fps": float(stream.average_rate) if video and stream.average_rate else None,
        "pixelFormat": codec.pix_fmt if video else None,
        "channels": codec.channels if audio else None,
        "sampleRate": codec.sample_rate if audio else None,
        # Cover art travels as a one-frame video stream; an audio file with a cover is still audio only.
        "attachedPicture": bool(stream.disposition & av.stream.Disposition.attached_pic),
    }

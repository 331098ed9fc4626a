"""Metadata stripping: remove what describes a picture, never the picture.

``strip_metadata(data, keep, exiftool)`` removes EXIF (with GPS, maker notes and thumbnails), IPTC,
XMP, Photoshop resources, comments, text chunks and embedded preview images, without re-encoding:
every byte of coded image data is copied as it is, so the decoded pixels are identical.

What ``keep`` may hold (``KEEP_DEFAULT`` is orientation and icc):

- ``orientation``: the EXIF Orientation (1-8) is kept, alone in a new minimal EXIF block (IFD0 with
  Orientation, no other IFD), so the image still displays upright. HEIC/HEIF rotate through their
  ``irot``/``imir`` properties, which are part of the image and always stay.
- ``icc``: the ICC profile is kept, so colours stay as the author meant them.
- ``copyright``: the EXIF Copyright is kept in that same minimal block (PNG: also a text chunk with
  the registered keyword "Copyright"; MP4/MOV: the QuickTime Copyright).

Per format:

- JPEG (our segment walker): SOI, DQT, DHT, SOFn, DAC, DRI, SOS, the entropy-coded data, RSTn and EOI
  are copied byte for byte, as is every other non-APPn marker a codec defines. APP0 JFIF stays (without
  its thumbnail, if it has one), because decoders take its presence to mean YCbCr and it carries the
  pixel aspect ratio; APP14 Adobe always stays, because it selects the colour transform of RGB/CMYK/
  YCCK data; APP2 ICC_PROFILE chunks stay, all of them in order, when icc is kept. Every other APPn
  (Exif, XMP and extended XMP, JFXX thumbnails, MPF, FlashPix, Ducky, Photoshop/IPTC, JPS, JUMBF...)
  and COM go, including any between progressive scans. Bytes after EOI go too: that is where
  MPF second images, depth maps, gain maps and vendor trailers live, none needed for the image.
- PNG (our chunk walker): IHDR, PLTE, IDAT, IEND, the rendering chunks tRNS, gAMA, cHRM, sRGB, sBIT,
  pHYs, bKGD, cICP, mDCv, cLLi and APNG's acTL, fcTL, fdAT stay; iCCP stays when icc is kept; tEXt,
  zTXt, iTXt, eXIf, tIME and every other ancillary chunk go. Kept chunks must have a valid CRC
  (corrupt_media otherwise); only the chunks we build get a new one. An unknown critical chunk is
  refused (strip_unsupported_format): decoders must not ignore it, so we cannot tell it is not data.
- WebP (our chunk walker; the exiftool we require cannot write WebP): VP8, VP8L, ALPH, ANIM and ANMF
  stay, VP8X stays with its ICC/EXIF/XMP flags set to what remains, ICCP stays when icc is kept;
  EXIF, XMP and unknown chunks go.
- TIFF, HEIC/HEIF, GIF, MP4/MOV: exiftool ``-all=``, then ``-tagsfromfile @`` for what keep asks for.
  exiftool cannot delete what the format needs to decode: TIFF keeps its image-structure IFD0 tags,
  HEIC/HEIF keep their item properties (size, colour, rotation) and auxiliary images (thumbnail,
  depth and gain maps); MP4/MOV keep their movie, track and media headers: durations, dimensions,
  handler and codec names, and the creation and modification times in mvhd/tkhd/mdhd. Their
  metadata (ItemList, UserData, Keys, XMP, location) goes. Every result is read back with exiftool;
  anything left that keep did not ask for fails with strip_unsupported_format, never a partial clean.

Other formats fail with strip_unsupported_format. ``removed`` and ``kept`` name the groups that
were present: EXIF, GPS, MakerNotes, Thumbnail, XMP, IPTC, Photoshop, Comment, ICC_Profile,
Orientation, Copyright, MPF, FlashPix, Text, Trailer...
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from processors.exiftool import ExifTool
from processors.media_type import GIF, HEIC, HEIF, JPEG, MOV, MP4, PNG, TIFF, WEBP, MediaType, check_media
from schemas.errors import CorruptMedia, ExtractFailed, MedialaneError
from schemas.messages import DEFAULT_KEEP, KeepItem

KEEP_DEFAULT = frozenset(DEFAULT_KEEP)
KEPT_GROUPS = {KeepItem.ORIENTATION: "Orientation", KeepItem.ICC: "ICC_Profile", KeepItem.COPYRIGHT: "Copyright"}


class StripUnsupported(MedialaneError):
    """The file's format, or something in it, cannot be cleaned without re-encoding."""

    status, code = 422, "strip_unsupported_format"


@dataclass(frozen=True)
class StripResult:
    data: bytes
    format: str
    removed: list[str]
    kept: list[str]

    @property
    def size(self) -> int:
        return len(self.data)


def strip_metadata(data: bytes, keep: frozenset[str], exiftool: ExifTool) -> StripResult:
    """``data`` without its metadata (see the module docstring); raises only schemas.errors types."""
    media = check_media(data)
    if media is JPEG:
        return strip_jpeg(data, keep)
    if media is PNG:
        return strip_png(data, keep)
    if media is WEBP:
        return strip_webp(data, keep)
    if media in (TIFF, HEIC, HEIF, GIF, MP4, MOV):
        return _strip_with_exiftool(data, media, keep, exiftool)
    raise StripUnsupported(f"cannot strip metadata from {media.mime} (.{media.extension}) files")


@dataclass
class _Report:
    """What a stripper found, for StripResult's ``removed`` and ``kept``."""

    removed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    exif_chosen: bool = False

    def result(self, data: bytes, media: MediaType) -> StripResult:
        return StripResult(data, media.extension, sorted(self.removed - self.kept), sorted(self.kept))


# --- EXIF (TIFF structure), shared by JPEG, PNG and WebP -------------------------------------------

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_ORIENTATION, _COPYRIGHT, _EXIF_IFD, _GPS_IFD, _MAKER_NOTE = 0x0112, 0x8298, 0x8769, 0x8825, 0x927C


@dataclass(frozen=True)
class _Exif:
    """What stripping needs from an EXIF block: what to keep, and the groups it held."""

    order: str = ">"
    orientation: int | None = None
    copyright: tuple[int, int, bytes] | None = None
    groups: frozenset[str] = frozenset({"EXIF"})


def _read_exif(tiff: bytes) -> _Exif:
    """Lenient, like decoders: a broken block yields what could be read (at worst nothing to keep)."""
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return _Exif()
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        ifd0 = _ifd_entries(tiff, order, struct.unpack_from(order + "I", tiff, 4)[0])
    except (struct.error, ValueError):
        return _Exif(order)
    groups = {"EXIF"} if set(ifd0) - {_ORIENTATION, _COPYRIGHT, _GPS_IFD} else set()
    if _GPS_IFD in ifd0:
        groups.add("GPS")
    if _has_maker_note(tiff, order, ifd0.get(_EXIF_IFD)):
        groups.add("MakerNotes")
    if _next_ifd(tiff, order, struct.unpack_from(order + "I", tiff, 4)[0]):
        groups.add("Thumbnail")
    orientation = _orientation(tiff, order, ifd0.get(_ORIENTATION))
    copyright = _value(tiff, order, ifd0[_COPYRIGHT]) if _COPYRIGHT in ifd0 else None
    return _Exif(order, orientation, copyright, frozenset(groups))


def _ifd_entries(tiff: bytes, order: str, offset: int) -> dict[int, tuple[int, int, int]]:
    """An IFD's entries as {tag: (type, count, offset of the 4-byte value field)}."""
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    if offset + 2 + 12 * count > len(tiff):
        raise ValueError("IFD runs past the end")
    entries = {}
    for i in range(count):
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * i)
        entries.setdefault(tag, (kind, n, offset + 10 + 12 * i))
    return entries


def _value(tiff: bytes, order: str, entry: tuple[int, int, int]) -> tuple[int, int, bytes] | None:
    kind, count, field_at = entry
    size = _TYPE_SIZES.get(kind, 0) * count
    start = field_at if size <= 4 else struct.unpack_from(order + "I", tiff, field_at)[0]
    raw = tiff[start : start + size]
    return (kind, count, raw) if size and len(raw) == size else None


def _orientation(tiff: bytes, order: str, entry: tuple[int, int, int] | None) -> int | None:
    value = _value(tiff, order, entry) if entry else None
    if value is None or value[0] not in (3, 4):
        return None
    (number,) = struct.unpack_from(order + ("H" if value[0] == 3 else "I"), value[2])
    return number if 1 <= number <= 8 else None


def _has_maker_note(tiff: bytes, order: str, entry: tuple[int, int, int] | None) -> bool:
    if entry is None:
        return False
    try:
        (offset,) = struct.unpack_from(order + "I", tiff, entry[2])
        return _MAKER_NOTE in _ifd_entries(tiff, order, offset)
    except (struct.error, ValueError):
        return False


def _next_ifd(tiff: bytes, order: str, ifd0: int) -> int:
    try:
        (count,) = struct.unpack_from(order + "H", tiff, ifd0)
        return struct.unpack_from(order + "I", tiff, ifd0 + 2 + 12 * count)[0]
    except struct.error:
        return 0


def _minimal_exif(exif: _Exif, keep: frozenset[str], report: _Report) -> bytes | None:
    """A TIFF block whose IFD0 holds only the kept Orientation and Copyright, or None when there are none."""
    entries = []
    if exif.orientation is not None:
        if "orientation" in keep:
            entries.append((_ORIENTATION, (3, 1, struct.pack(exif.order + "H", exif.orientation))))
            report.kept.add("Orientation")
        else:
            report.removed.add("Orientation")
    if exif.copyright is not None:
        if "copyright" in keep:
            entries.append((_COPYRIGHT, exif.copyright))
            report.kept.add("Copyright")
        else:
            report.removed.add("Copyright")
    report.removed |= exif.groups
    return _tiff_block(exif.order, entries) if entries else None


def _tiff_block(order: str, entries: list[tuple[int, tuple[int, int, bytes]]]) -> bytes:
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    data_at = 8 + 2 + 12 * len(entries) + 4
    ifd, values = [struct.pack(order + "H", len(entries))], []
    for tag, (kind, count, raw) in entries:
        if len(raw) <= 4:
            field_bytes = raw.ljust(4, b"\x00")
        else:
            field_bytes = struct.pack(order + "I", data_at)
            values.append(raw + b"\x00" * (len(raw) % 2))
            data_at += len(values[-1])
        ifd.append(struct.pack(order + "HHI", tag, kind, count) + field_bytes)
    return header + b"".join(ifd) + struct.pack(order + "I", 0) + b"".join(values)


# --- JPEG ------------------------------------------------------------------------------------------

_SOI, _EOI, _SOS, _COM, _APP0, _APP1, _APP2, _APP14 = 0xD8, 0xD9, 0xDA, 0xFE, 0xE0, 0xE1, 0xE2, 0xEE
_EXIF_ID, _JFIF_ID, _ICC_ID, _ADOBE_ID = b"Exif\x00", b"JFIF\x00", b"ICC_PROFILE\x00", b"Adobe"
_JPEG_NAMES = (
    (_APP0, b"JFXX\x00", "Thumbnail"),
    (_APP1, b"http://ns.adobe.com/xap/1.0/\x00", "XMP"),
    (_APP1, b"http://ns.adobe.com/xmp/extension/\x00", "XMP"),
    (_APP2, b"MPF\x00", "MPF"),
    (_APP2, b"FPXR\x00", "FlashPix"),
    (0xEC, b"Ducky", "Ducky"),
    (0xED, b"Photoshop 3.0\x00", "Photoshop"),
)
# An entropy-coded segment ends at the first 0xFF that is neither stuffing (FF 00) nor a restart
# marker (FF D0-D7); a run of FF fill bytes before a marker stays with the data it follows.
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# SOFn/DHT/DAC, SOS/DQT/DNL/DRI/DHP/EXP, APPn, the JPGn extensions and COM. The rest (the reserved
# 0x02-0xBF, a second SOI) is what an FF byte in broken scan data looks like to a walker.
_SEGMENTS = frozenset({*range(0xC0, 0xD0), *range(0xDA, 0xFF)})


def strip_jpeg(data: bytes, keep: frozenset[str]) -> StripResult:
    if data[:2] != b"\xff\xd8":
        raise CorruptMedia("JPEG does not start with SOI")
    report = _Report()
    out: list[bytes | memoryview] = [b"\xff\xd8"]
    view = memoryview(data)
    pos = 2
    while True:
        pos, marker = _next_marker(data, pos)
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            out.append(view[pos - 2 : pos])
            continue
        if marker not in _SEGMENTS:
            raise CorruptMedia(f"JPEG has an invalid marker FF{marker:02X} at offset {pos - 2}")
        end = _segment_end(data, pos)
        if 0xE0 <= marker <= 0xEF or marker == _COM:
            out.extend(_app_segment(data, pos - 2, end, keep, report))
        else:
            out.append(view[pos - 2 : end])
        if marker == _SOS:
            report.exif_chosen = True
            found = _MARKER_AFTER_SCAN.search(data, end)
            if found is None:
                raise CorruptMedia("JPEG scan data has no end-of-image marker")
            out.append(view[end : found.start()])
            end = found.start()
        pos = end
    out.append(b"\xff\xd9")
    if data[pos:].strip(b"\x00"):
        report.removed.add("Trailer")
    return report.result(b"".join(out), JPEG)


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    """(position after the marker, marker byte), skipping fill bytes and, like libjpeg, stray bytes."""
    while pos + 1 < len(data):
        if data[pos] == 0xFF and data[pos + 1] not in (0x00, 0xFF):
            return pos + 2, data[pos + 1]
        pos += 1
    raise CorruptMedia("JPEG ends before its end-of-image marker")


def _segment_end(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise CorruptMedia("JPEG ends inside a segment header")
    length = (data[pos] << 8) | data[pos + 1]
    if length < 2 or pos + length > len(data):
        raise CorruptMedia(f"JPEG segment at offset {pos - 2} has an impossible length {length}")
    return pos + length


def _app_segment(data: bytes, start: int, end: int, keep: frozenset[str], report: _Report) -> list[bytes]:
    """What replaces an APPn or COM segment in the output: itself, a minimal rebuild, or nothing."""
    marker, payload = data[start + 1], data[start + 4 : end]
    if marker == _APP14 and payload.startswith(_ADOBE_ID):
        return [data[start:end]]
    if marker == _APP0 and payload.startswith(_JFIF_ID):
        return [_jfif_without_thumbnail(data[start:end], report)]
    if marker == _APP2 and payload.startswith(_ICC_ID):
        (report.kept if "icc" in keep else report.removed).add("ICC_Profile")
        return [data[start:end]] if "icc" in keep else []
    if marker == _APP1 and payload.startswith(_EXIF_ID):
        return _exif_segment(payload[6:], keep, report)
    report.removed.add(_jpeg_segment_name(marker, payload))
    if marker == 0xED and b"8BIM\x04\x04" in payload:
        report.removed.add("IPTC")
    return []


def _jfif_without_thumbnail(segment: bytes, report: _Report) -> bytes:
    # The JFIF header is 18 bytes, its last two the thumbnail's size; what follows is the thumbnail.
    if len(segment) <= 18:
        return segment
    if segment[16:18] != b"\x00\x00":
        report.removed.add("Thumbnail")
    return b"\xff\xe0\x00\x10" + segment[4:16] + b"\x00\x00"


def _exif_segment(tiff: bytes, keep: frozenset[str], report: _Report) -> list[bytes]:
    # Decoders read orientation from the first Exif segment before the first scan only.
    if report.exif_chosen:
        report.removed.add("EXIF")
        return []
    report.exif_chosen = True
    block = _minimal_exif(_read_exif(tiff), keep, report)
    if block is None:
        return []
    return [b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(block)) + _EXIF_ID + b"\x00" + block]


def _jpeg_segment_name(marker: int, payload: bytes) -> str:
    if marker == _COM:
        return "Comment"
    for app, prefix, name in _JPEG_NAMES:
        if marker == app and payload.startswith(prefix):
            return name
    return f"APP{marker - _APP0}"


# --- PNG -------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_RENDERING = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD",
     b"cICP", b"mDCv", b"cLLi", b"acTL", b"fcTL", b"fdAT"}
)  # fmt: skip
_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_TEXT_NAMES = {
    b"Comment": "Comment",
    b"XML:com.adobe.xmp": "XMP",
    b"Raw profile type exif": "EXIF",
    b"Raw profile type APP1": "EXIF",
    b"Raw profile type iptc": "IPTC",
    b"Raw profile type xmp": "XMP",
    b"Raw profile type 8bim": "Photoshop",
}


def strip_png(data: bytes, keep: frozenset[str]) -> StripResult:
    if not data.startswith(_PNG_SIGNATURE):
        raise CorruptMedia("not a PNG signature")
    report = _Report()
    view = memoryview(data)
    out: list[bytes | memoryview] = [_PNG_SIGNATURE]
    for kind, start, end in _png_chunks(data):
        if _keeps_png_chunk(kind, data[start + 8 : end - 4], keep, report):
            if zlib.crc32(view[start + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
                raise CorruptMedia(f"PNG {kind.decode('latin-1')} chunk at offset {start} has a wrong CRC")
            out.append(view[start:end])
        elif kind == b"eXIf":
            block = _minimal_exif(_read_exif(data[start + 8 : end - 4]), keep, report)
            if block is not None:
                out.append(_png_chunk(b"eXIf", block))
    if data[end:].strip(b"\x00"):
        report.removed.add("Trailer")
    return report.result(b"".join(out), PNG)


def _png_chunks(data: bytes) -> Iterable[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk up to IEND; the first must be IHDR."""
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise CorruptMedia("PNG ends before its IEND chunk")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length
        if end > len(data) or length > 0x7FFFFFFF:
            raise CorruptMedia(f"PNG chunk at offset {pos} runs past the end of the file")
        if pos == len(_PNG_SIGNATURE) and kind != b"IHDR":
            raise CorruptMedia("PNG does not start with IHDR")
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def _keeps_png_chunk(kind: bytes, body: bytes, keep: frozenset[str], report: _Report) -> bool:
    if kind in _PNG_RENDERING:
        return True
    if not kind[:1].islower():
        raise StripUnsupported(f"PNG has an unknown critical chunk {kind!r}: it may be needed to decode")
    if kind == b"iCCP":
        (report.kept if "icc" in keep else report.removed).add("ICC_Profile")
        return "icc" in keep
    if kind in _PNG_TEXT:
        keyword = body.split(b"\x00", 1)[0]
        if keyword == b"Copyright":
            (report.kept if "copyright" in keep else report.removed).add("Copyright")
            return "copyright" in keep
        report.removed.add(_PNG_TEXT_NAMES.get(keyword, "Text"))
    elif kind == b"tIME":
        report.removed.add("ModifyDate")
    elif kind != b"eXIf":
        report.removed.add(kind.decode("latin-1"))
    return False


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# --- WebP ------------------------------------------------------------------------------------------

_WEBP_IMAGE = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"})
_VP8X_ICC, _VP8X_EXIF, _VP8X_XMP = 0x20, 0x08, 0x04


def strip_webp(data: bytes, keep: frozenset[str]) -> StripResult:
    report = _Report()
    chunks: list[tuple[bytes, bytes]] = []
    for kind, body in _riff_chunks(data):
        if kind in _WEBP_IMAGE or kind == b"VP8X" or (kind == b"ICCP" and "icc" in keep):
            chunks.append((kind, body))
        elif kind == b"EXIF":
            tiff = body[6:] if body.startswith(b"Exif\x00\x00") else body
            block = _minimal_exif(_read_exif(tiff), keep, report)
            if block is not None:
                chunks.append((kind, block))
        else:
            report.removed.add({b"ICCP": "ICC_Profile", b"XMP ": "XMP"}.get(kind, kind.decode("latin-1").strip()))
    present = {kind for kind, _ in chunks}
    if b"ICCP" in present:
        report.kept.add("ICC_Profile")
    body = b"WEBP" + b"".join(
        _riff_chunk(kind, _vp8x_flags(body, present) if kind == b"VP8X" else body) for kind, body in chunks
    )
    return report.result(b"RIFF" + struct.pack("<I", len(body)) + body, WEBP)


def _riff_chunks(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise CorruptMedia("not a RIFF WEBP header")
    end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    pos = 12
    while pos + 8 <= end:
        kind, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > end:
            raise CorruptMedia(f"WebP chunk {kind!r} at offset {pos} runs past the end of the file")
        yield kind, data[pos + 8 : pos + 8 + size]
        pos += 8 + size + size % 2


def _vp8x_flags(body: bytes, present: set[bytes]) -> bytes:
    """VP8X with its ICC, EXIF and XMP flags saying what the cleaned file holds."""
    if not body:
        raise CorruptMedia("WebP VP8X chunk is empty")
    flags = body[0] & ~(_VP8X_ICC | _VP8X_EXIF | _VP8X_XMP)
    flags |= (_VP8X_ICC if b"ICCP" in present else 0) | (_VP8X_EXIF if b"EXIF" in present else 0)
    return bytes([flags]) + body[1:]


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) % 2)


# --- exiftool formats ------------------------------------------------------------------------------

_EXIFTOOL_COPIES = (("icc", "ICC_Profile"), ("orientation", "Orientation"), ("copyright", "Copyright"))
# exiftool's -all= cannot delete IFD0 from a TIFF and so leaves its descriptive tags; named one by one
# they go. GeoTIFF's tags place the raster on Earth.
_TIFF_DESCRIPTIVE = (
    "DocumentName", "ImageDescription", "Make", "Model", "PageName", "Software", "ModifyDate", "Artist",
    "HostComputer", "Copyright", "Orientation", "GeoTiffDirectory", "GeoTiffDoubleParams",
    "GeoTiffAsciiParams", "ModelTiePoint", "PixelScale", "ModelTransform",
)  # fmt: skip


def _strip_with_exiftool(data: bytes, media: MediaType, keep: frozenset[str], exiftool: ExifTool) -> StripResult:
    before = metadata_groups(exiftool.extract(data, media.extension))
    try:
        cleaned = exiftool.write(data, media.extension, *_exiftool_args(media, keep))
    except ExtractFailed as exc:
        if exc.code != "write_failed":
            raise
        raise StripUnsupported(f"exiftool cannot rewrite this {media.mime} file") from exc
    after = metadata_groups(exiftool.extract(cleaned, media.extension))
    left = after - {KEPT_GROUPS[option] for option in keep}
    if left:
        raise StripUnsupported(f"exiftool cannot remove {', '.join(sorted(left))} from this {media.mime} file")
    if media in (HEIC, HEIF) and "orientation" in keep:
        # irot/imir, which stay, turn the image upright; the EXIF Orientation only repeats them.
        after |= before & {"Orientation"}
    return StripResult(cleaned, media.extension, sorted(before - after), sorted(after))


def _exiftool_args(media: MediaType, keep: frozenset[str]) -> list[str]:
    copies = [tag for option, tag in _EXIFTOOL_COPIES if option in keep]
    if media in (HEIC, HEIF):
        # Readers must ignore a HEIF's EXIF Orientation, and a new EXIF item would get exiftool's
        # mandatory tags (resolution, YCbCrPositioning...) with it.
        copies = [tag for tag in copies if tag != "Orientation"]
    args = ["-all="]
    if media is TIFF:
        args += [f"-IFD0:{tag}=" for tag in _TIFF_DESCRIPTIVE if tag not in copies]
    if copies:
        args += ["-tagsfromfile", "@", *(f"-{tag}" for tag in copies)]
    return args


# --- what exiftool reports -------------------------------------------------------------------------

_NOT_METADATA = frozenset({"File", "System", "ExifTool", "Composite", "JFIF", "APP14", "RIFF", "GIF", "QuickTime"})
# An HDR gain map's XMP (iPhone HEIC) tells how to render the gain map image, which is part of the
# picture and which exiftool cannot remove; the toolkit name is in every XMP packet.
_XMP_RENDERING = frozenset({"XMP-HDRGainMap", "XMP-x"})
_QUICKTIME_METADATA = frozenset({"ItemList", "UserData", "Keys"})
_THUMBNAILS = frozenset({"ThumbnailImage", "ThumbnailTIFF", "PreviewImage", "OtherImage", "JpgFromRaw"})
# The tags exiftool keeps because the image cannot be decoded without them (TIFF IFD0, PNG IHDR and
# the rendering chunks): structure, not metadata.
_TIFF_STRUCTURE = frozenset(
    {"SubfileType", "OldSubfileType", "ImageWidth", "ImageHeight", "BitsPerSample", "Compression",
     "PhotometricInterpretation", "Thresholding", "FillOrder", "StripOffsets", "SamplesPerPixel",
     "RowsPerStrip", "StripByteCounts", "PlanarConfiguration", "Predictor", "ColorMap", "TileWidth",
     "TileLength", "TileOffsets", "TileByteCounts", "ExtraSamples", "SampleFormat", "JPEGTables",
     "YCbCrCoefficients", "YCbCrSubSampling", "YCbCrPositioning", "ReferenceBlackWhite", "XResolution",
     "YResolution", "ResolutionUnit", "T4Options", "T6Options", "InkSet", "TransferFunction",
     "WhitePoint", "PrimaryChromaticities", "SMinSampleValue", "SMaxSampleValue", "MinSampleValue",
     "MaxSampleValue"}
)  # fmt: skip
_PNG_STRUCTURE = frozenset(
    {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace",
     "Palette", "Transparency", "Gamma", "WhitePointX", "WhitePointY", "RedX", "RedY", "GreenX",
     "GreenY", "BlueX", "BlueY", "SRGBRendering", "SignificantBits", "PixelsPerUnitX",
     "PixelsPerUnitY", "PixelUnits", "BackgroundColor", "AnimationFrames", "AnimationPlays",
     "ProfileName", "ColorPrimaries", "TransferCharacteristics", "MatrixCoefficients",
     "VideoFullRangeFlag"}
)  # fmt: skip


def metadata_groups(exiftool_json: dict[str, Any]) -> set[str]:
    """The metadata groups (EXIF, GPS, XMP, Orientation...) in exiftool's ``-G0:1`` JSON of one file."""
    groups = set()
    for key in exiftool_json:
        parts = key.split(":")
        group = _metadata_group(parts[0], parts[1] if len(parts) == 3 else parts[0], parts[-1])
        if len(parts) >= 2 and group is not None:
            groups.add(group)
    return groups


def _metadata_group(family0: str, family1: str, tag: str) -> str | None:
    if family0 == "Composite":
        return None
    if tag == "Orientation" and family0 == "EXIF":
        return "Orientation"
    if tag == "Copyright" and family0 in ("EXIF", "PNG", "QuickTime"):
        return "Copyright"
    if family1 == "GPS" or tag.startswith("GPS"):
        return "GPS"
    if tag in _THUMBNAILS or family1 == "IFD1":
        return "Thumbnail"
    if tag == "Comment":
        return "Comment"
    if family0 == "EXIF":
        return None if family1 == "IFD0" and tag in _TIFF_STRUCTURE else "EXIF"
    if family0 == "XMP" and family1 in _XMP_RENDERING:
        return None
    if family0 == "PNG":
        return None if tag in _PNG_STRUCTURE else "Text"
    if family0 == "QuickTime" and family1 in _QUICKTIME_METADATA:
        return family1
    return None if family0 in _NOT_METADATA else family0

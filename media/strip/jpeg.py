"""JPEG stripping, by our segment walker.

SOI, DQT, DHT, SOFn, DAC, DRI, SOS, the entropy-coded data, RSTn and EOI are copied byte for byte, as
is every other non-APPn marker a codec defines. APP0 JFIF stays (without its thumbnail, if it has
one), because decoders take its presence to mean YCbCr and it carries the pixel aspect ratio; APP14
Adobe always stays, because it selects the colour transform of RGB/CMYK/YCCK data; APP2 ICC_PROFILE
chunks stay, all of them in order, when icc is kept. Every other APPn (Exif, XMP and extended XMP,
JFXX thumbnails, MPF, FlashPix, Ducky, Photoshop/IPTC, JPS, JUMBF...) and COM go, including any
between progressive scans. Bytes after EOI go too: that is where MPF second images, depth maps, gain
maps and vendor trailers live, none needed for the image.
"""

from __future__ import annotations

import re
import struct

from media.media_type import JPEG
from media.strip.exif import minimal_exif, read_exif
from media.strip.report import Report, StripResult
from schemas.errors import CorruptMedia

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
    report = Report()
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


def _app_segment(data: bytes, start: int, end: int, keep: frozenset[str], report: Report) -> list[bytes]:
    """What replaces an APPn or COM segment in the output: itself, a minimal rebuild, or nothing."""
    marker, payload = data[start + 1], data[start + 4 : end]
    if marker == _APP14 and payload.startswith(_ADOBE_ID):
        return [data[start:end]]
    if marker == _APP0 and payload.startswith(_JFIF_ID):
        return [_jfif_without_thumbnail(data[start:end], report)]
    if marker == _APP2 and payload.startswith(_ICC_ID):
        return [data[start:end]] if report.note("ICC_Profile", "icc" in keep) else []
    if marker == _APP1 and payload.startswith(_EXIF_ID):
        return _exif_segment(payload[6:], keep, report)
    report.removed.add(_jpeg_segment_name(marker, payload))
    if marker == 0xED and b"8BIM\x04\x04" in payload:
        report.removed.add("IPTC")
    return []


def _jfif_without_thumbnail(segment: bytes, report: Report) -> bytes:
    # The JFIF header is 18 bytes, its last two the thumbnail's size; what follows is the thumbnail.
    if len(segment) <= 18:
        return segment
    if segment[16:18] != b"\x00\x00":
        report.removed.add("Thumbnail")
    return b"\xff\xe0\x00\x10" + segment[4:16] + b"\x00\x00"


def _exif_segment(tiff: bytes, keep: frozenset[str], report: Report) -> list[bytes]:
    # Decoders read orientation from the first Exif segment before the first scan only.
    if report.exif_chosen:
        report.removed.add("EXIF")
        return []
    report.exif_chosen = True
    block = minimal_exif(read_exif(tiff), keep, report)
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

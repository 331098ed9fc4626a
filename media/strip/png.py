"""PNG stripping, by our chunk walker.

IHDR, PLTE, IDAT, IEND, the rendering chunks tRNS, gAMA, cHRM, sRGB, sBIT, pHYs, bKGD, cICP, mDCv, cLLi
and APNG's acTL, fcTL, fdAT stay; iCCP stays when icc is kept; tEXt, zTXt, iTXt, eXIf, tIME and every
other ancillary chunk go. Kept chunks must have a valid CRC (corrupt_media otherwise); only the chunks
we build get a new one. An unknown critical chunk is refused (strip_unsupported_format): decoders
must not ignore it, so we cannot tell it is not data.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

from media.media_type import PNG
from media.strip.exif import minimal_exif, read_exif
from media.strip.report import Report, StripResult, StripUnsupported
from schemas.errors import CorruptMedia

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
    report = Report()
    view = memoryview(data)
    out: list[bytes | memoryview] = [_PNG_SIGNATURE]
    for kind, start, end in _png_chunks(data):
        if _keeps_png_chunk(kind, data[start + 8 : end - 4], keep, report):
            if zlib.crc32(view[start + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
                raise CorruptMedia(f"PNG {kind.decode('latin-1')} chunk at offset {start} has a wrong CRC")
            out.append(view[start:end])
        elif kind == b"eXIf":
            block = minimal_exif(read_exif(data[start + 8 : end - 4]), keep, report)
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


def _keeps_png_chunk(kind: bytes, body: bytes, keep: frozenset[str], report: Report) -> bool:
    if kind in _PNG_RENDERING:
        return True
    if not kind[:1].islower():
        raise StripUnsupported(f"PNG has an unknown critical chunk {kind!r}: it may be needed to decode")
    if kind == b"iCCP":
        return report.note("ICC_Profile", "icc" in keep)
    if kind in _PNG_TEXT:
        keyword = body.split(b"\x00", 1)[0]
        if keyword == b"Copyright":
            return report.note("Copyright", "copyright" in keep)
        report.removed.add(_PNG_TEXT_NAMES.get(keyword, "Text"))
    elif kind == b"tIME":
        report.removed.add("ModifyDate")
    elif kind != b"eXIf":
        report.removed.add(kind.decode("latin-1"))
    return False


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

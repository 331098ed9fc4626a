"""WebP stripping, by our chunk walker (the exiftool we require cannot write WebP).

VP8, VP8L, ALPH, ANIM and ANMF stay, VP8X stays with its ICC/EXIF/XMP flags set to what remains, ICCP
stays when icc is kept; EXIF, XMP and unknown chunks go.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from media.media_type import WEBP
from media.strip.exif import minimal_exif, read_exif
from media.strip.report import Report, StripResult
from media.tiff import without_exif_header
from schemas.errors import CorruptMedia

_WEBP_IMAGE = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"})
_VP8X_ICC, _VP8X_EXIF, _VP8X_XMP = 0x20, 0x08, 0x04


def strip_webp(data: bytes, keep: frozenset[str]) -> StripResult:
    report = Report()
    chunks: list[tuple[bytes, bytes]] = []
    for kind, body in _riff_chunks(data):
        if kind in _WEBP_IMAGE or kind == b"VP8X" or (kind == b"ICCP" and "icc" in keep):
            chunks.append((kind, body))
        elif kind == b"EXIF":
            block = minimal_exif(read_exif(without_exif_header(body)), keep, report)
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

"""GIF stripping, by our block walker.

The header, the logical screen descriptor, the colour tables, every image (descriptor, local colour
table, LZW code size and data sub-blocks), graphic control and plain text extensions, the loop control
(NETSCAPE2.0 and its older twin ANIMEXTS1.0) and the trailer are copied byte for byte. The ICC profile
(application extension ICCRGBG1) stays when icc is kept. Comments, XMP (application extension
"XMP DataXMP"), every other application extension, unknown extensions and bytes after the trailer go.
GIF has no orientation, and its copyright, if any, lives in the XMP, which goes with the rest.
"""

from __future__ import annotations

from media.media_type import GIF
from media.strip.report import Report, StripResult
from schemas.errors import CorruptMedia

_HEADERS = (b"GIF87a", b"GIF89a")
_SCREEN_DESCRIPTOR_END = 13
_EXTENSION, _IMAGE, _TRAILER = 0x21, 0x2C, 0x3B
_PLAIN_TEXT, _GRAPHIC_CONTROL, _COMMENT, _APPLICATION = 0x01, 0xF9, 0xFE, 0xFF
# Application identifier and authentication code: the first sub-block of an application extension.
_LOOP_CONTROL = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
_ICC = b"ICCRGBG1012"
_XMP = b"XMP DataXMP"


def strip_gif(data: bytes, keep: frozenset[str]) -> StripResult:
    if data[:6] not in _HEADERS or len(data) < _SCREEN_DESCRIPTOR_END:
        raise CorruptMedia("not a GIF header")
    report = Report()
    view = memoryview(data)
    pos = _SCREEN_DESCRIPTOR_END + _colour_table_size(data[10])
    out: list[bytes | memoryview] = [view[:pos]]
    while True:
        if pos >= len(data):
            raise CorruptMedia("GIF ends before its trailer")
        introducer = data[pos]
        if introducer == _TRAILER:
            out.append(view[pos : pos + 1])
            if data[pos + 1 :].strip(b"\x00"):
                report.removed.add("Trailer")
            return report.result(b"".join(out), GIF)
        if introducer == _IMAGE:
            end = _image_end(data, pos)
            out.append(view[pos:end])
        elif introducer == _EXTENSION and pos + 1 < len(data):
            end = _sub_blocks_end(data, pos + 2)
            if _keeps_extension(data[pos + 1], data, pos + 2, keep, report):
                out.append(view[pos:end])
        else:
            raise CorruptMedia(f"GIF has an unknown block 0x{introducer:02x} at offset {pos}")
        pos = end


def _colour_table_size(packed: int) -> int:
    """Bytes of the colour table a descriptor's packed field announces (none when its top bit is clear)."""
    return 3 << ((packed & 0x07) + 1) if packed & 0x80 else 0


def _image_end(data: bytes, pos: int) -> int:
    """End of the image starting at ``pos``: its 10-byte descriptor, local colour table, LZW code size, data."""
    if pos + 10 > len(data):
        raise CorruptMedia(f"GIF image descriptor at offset {pos} is cut short")
    return _sub_blocks_end(data, pos + 10 + _colour_table_size(data[pos + 9]) + 1)


def _sub_blocks_end(data: bytes, pos: int) -> int:
    """The offset after the sub-blocks starting at ``pos`` and their zero-length terminator."""
    while True:
        if pos >= len(data):
            raise CorruptMedia("GIF sub-blocks run past the end of the file")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _keeps_extension(label: int, data: bytes, body: int, keep: frozenset[str], report: Report) -> bool:
    if label in (_GRAPHIC_CONTROL, _PLAIN_TEXT):
        # Frame timing, disposal and transparency; plain text is drawn on the canvas: both are the picture.
        return True
    if label == _COMMENT:
        return report.note("Comment", False)
    if label != _APPLICATION:
        return report.note("Extension", False)
    identifier = data[body + 1 : body + 1 + data[body]] if body < len(data) else b""
    if identifier in _LOOP_CONTROL:
        return True
    if identifier == _ICC:
        return report.note("ICC_Profile", "icc" in keep)
    return report.note("XMP" if identifier == _XMP else "Application", False)

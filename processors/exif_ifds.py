"""The raw EXIF directories of an image: each entry's tag id, EXIF field type and stored value.

exiftool reports what a tag means (``1/160``, ``f/7.1``) but not how it is stored. Two reference APIs
need the storage: Qiniu's ``?exif`` gives each tag's EXIF type code, ImageKit gives the stored values
(APEX ``ShutterSpeedValue`` 7.375, offsets from the TIFF header). The directories are read with
``struct`` as Pillow's TIFF plugin reads them (it made the first stored documents; using it directly
cost twice as much per file); values are made JSON-safe, and long binary values become None so no
blob reaches a document.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from PIL import Image, TiffTags

# EXIF field types (TIFF 6.0 / EXIF 2.3 section 4.6.2).
BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE = range(1, 13)
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
# Sub-directories and the pointer tag naming each one, by the directory holding the pointer.
POINTERS = {"IFD0": {EXIF_IFD: "ExifIFD", GPS_IFD: "GPS"}, "ExifIFD": {INTEROP_IFD: "InteropIFD"}}
EXIF_HEADER = b"Exif\x00\x00"
PREFIXES = (b"MM\x00*", b"II*\x00", b"MM*\x00", b"II\x00*", b"MM\x00+", b"II+\x00")
_UNIT_SIZES = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, SBYTE: 1, UNDEFINED: 1, SSHORT: 2, SLONG: 4,
               SRATIONAL: 8, FLOAT: 4, DOUBLE: 8, 13: 4, 16: 8}  # fmt: skip
# 13 is a sub-IFD pointer (LONG), 16 BigTIFF's LONG8.
_STRUCT_CODES = {SHORT: "H", LONG: "L", SBYTE: "b", SSHORT: "h", SLONG: "l", FLOAT: "f", DOUBLE: "d", 13: "L", 16: "Q"}
_PHOTOMETRIC_INTERPRETATION = 262
MAX_BINARY = 64


def exif_block(im: Image.Image, data: bytes) -> bytes | None:
    """The TIFF structure holding an image's EXIF: its EXIF chunk, or a TIFF file itself."""
    if im.format == "TIFF":
        return data
    block = im.info.get("exif")
    if not block:
        return None
    return block[len(EXIF_HEADER):] if block.startswith(EXIF_HEADER) else block


def read_ifds(tiff: bytes) -> dict[str, dict[int, dict[str, Any]]]:
    """``{"IFD0"|"IFD1"|"ExifIFD"|"GPS"|"InteropIFD": {tag id: {"type", "count", "value"}}}``.

    A directory that cannot be read is left out: broken EXIF is common and must not fail the job.
    """
    head = tiff[:8]
    # BigTIFF (8-byte offsets) never holds EXIF; Pillow, whose reading this matches, refuses it too.
    if len(head) < 8 or not head.startswith(PREFIXES) or head[2] == 43:
        return {}
    order = "<" if head[:2] == b"II" else ">"
    ifds: dict[str, dict[int, dict[str, Any]]] = {}
    first = struct.unpack(order + "L", head[4:8])[0]
    ifd0, following = _directory(tiff, order, first, first)
    if ifd0 is None:
        return ifds
    pending = [("IFD0", ifd0)]
    if following:
        pending.append(("IFD1", _directory(tiff, order, following, first)[0]))
    while pending:
        name, entries = pending.pop(0)
        if entries is None:
            continue
        ifds[name] = entries
        for tag, child in POINTERS.get(name, {}).items():
            if isinstance(entries.get(tag, {}).get("value"), int):
                pending.append((child, _directory(tiff, order, entries[tag]["value"], first)[0]))
    return ifds


def _directory(tiff: bytes, order: str, offset: int, first: int) -> tuple[dict[int, dict[str, Any]] | None, int]:
    """One directory's entries, and the offset of the next directory.

    This reads as Pillow's TiffImagePlugin.ImageFileDirectory_v2 reads (which the stored documents were
    first made with), at under half its cost: an entry whose type is unknown, whose data lies past the
    end or whose out-of-line data adds up to more than the block is skipped; a block that ends inside
    the directory keeps the entries read so far, with the first directory's offset as "next" (as Pillow
    leaves it); a value that cannot be decoded drops the directory.
    """
    raw: dict[int, tuple[int, bytes]] = {}
    following = first
    try:
        (count,) = struct.unpack_from(order + "H", _exact(tiff, offset, 2))
        position = offset + 2
        out_of_line = 0
        for _ in range(count):
            tag, field_type, values, inline = struct.unpack(order + "HHL4s", _exact(tiff, position, 12))
            position += 12
            if tag in raw or field_type not in _UNIT_SIZES:
                continue
            size = values * _UNIT_SIZES[field_type]
            if size > 4:
                out_of_line += size
                if out_of_line > len(tiff):
                    continue
                data = _exact(tiff, struct.unpack(order + "L", inline)[0], size)
            else:
                data = inline[:size]
            if data:
                raw[tag] = (field_type, data)
        (following,) = struct.unpack(order + "L", _exact(tiff, position, 4))
    except EOFError:
        pass
    try:
        entries = {tag: _entry(tag, field_type, data, order) for tag, (field_type, data) in raw.items()}
    except (struct.error, ValueError):
        return None, following
    return entries or None, following


def _exact(tiff: bytes, offset: int, size: int) -> bytes:
    data = tiff[offset : offset + size]
    if len(data) != size:
        raise EOFError
    return data


def _entry(tag: int, field_type: int, data: bytes, order: str) -> dict[str, Any]:
    decoded = _decode(field_type, data, order)
    values = decoded if isinstance(decoded, tuple) else (decoded,)
    info = TiffTags.lookup(tag)
    values = tuple(info.cvt_enum(item) if isinstance(item, str) else item for item in values)
    # Pillow gives one value, not a tuple, for a tag its tables define as single, for BYTE data and for
    # any tag holding one value; the tables' single tags holding several keep the first.
    if info.length == 1 or field_type == BYTE or (info.length is None and len(values) == 1):
        if len(values) > 1 and tag == _PHOTOMETRIC_INTERPRETATION:
            raise ValueError("PhotometricInterpretation holds several values")
        value = values[0]
    else:
        value = values
    return entry(field_type, value)


def _decode(field_type: int, data: bytes, order: str) -> Any:
    if field_type in (BYTE, UNDEFINED):
        return data
    if field_type == ASCII:
        return (data[:-1] if data.endswith(b"\x00") else data).decode("latin-1", "replace")
    if field_type in (RATIONAL, SRATIONAL):
        code = "L" if field_type == RATIONAL else "l"
        numbers = struct.unpack(f"{order}{len(data) // 4}{code}", data)
        return tuple(_ratio(n, d) for n, d in zip(numbers[::2], numbers[1::2]))
    return struct.unpack(f"{order}{len(data) // _UNIT_SIZES[field_type]}{_STRUCT_CODES[field_type]}", data)


def entry(field_type: int, value: Any) -> dict[str, Any]:
    values = value if isinstance(value, tuple) else (value,)
    return {"type": field_type, "count": _count(field_type, value, values), "value": json_value(field_type, value)}


def _count(field_type: int, value: Any, values: tuple) -> int:
    if field_type in (ASCII, UNDEFINED) or isinstance(value, bytes):
        return len(value) + (field_type == ASCII)
    return len(values)


def json_value(field_type: int, value: Any) -> Any:
    """A stored value as JSON: rationals as numbers (integral ones as ints), byte lists as lists, short
    printable UNDEFINED values (ExifVersion "0221") as text; anything else binary becomes None."""
    if value is None:  # a rational over zero
        return None
    if isinstance(value, tuple):
        items = [json_value(field_type, item) for item in value]
        return items if len(items) <= MAX_BINARY else None
    if isinstance(value, bytes) and field_type == BYTE:
        return list(value) if len(value) <= MAX_BINARY else None
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        printable = 0 < len(text) <= MAX_BINARY and text.isascii() and text.decode().isprintable()
        return text.decode() if printable else None
    if isinstance(value, str):
        return value.rstrip("\x00")
    if isinstance(value, float):
        return (int(value) if value.is_integer() else value) if math.isfinite(value) else None
    return int(value)


def _ratio(numerator: int, denominator: int) -> int | float | None:
    """A stored rational as its number (integral ones as ints), None over zero."""
    if denominator == 0:
        return None
    return numerator // denominator if numerator % denominator == 0 else numerator / denominator

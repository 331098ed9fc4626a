"""TIFF structures (a TIFF file, or the EXIF block of a JPEG, PNG, WebP or HEIF): read and write.

Reading comes in two depths. ``read_directory`` and ``value_bytes`` give a directory's entries and
their stored bytes, for callers with their own tolerance of broken blocks (sniffing, stripping).
``read_ifds`` gives every EXIF directory decoded (each tag's EXIF field type and JSON-safe stored
value), as two reference APIs need it: Qiniu's ``?exif`` gives each tag's EXIF type code, ImageKit
the stored values (APEX ``ShutterSpeedValue`` 7.375, offsets from the TIFF header). exiftool reports
what a tag means (``1/160``, ``f/7.1``) but not how it is stored. Directories are read with
``struct`` as Pillow's TIFF plugin reads them (it made the first stored documents; using it directly
cost twice as much per file); long binary values become None so no blob reaches a document.

``write_tiff`` lays out a block from stored fields (``field`` encodes Python values into them).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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
_STRUCT_CODES = {BYTE: "B", SHORT: "H", LONG: "L", SBYTE: "b", UNDEFINED: "B", SSHORT: "h", SLONG: "l", FLOAT: "f",
                 DOUBLE: "d", 13: "L", 16: "Q"}  # fmt: skip
_PHOTOMETRIC_INTERPRETATION = 262
MAX_BINARY = 64

# A stored value: (field type, count, its bytes in the block's byte order).
Field = tuple[int, int, bytes]


class Entry(NamedTuple):
    tag: int
    type: int
    count: int
    at: int  # where the entry's 4-byte value field is: the value itself, or its offset

    @property
    def size(self) -> int:
        """The value's length in bytes; 0 for a type TIFF does not define."""
        return _UNIT_SIZES.get(self.type, 0) * self.count


class Directory(NamedTuple):
    entries: list[Entry]  # those lying inside the block, in stored order
    complete: bool  # every entry the directory declares lies inside the block
    next: int | None  # the following directory's offset; None where the block ends first

    def by_tag(self) -> dict[int, Entry]:
        """The entries by tag; of a repeated tag, the first, as decoders take it."""
        tags: dict[int, Entry] = {}
        for entry in self.entries:
            tags.setdefault(entry.tag, entry)
        return tags


def header(tiff: bytes) -> tuple[str, int] | None:
    """The struct byte order ("<" or ">") and IFD0's offset, or None for what is no TIFF header."""
    head = tiff[:8]
    # BigTIFF (8-byte offsets) never holds EXIF; Pillow, whose reading read_ifds matches, refuses it too.
    if len(head) < 8 or not head.startswith(PREFIXES) or head[2] == 43:
        return None
    order = "<" if head[:2] == b"II" else ">"
    return order, struct.unpack(order + "L", head[4:8])[0]


def read_directory(tiff: bytes, order: str, offset: int) -> Directory:
    """The directory at ``offset``, as much of it as the block holds."""
    head = tiff[offset : offset + 2]
    if len(head) < 2:
        return Directory([], False, None)
    (count,) = struct.unpack(order + "H", head)
    entries = []
    for position in range(offset + 2, offset + 2 + 12 * count, 12):
        if position + 12 > len(tiff):
            return Directory(entries, False, None)
        entries.append(Entry(*struct.unpack_from(order + "HHL", tiff, position), position + 8))
    following = tiff[offset + 2 + 12 * count : offset + 6 + 12 * count]
    return Directory(entries, True, struct.unpack(order + "L", following)[0] if len(following) == 4 else None)


def value_bytes(tiff: bytes, order: str, entry: Entry) -> bytes:
    """The entry's stored value; shorter than ``entry.size`` where the block ends inside it."""
    if entry.size <= 4:
        return tiff[entry.at : entry.at + entry.size]
    (start,) = struct.unpack(order + "L", tiff[entry.at : entry.at + 4])
    return tiff[start : start + entry.size]


def without_exif_header(block: bytes) -> bytes:
    """An EXIF chunk's TIFF structure: JPEG's APP1 and some WebP and Pillow chunks start with "Exif\\0\\0"."""
    return block[len(EXIF_HEADER) :] if block.startswith(EXIF_HEADER) else block


def exif_block(im: Image.Image, data: bytes) -> bytes | None:
    """The TIFF structure holding an image's EXIF: its EXIF chunk, or a TIFF file itself."""
    if im.format == "TIFF":
        return data
    block = im.info.get("exif")
    return without_exif_header(block) if block else None


def read_ifds(tiff: bytes) -> dict[str, dict[int, dict[str, Any]]]:
    """``{"IFD0"|"IFD1"|"ExifIFD"|"GPS"|"InteropIFD": {tag id: {"type", "count", "value"}}}``.

    A directory that cannot be read is left out: broken EXIF is common and must not fail the job.
    """
    found = header(tiff)
    if found is None:
        return {}
    order, first = found
    ifds: dict[str, dict[int, dict[str, Any]]] = {}
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
    """One directory's decoded entries, and the offset of the next directory.

    This reads as Pillow's TiffImagePlugin.ImageFileDirectory_v2 reads (which the stored documents were
    first made with), at under half its cost: an entry whose type is unknown or whose out-of-line data
    adds up to more than the block is skipped; a block that ends inside the directory or inside an
    entry's data keeps the entries read so far, with the first directory's offset as "next" (as Pillow
    leaves it); a value that cannot be decoded drops the directory.
    """
    directory = read_directory(tiff, order, offset)
    raw: dict[int, tuple[int, bytes]] = {}
    following = first
    out_of_line = 0
    for entry in directory.entries:
        if entry.tag in raw or entry.type not in _UNIT_SIZES:
            continue
        if entry.size > 4:
            out_of_line += entry.size
            if out_of_line > len(tiff):
                continue
        data = value_bytes(tiff, order, entry)
        if len(data) != entry.size:
            break
        if data:
            raw[entry.tag] = (entry.type, data)
    else:
        if directory.next is not None:
            following = directory.next
    try:
        entries = {tag: _entry(tag, field_type, data, order) for tag, (field_type, data) in raw.items()}
    except (struct.error, ValueError):
        return None, following
    return entries or None, following


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
    # Counted as Pillow counts the value it gives, so a single tag holding several counts 1.
    given = value if isinstance(value, tuple) else (value,)
    return {"type": field_type, "count": _count(field_type, value, given), "value": json_value(field_type, value)}


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


def field(order: str, field_type: int, value: Any) -> Field:
    """``value`` as stored: ASCII from str (NUL-terminated here), BYTE and UNDEFINED from bytes, the
    rationals from numbers.Rational (IFDRational, Fraction: written as given, not reduced), the rest
    from numbers; a tuple for several values (of one str or bytes value, as Pillow's tag values are)."""
    values = value if isinstance(value, tuple) else (value,)
    if field_type == ASCII:
        text = values[0] if isinstance(values[0], bytes) else values[0].encode("ascii", "replace")
        values = (text + b"\x00",)
    if isinstance(values[0], bytes):
        return field_type, len(values[0]), values[0]
    if field_type in (RATIONAL, SRATIONAL):
        numbers = [number for item in values for number in (item.numerator, item.denominator)]
        code = "L" if field_type == RATIONAL else "l"
        return field_type, len(values), struct.pack(f"{order}{len(numbers)}{code}", *numbers)
    return field_type, len(values), struct.pack(f"{order}{len(values)}{_STRUCT_CODES[field_type]}", *values)


def write_tiff(order: str, ifd0: Mapping[int, Field], sub_ifds: Mapping[int, Mapping[int, Field]] | None = None) -> bytes:
    """A TIFF block of stored fields: the header, IFD0, then each of ``sub_ifds`` ({pointer tag: fields},
    e.g. EXIF_IFD, GPS_IFD), which IFD0 points to with that tag; no next directory."""
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    return lay_out(
        magic + struct.pack(order + "L", 8), ifd0, sub_ifds or {},
        directory=lambda fields, _pointer, offset: _ifd(order, fields, offset),
        pointer=lambda offset: field(order, LONG, offset),
    )  # fmt: skip


def lay_out(
    head: bytes,
    ifd0: Mapping[int, Any],
    sub_ifds: Mapping[int, Mapping[int, Any]],
    directory: Callable[[Mapping[int, Any], int | None, int], bytes],
    pointer: Callable[[int], Any],
) -> bytes:
    """``head`` (the 8-byte header, IFD0 at offset 8), IFD0, then each sub-IFD IFD0 points to. ``directory``
    writes one IFD's entries at an offset (with the pointer tag that leads to it, None for IFD0), ``pointer``
    makes a pointer entry's value: so entries may be stored fields or values another writer encodes."""
    # Pointers are LONGs whatever their value, so IFD0's length is known before the offsets are.
    main = {**ifd0, **{tag: pointer(0) for tag in sub_ifds}}
    offset = len(head) + len(directory(main, None, len(head)))
    blocks = []
    for tag, entries in sub_ifds.items():
        main[tag] = pointer(offset)
        blocks.append(directory(entries, tag, offset))
        offset += len(blocks[-1])
    return head + directory(main, None, len(head)) + b"".join(blocks)


def _ifd(order: str, fields: Mapping[int, Field], offset: int) -> bytes:
    """One directory written at ``offset``, its out-of-line values after it, each padded to a word."""
    data_at = offset + 2 + 12 * len(fields) + 4
    entries, values = [struct.pack(order + "H", len(fields))], []
    for tag, (field_type, count, raw) in sorted(fields.items()):
        if len(raw) <= 4:
            value_field = raw.ljust(4, b"\x00")
        else:
            value_field = struct.pack(order + "L", data_at)
            values.append(raw + b"\x00" * (len(raw) % 2))
            data_at += len(values[-1])
        entries.append(struct.pack(order + "HHL", tag, field_type, count) + value_field)
    return b"".join(entries) + bytes(4) + b"".join(values)

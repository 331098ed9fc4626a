"""The raw EXIF directories of an image: each entry's tag id, EXIF field type and stored value.

exiftool reports what a tag means (``1/160``, ``f/7.1``) but not how it is stored. Two reference APIs
need the storage: Qiniu's ``?exif`` gives each tag's EXIF type code, ImageKit gives the stored values
(APEX ``ShutterSpeedValue`` 7.375, offsets from the TIFF header). Pillow reads the directories;
values are made JSON-safe here, and long binary values become None so no blob reaches a document.
"""

from __future__ import annotations

import io
import warnings
from fractions import Fraction
from typing import Any

from PIL import Image, TiffImagePlugin

# EXIF field types (TIFF 6.0 / EXIF 2.3 section 4.6.2).
BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE = range(1, 13)
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
# Sub-directories and the pointer tag naming each one, by the directory holding the pointer.
POINTERS = {"IFD0": {EXIF_IFD: "ExifIFD", GPS_IFD: "GPS"}, "ExifIFD": {INTEROP_IFD: "InteropIFD"}}
EXIF_HEADER = b"Exif\x00\x00"
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
    fp = io.BytesIO(tiff)
    ifds: dict[str, dict[int, dict[str, Any]]] = {}
    ifd0 = _load(head, fp, int.from_bytes(head[4:8], "little" if head[:2] == b"II" else "big"))
    if ifd0 is None:
        return ifds
    pending = [("IFD0", ifd0)]
    if ifd0.next:
        pending.append(("IFD1", _load(head, fp, ifd0.next)))
    while pending:
        name, ifd = pending.pop(0)
        if ifd is None:
            continue
        ifds[name] = {tag: entry(ifd.tagtype[tag], ifd[tag]) for tag in ifd}
        for tag, child in POINTERS.get(name, {}).items():
            if isinstance(ifds[name].get(tag, {}).get("value"), int):
                pending.append((child, _load(head, fp, ifds[name][tag]["value"])))
    return ifds


def _load(head: bytes, fp: io.BytesIO, offset: int) -> TiffImagePlugin.ImageFileDirectory_v2 | None:
    try:
        with warnings.catch_warnings():
            # A truncated directory reads as empty, with a warning: it is left out below instead.
            warnings.simplefilter("ignore")
            ifd = TiffImagePlugin.ImageFileDirectory_v2(head)
            fp.seek(offset)
            ifd.load(fp)
            # Values are decoded lazily: decode them now, so a broken one fails here and not in the caller.
            for tag in ifd:
                ifd[tag]
    except Exception:  # noqa: BLE001 - Pillow raises anything from SyntaxError to struct.error on bad EXIF
        return None
    return ifd if len(ifd) else None


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
    if field_type in (RATIONAL, SRATIONAL, FLOAT, DOUBLE):
        return _number(value)
    return int(value)


def _number(value: Any) -> int | float | None:
    if isinstance(value, TiffImagePlugin.IFDRational) and value.denominator == 0:
        return None
    number = Fraction(value.numerator, value.denominator) if hasattr(value, "denominator") else Fraction(value)
    return int(number) if number.denominator == 1 else float(number)

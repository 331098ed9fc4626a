"""The EXIF of a JPEG, PNG or WebP when stripped: read what keep may ask for, rebuild it alone."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from media import tiff
from media.strip.report import Report

_ORIENTATION, _COPYRIGHT, _MAKER_NOTE = 0x0112, 0x8298, 0x927C


@dataclass(frozen=True)
class Exif:
    """What stripping needs from an EXIF block: what to keep, and the groups it held."""

    order: str = ">"
    orientation: int | None = None
    copyright: tiff.Field | None = None
    groups: frozenset[str] = frozenset({"EXIF"})


def read_exif(block: bytes) -> Exif:
    """Lenient, like decoders: a broken block yields what could be read (at worst nothing to keep)."""
    found = tiff.header(block)
    if found is None:
        return Exif()
    order, first = found
    ifd0 = tiff.read_directory(block, order, first)
    if not ifd0.complete:
        return Exif(order)
    entries = ifd0.by_tag()
    groups = {"EXIF"} if set(entries) - {_ORIENTATION, _COPYRIGHT, tiff.GPS_IFD} else set()
    if tiff.GPS_IFD in entries:
        groups.add("GPS")
    if _has_maker_note(block, order, entries.get(tiff.EXIF_IFD)):
        groups.add("MakerNotes")
    if ifd0.next:
        groups.add("Thumbnail")
    orientation = _orientation(block, order, entries.get(_ORIENTATION))
    copyright = _stored(block, order, entries[_COPYRIGHT]) if _COPYRIGHT in entries else None
    return Exif(order, orientation, copyright, frozenset(groups))


def _stored(block: bytes, order: str, entry: tiff.Entry) -> tiff.Field | None:
    """The entry as a field to write again; None when it is empty, of no TIFF type or cut short."""
    raw = tiff.value_bytes(block, order, entry)
    return (entry.type, entry.count, raw) if raw and len(raw) == entry.size else None


def _orientation(block: bytes, order: str, entry: tiff.Entry | None) -> int | None:
    value = _stored(block, order, entry) if entry else None
    if value is None or value[0] not in (tiff.SHORT, tiff.LONG):
        return None
    (number,) = struct.unpack_from(order + ("H" if value[0] == tiff.SHORT else "I"), value[2])
    return number if 1 <= number <= 8 else None


def _has_maker_note(block: bytes, order: str, pointer: tiff.Entry | None) -> bool:
    if pointer is None:
        return False
    (offset,) = struct.unpack(order + "L", block[pointer.at : pointer.at + 4])
    exif_ifd = tiff.read_directory(block, order, offset)
    return exif_ifd.complete and any(entry.tag == _MAKER_NOTE for entry in exif_ifd.entries)


def minimal_exif(exif: Exif, keep: frozenset[str], report: Report) -> bytes | None:
    """A TIFF block whose IFD0 holds only the kept Orientation and Copyright, or None when there are none."""
    fields = {}
    if exif.orientation is not None and report.note("Orientation", "orientation" in keep):
        fields[_ORIENTATION] = tiff.field(exif.order, tiff.SHORT, exif.orientation)
    if exif.copyright is not None and report.note("Copyright", "copyright" in keep):
        fields[_COPYRIGHT] = exif.copyright
    report.removed |= exif.groups
    return tiff.write_tiff(exif.order, fields) if fields else None

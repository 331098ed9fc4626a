"""The stored EXIF directories: field types and raw values, read from real camera files."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image

from processors.exif_ifds import (
    ASCII, BYTE, LONG, RATIONAL, SHORT, SRATIONAL, UNDEFINED, exif_block, json_value, read_ifds,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif-samples"


def ifds_of(path: Path) -> dict:
    data = path.read_bytes()
    return read_ifds(exif_block(Image.open(io.BytesIO(data)), data))


def test_canon_40d_directories_hold_stored_values_and_types() -> None:
    ifds = ifds_of(SAMPLES / "jpg" / "Canon_40D.jpg")
    assert set(ifds) == {"IFD0", "IFD1", "ExifIFD", "GPS", "InteropIFD"}
    assert ifds["IFD0"][0x010F] == {"type": ASCII, "count": 6, "value": "Canon"}
    assert ifds["IFD0"][0x0112] == {"type": SHORT, "count": 1, "value": 1}
    assert ifds["IFD0"][0x011A] == {"type": RATIONAL, "count": 1, "value": 72}
    # Pointers count from the TIFF header, as ImageKit shows them (ExifOffset 214, GPSInfo 978).
    assert ifds["IFD0"][0x8769] == {"type": LONG, "count": 1, "value": 214}
    assert ifds["IFD0"][0x8825]["value"] == 978
    assert ifds["ExifIFD"][0xA005]["value"] == 948
    assert ifds["IFD1"][0x0201] == {"type": LONG, "count": 1, "value": 1090}
    # APEX values as stored, not exiftool's converted seconds and f-number.
    assert ifds["ExifIFD"][0x9201] == {"type": SRATIONAL, "count": 1, "value": 7.375}
    assert ifds["ExifIFD"][0x9202]["value"] == 5.625
    assert ifds["ExifIFD"][0x829A]["value"] == 0.00625
    assert ifds["ExifIFD"][0x9000] == {"type": UNDEFINED, "count": 4, "value": "0221"}
    # ComponentsConfiguration (1, 2, 3, 0) and an all-zero UserComment are binary: no value.
    assert ifds["ExifIFD"][0x9101]["value"] is None
    assert ifds["ExifIFD"][0x9286] == {"type": UNDEFINED, "count": 264, "value": None}
    assert ifds["GPS"][0x0000] == {"type": BYTE, "count": 4, "value": [2, 2, 0, 0]}
    assert ifds["InteropIFD"][0x0001] == {"type": ASCII, "count": 4, "value": "R98"}


def test_gps_rationals_are_lists_of_numbers() -> None:
    ifds = ifds_of(SAMPLES / "jpg" / "gps" / "DSCN0029.jpg")
    assert ifds["GPS"][0x0002]["type"] == RATIONAL
    assert ifds["GPS"][0x0002]["value"][:2] == [43, 28]
    assert ifds["GPS"][0x0001] == {"type": ASCII, "count": 2, "value": "N"}


def test_big_endian_tiff_is_read_from_the_file_itself() -> None:
    ifds = ifds_of(SAMPLES / "tiff" / "Arbitro.tiff")
    assert ifds["IFD0"][0x0100]["type"] in (SHORT, LONG)
    assert isinstance(ifds["IFD0"][0x0100]["value"], int)


def test_broken_directories_are_left_out_not_raised() -> None:
    data = (SAMPLES / "jpg" / "Canon_40D.jpg").read_bytes()
    tiff = exif_block(Image.open(io.BytesIO(data)), data)
    assert read_ifds(tiff[:40]) == {}
    # IFD0 intact, the Exif IFD pointer aimed past the end: IFD0 is kept, the Exif IFD is not.
    truncated = read_ifds(tiff[:300])
    assert "IFD0" in truncated and "ExifIFD" not in truncated


def test_image_without_exif_has_no_block() -> None:
    image = Image.new("RGB", (4, 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    assert exif_block(Image.open(io.BytesIO(out.getvalue())), out.getvalue()) is None


def test_json_values() -> None:
    assert json_value(UNDEFINED, b"0100") == "0100"
    assert json_value(UNDEFINED, b"\x01\x02\x03\x00") is None
    assert json_value(UNDEFINED, b"A" * 65) is None
    assert json_value(BYTE, bytes(range(70))) is None
    assert json_value(SHORT, tuple(range(65))) is None
    assert json_value(ASCII, "Canon\x00") == "Canon"


def _tiff(*entries: tuple[int, int, int, bytes]) -> bytes:
    """A little-endian TIFF block with one directory of (tag, type, count, value bytes) entries."""
    data_at = 8 + 2 + 12 * len(entries) + 4
    directory, data = b"", b""
    for tag, field_type, count, value in entries:
        if len(value) <= 4:
            field = value.ljust(4, b"\x00")
        else:
            field = struct.pack("<L", data_at + len(data))
            data += value
        directory += struct.pack("<HHL", tag, field_type, count) + field
    return b"II*\x00" + struct.pack("<L", 8) + struct.pack("<H", len(entries)) + directory + b"\x00" * 4 + data


def test_stored_values_as_json() -> None:
    ifd0 = read_ifds(_tiff(
        (0x011A, RATIONAL, 1, struct.pack("<LL", 7, 2)),
        (0x011B, RATIONAL, 1, struct.pack("<LL", 1, 0)),
        (0x0128, SHORT, 1, struct.pack("<H", 2)),
        (0x9204, SRATIONAL, 1, struct.pack("<ll", -1, 3)),
        (0x9000, UNDEFINED, 4, b"0100"),
        (0x0002, RATIONAL, 3, struct.pack("<6L", 35, 1, 40, 1, 1234, 100)),
        (0x010F, ASCII, 6, b"Canon\x00"),
    ))["IFD0"]
    assert ifd0[0x011A] == {"type": RATIONAL, "count": 1, "value": 3.5}
    assert ifd0[0x011B]["value"] is None
    assert ifd0[0x0128] == {"type": SHORT, "count": 1, "value": 2}
    assert ifd0[0x9204]["value"] == -1 / 3
    assert ifd0[0x9000] == {"type": UNDEFINED, "count": 4, "value": "0100"}
    assert ifd0[0x0002] == {"type": RATIONAL, "count": 3, "value": [35, 40, 12.34]}
    assert ifd0[0x010F] == {"type": ASCII, "count": 6, "value": "Canon"}


def test_unknown_types_are_ignored_and_a_cut_directory_keeps_what_precedes_the_cut() -> None:
    block = _tiff((0x0131, 99, 1, b"x"), (0x010F, ASCII, 6, b"Canon\x00"), (0x0110, ASCII, 7, b"EOS 40D"))
    assert set(read_ifds(block)["IFD0"]) == {0x010F, 0x0110}
    assert set(read_ifds(block[:-3])["IFD0"]) == {0x010F}

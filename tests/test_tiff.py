"""TIFF structures: the stored EXIF directories (field types and raw values) of real camera files, and
blocks written and read back."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

from PIL import Image

from media.tiff import (
    ASCII, BYTE, EXIF_IFD, GPS_IFD, LONG, RATIONAL, SHORT, SRATIONAL, UNDEFINED, exif_block, field, header,
    json_value, read_directory, read_ifds, value_bytes, write_tiff,
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
    return write_tiff("<", {tag: (field_type, count, value) for tag, field_type, count, value in entries})


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


def test_written_sub_directories_are_pointed_to_and_read_back() -> None:
    block = write_tiff(
        ">",
        {0x010F: field(">", ASCII, "Canon"), 0x0112: field(">", SHORT, 6)},
        {EXIF_IFD: {0x829A: field(">", RATIONAL, Fraction(1, 160)), 0x9000: field(">", UNDEFINED, b"0232")},
         GPS_IFD: {0x0000: field(">", BYTE, b"\x02\x03\x00\x00"), 0x0002: field(">", RATIONAL, (Fraction(35),) * 3)}},
    )
    assert block.startswith(b"MM\x00*\x00\x00\x00\x08")
    ifds = read_ifds(block)
    assert ifds["IFD0"][0x010F] == {"type": ASCII, "count": 6, "value": "Canon"}
    assert ifds["IFD0"][0x0112] == {"type": SHORT, "count": 1, "value": 6}
    assert ifds["ExifIFD"][0x829A] == {"type": RATIONAL, "count": 1, "value": 0.00625}
    assert ifds["ExifIFD"][0x9000] == {"type": UNDEFINED, "count": 4, "value": "0232"}
    assert ifds["GPS"][0x0000] == {"type": BYTE, "count": 4, "value": [2, 3, 0, 0]}
    assert ifds["GPS"][0x0002] == {"type": RATIONAL, "count": 3, "value": [35, 35, 35]}


def test_written_blocks_match_what_pillow_writes() -> None:
    exif = Image.Exif()
    exif[0x010F], exif[0x0112], exif[0x011A] = "Canon", 3, Fraction(72)
    pillow = exif.tobytes()[len(b"Exif\x00\x00"):]
    ours = write_tiff(">", {0x010F: field(">", ASCII, "Canon"), 0x0112: field(">", SHORT, 3),
                            0x011A: field(">", RATIONAL, Fraction(72))})
    assert ours == pillow


def test_directories_read_as_far_as_the_block_goes() -> None:
    block = _tiff((0x0110, ASCII, 7, b"EOS 40D"), (0x010F, ASCII, 6, b"Canon\x00"))
    order, first = header(block)
    directory = read_directory(block, order, first)
    assert directory.complete and directory.next == 0
    assert value_bytes(block, order, directory.by_tag()[0x010F]) == b"Canon\x00"
    cut = read_directory(block[:30], order, first)
    assert not cut.complete and cut.next is None and [entry.tag for entry in cut.entries] == [0x010F]
    assert header(b"II*\x00") is None and header(b"GIF89a\x00\x00") is None

"""Metadata stripping on every sample: lossless, nothing left for exiftool to find, keep honoured; JPEG.

The other formats, broken input and fuzzing: test_strip_formats.py.
"""

from __future__ import annotations

import io
import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from PIL import Image, ImageOps, ImageSequence

from adapters.exiftool import ExifTool
from media.images import open_image
from media.media_type import _jpeg_scan_start, sniff
from media.strip import (
    KEEP_DEFAULT,
    StripResult,
    metadata_groups,
    strip_jpeg,
    strip_metadata,
)
from schemas.errors import MedialaneError
from schemas.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
ALL_SAMPLES = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix != ".md")
STRIPPED_FORMATS = {"jpg", "png", "webp", "tif", "heic", "heif", "gif", "mp4", "mov"}
# Broken scan data (an FF 9F "marker" 229 KB in), and a Phase One RAW whose second IFD is the image.
REFUSED = {"corrupted.jpg": "corrupt_media", "PhaseOne.iiq": "strip_unsupported_format"}
STRIPPABLE = [
    p for p in ALL_SAMPLES if sniff(p.read_bytes()).extension in STRIPPED_FORMATS and p.name not in REFUSED
]
EXIFTOOL = shutil.which(Settings().exiftool_path) or Settings().exiftool_path
KEEPS = {"default": KEEP_DEFAULT, "nothing": frozenset()}
ORIENTED = sorted((SAMPLES / "exif-samples" / "jpg" / "orientation").glob("*.jpg"))
# exiftool's names for what keep may leave, beside the image structure a decoder needs.
KEPT_TAGS = {"orientation": {"Orientation"}, "copyright": {"Copyright"}, "icc": set()}
TIFF_IFD0_STRUCTURE = {
    "ImageWidth", "ImageHeight", "BitsPerSample", "Compression", "PhotometricInterpretation", "StripOffsets",
    "SamplesPerPixel", "RowsPerStrip", "StripByteCounts", "PlanarConfiguration", "Predictor", "ExtraSamples",
    "SampleFormat", "XResolution", "YResolution", "ResolutionUnit", "ColorMap", "FillOrder", "SubfileType",
    "TileWidth", "TileLength", "TileOffsets", "TileByteCounts",
}  # fmt: skip


def ids(path: Path) -> str:
    return str(path.relative_to(SAMPLES))


@pytest.fixture(scope="module")
def exiftool() -> Iterator[ExifTool]:
    with ExifTool(EXIFTOOL, 20.0) as tool:
        yield tool


@pytest.fixture(scope="module")
def stripped(exiftool: ExifTool):
    """Each sample stripped once per keep set, shared by the tests that look at the result."""
    cache: dict[tuple[Path, frozenset[str]], StripResult] = {}

    def strip(path: Path, keep: frozenset[str] = KEEP_DEFAULT) -> StripResult:
        if (path, keep) not in cache:
            cache[path, keep] = strip_metadata(path.read_bytes(), keep, exiftool)
        return cache[path, keep]

    return strip


# --- every sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=ids)
def test_every_sample_is_stripped_or_refused_with_a_typed_error(path: Path, exiftool: ExifTool) -> None:
    data = path.read_bytes()
    start = time.monotonic()
    try:
        result = strip_metadata(data, KEEP_DEFAULT, exiftool)
    except MedialaneError as exc:
        outcome = exc.code
    else:
        outcome = "stripped"
        assert result.size == len(result.data) <= len(data) + 64
        assert result.format == sniff(data).extension
    assert time.monotonic() - start < 10
    media = sniff(data)
    if path.name in REFUSED:
        assert outcome == REFUSED[path.name]
    elif media.extension in STRIPPED_FORMATS:
        assert outcome == "stripped"
    else:
        assert outcome == "strip_unsupported_format"


@pytest.mark.parametrize("path", STRIPPABLE, ids=ids)
def test_pixels_are_untouched(path: Path, stripped) -> None:
    original, cleaned = path.read_bytes(), stripped(path).data
    if sniff(original).family == "video":
        assert media_data(cleaned) == media_data(original)
        assert video_frames(cleaned) == video_frames(original)
        return
    assert image_frames(cleaned) == image_frames(original)
    if original.startswith(b"\xff\xd8"):
        # From the first SOS on, the cleaned file is the original up to and including its EOI.
        assert original[_jpeg_scan_start(original) :].startswith(cleaned[_jpeg_scan_start(cleaned) :])
    if original.startswith(b"\x89PNG"):
        assert png_idat(cleaned) == png_idat(original)


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
@pytest.mark.parametrize("path", STRIPPABLE, ids=ids)
def test_exiftool_finds_nothing_left(path: Path, keep: frozenset[str], stripped, exiftool: ExifTool) -> None:
    result = stripped(path, keep)
    assert_nothing_left(exiftool.extract(result.data, result.format), keep)
    assert set(result.kept) <= {"Orientation", "ICC_Profile", "Copyright"}
    assert not set(result.kept) & set(result.removed)


def assert_nothing_left(tags: dict, keep: frozenset[str]) -> None:
    allowed = set().union(*(KEPT_TAGS[option] for option in keep))
    for key in (key for key in tags if ":" in key):
        family0, *_, name = key.split(":")
        family1 = key.split(":")[1] if key.count(":") == 2 else family0
        assert family0 not in {"IPTC", "MakerNotes", "Photoshop", "MPF", "FlashPix"}, key
        assert family0 != "XMP" or family1 in {"XMP-x", "XMP-HDRGainMap"}, key
        assert "GPS" not in name and family1 != "GPS", key
        assert not any(word in name for word in ("Comment", "Thumbnail", "PreviewImage")), key
        assert family0 != "ICC_Profile" or "icc" in keep, key
        if family0 == "EXIF":
            assert family1 == "IFD0" and name in TIFF_IFD0_STRUCTURE | allowed, key
    assert metadata_groups(tags) <= {"Orientation", "ICC_Profile", "Copyright"}


# --- orientation, colour and the keep options -----------------------------------------------------


@pytest.mark.parametrize("path", ORIENTED, ids=ids)
def test_orientation_is_kept_and_the_image_still_displays_upright(path: Path, stripped) -> None:
    original, cleaned = (Image.open(io.BytesIO(d)) for d in (path.read_bytes(), stripped(path).data))
    assert cleaned.getexif().get(0x0112) == original.getexif().get(0x0112)
    assert pixels(ImageOps.exif_transpose(cleaned)) == pixels(ImageOps.exif_transpose(original))
    assert "Orientation" in stripped(path).kept


def test_orientation_goes_when_not_kept(stripped) -> None:
    path = SAMPLES / "exif-samples" / "jpg" / "orientation" / "landscape_6.jpg"
    result = stripped(path, frozenset({"icc"}))
    assert 0x0112 not in Image.open(io.BytesIO(result.data)).getexif()
    assert "Orientation" in result.removed


@pytest.mark.parametrize("keep", [KEEP_DEFAULT, frozenset({"orientation"})], ids=["default", "no-icc"])
def test_icc_profile_is_kept_by_default(keep: frozenset[str], stripped) -> None:
    path = SAMPLES / "exif-samples" / "jpg" / "xmp" / "BlueSquare.jpg"
    icc = Image.open(path).info["icc_profile"]
    result = stripped(path, keep)
    assert Image.open(io.BytesIO(result.data)).info.get("icc_profile") == (icc if "icc" in keep else None)
    assert "ICC_Profile" in (result.kept if "icc" in keep else result.removed)


def test_icc_profile_in_several_chunks_is_kept_whole_and_in_order() -> None:
    icc = b"".join(struct.pack(">I", i) for i in range(40000))  # three 64 KB APP2 segments
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", icc_profile=icc)
    result = strip_jpeg(out.getvalue(), KEEP_DEFAULT)
    assert result.data.count(b"ICC_PROFILE\x00") == 3
    assert Image.open(io.BytesIO(result.data)).info["icc_profile"] == icc


def test_copyright_is_kept_when_asked(stripped, exiftool: ExifTool) -> None:
    path = SAMPLES / "exif-samples" / "jpg" / "Pentax_K10D.jpg"
    before = exiftool.extract(path.read_bytes(), "jpg")["EXIF:IFD0:Copyright"]
    kept = stripped(path, frozenset({"copyright"}))
    tags = exiftool.extract(kept.data, "jpg")
    assert tags["EXIF:IFD0:Copyright"] == before
    assert "EXIF:IFD0:Orientation" not in tags and not any(k.startswith("ICC_Profile") for k in tags)
    assert kept.kept == ["Copyright"]
    assert "Copyright" in stripped(path).removed


def test_adobe_app14_and_jfif_stay(stripped) -> None:
    out = io.BytesIO()
    Image.new("CMYK", (16, 16), (10, 200, 30, 5)).save(out, "JPEG")
    cmyk = out.getvalue()
    assert b"Adobe" in cmyk
    cleaned = strip_jpeg(cmyk, frozenset()).data
    assert cleaned.count(b"\xff\xee\x00\x0eAdobe") == 1
    assert pixels(Image.open(io.BytesIO(cleaned))) == pixels(Image.open(io.BytesIO(cmyk)))
    assert stripped(SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg").data[2:11] == b"\xff\xe0\x00\x10JFIF\x00"


def test_removed_names_only_what_was_there(stripped) -> None:
    assert stripped(SAMPLES / "exiftool-formats" / "Writer.jpg").removed == []
    gps = stripped(SAMPLES / "exif-samples" / "jpg" / "gps" / "DSCN0012.jpg")
    assert {"EXIF", "GPS", "MakerNotes", "Thumbnail", "XMP"} <= set(gps.removed)
    assert {"IPTC", "Photoshop"} <= set(stripped(SAMPLES / "exif-samples" / "jpg" / "xmp" / "BlueSquare.jpg").removed)


def test_trailers_after_eoi_are_removed() -> None:
    data = (SAMPLES / "exiftool-formats" / "FotoStation.jpg").read_bytes()
    result = strip_jpeg(data, KEEP_DEFAULT)
    assert result.data.endswith(b"\xff\xd9") and "Trailer" in result.removed


def test_metadata_between_progressive_scans_is_removed() -> None:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    second_scan = data.index(b"\xff\xda", _jpeg_scan_start(data) + 2)
    exif = Image.Exif()
    exif[0x0112] = 6
    tiff = exif.tobytes()[6:]
    hidden = b"\xff\xfe\x00\x08secret" + b"\xff\xe1" + struct.pack(">H", 8 + len(tiff)) + b"Exif\x00\x00" + tiff
    result = strip_jpeg(data[:second_scan] + hidden + data[second_scan:], KEEP_DEFAULT)
    assert result.data == data
    assert result.removed == ["Comment", "EXIF"] and result.kept == []


# --- helpers --------------------------------------------------------------------------------------


def pixels(im: Image.Image) -> tuple[str, tuple[int, int], bytes]:
    return im.mode, im.size, im.tobytes()


def image_frames(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    """Every frame; for JPEG only the primary image, since an MPO's further images are removed."""
    with open_image(data) as im:
        if im.format in ("JPEG", "MPO"):
            return [pixels(im)]
        return [pixels(frame) for frame in ImageSequence.Iterator(im)]


def png_idat(data: bytes) -> bytes:
    pos, parts = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            parts.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return b"".join(parts)


def media_data(data: bytes) -> list[bytes]:
    """The payloads of the top-level mdat boxes (coded audio and video)."""
    pos, payloads = 0, []
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        size = size or len(data) - pos
        if kind == b"mdat":
            payloads.append(data[pos + header : pos + size])
        pos += size
    return payloads


def video_frames(data: bytes) -> list[bytes] | None:
    """Decoded frames, or None when FFmpeg cannot decode the file (ExifTool's header-only stubs)."""
    try:
        with av.open(io.BytesIO(data)) as container:
            return [frame.to_ndarray().tobytes() for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError):
        return None

"""Metadata stripping on every sample: lossless, nothing left for exiftool to find, keep honoured, fuzzed."""

from __future__ import annotations

import io
import shutil
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps, ImageSequence, PngImagePlugin

from processors.exiftool import ExifTool
from processors.media_type import _jpeg_scan_start, sniff
from processors.strip import (
    KEEP_DEFAULT,
    StripResult,
    metadata_groups,
    strip_jpeg,
    strip_metadata,
    strip_png,
)
from schemas.errors import ExtractFailed, MedialaneError
from schemas.settings import Settings

pillow_heif.register_heif_opener()

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
ALL_SAMPLES = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix != ".md")
STRIPPED_FORMATS = {"jpg", "png", "webp", "tif", "heic", "heif", "gif", "mp4", "mov"}
# Broken scan data (an FF 9F "marker" 229 KB in), and a Phase One RAW whose second IFD is the image.
REFUSED = {"corrupted.jpg": "corrupt_media", "PhaseOne.iiq": "strip_unsupported_format"}
TRUNCATED_STUBS = {"Pentax.avi"}
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
    elif path.name in TRUNCATED_STUBS:
        assert outcome == "corrupt_media"
    elif media.family == "other":
        assert outcome == "unsupported_media"
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


# --- PNG, WebP, GIF, MP4 --------------------------------------------------------------------------


def png_with_metadata(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x8298] = orientation, "Camera", "(c) someone"
    exif.get_ifd(0x8825)[2] = (1.0, 2.0, 3.0)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a comment")
    info.add_text("Copyright", "(c) someone")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>", zip=True)
    info.add_text("Author", "me", zip=True)
    out = io.BytesIO()
    im = Image.new("RGB", (24, 16))
    im.putdata([(x * 10, y * 15, 99) for y in range(16) for x in range(24)])
    icc = (SAMPLES / "exiftool-formats" / "ICC_Profile.icc").read_bytes()
    im.save(out, "PNG", pnginfo=info, exif=exif.tobytes(), icc_profile=icc)
    return insert_png_chunk(out.getvalue(), b"tIME", b"\x07\xe8\x01\x02\x03\x04\x05")


def insert_png_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return png[:33] + chunk + png[33:]


def test_png_keeps_rendering_chunks_icc_and_a_minimal_orientation(exiftool: ExifTool) -> None:
    png = png_with_metadata()
    result = strip_png(png, KEEP_DEFAULT)
    assert result.removed == ["Comment", "Copyright", "EXIF", "GPS", "ModifyDate", "Text", "XMP"]
    assert result.kept == ["ICC_Profile", "Orientation"]
    cleaned = Image.open(io.BytesIO(result.data))
    assert dict(cleaned.getexif()) == {0x0112: 6}
    assert cleaned.info["icc_profile"] == Image.open(io.BytesIO(png)).info["icc_profile"]
    assert png_idat(result.data) == png_idat(png)
    assert image_frames(result.data) == image_frames(png)
    assert_nothing_left(exiftool.extract(result.data, "png"), KEEP_DEFAULT)


def test_png_copyright_text_is_kept_when_asked(exiftool: ExifTool) -> None:
    result = strip_png(png_with_metadata(), frozenset({"copyright"}))
    assert result.kept == ["Copyright"]
    tags = exiftool.extract(result.data, "png")
    assert tags["PNG:Copyright"]["val"] == "(c) someone" and tags["EXIF:IFD0:Copyright"]["val"] == "(c) someone"
    assert_nothing_left(tags, frozenset({"copyright"}))


def test_apng_frames_stay() -> None:
    frames = [Image.new("RGBA", (8, 8), (i * 60, 0, 0, 255)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=100)
    png = insert_png_chunk(out.getvalue(), b"tEXt", b"Comment\x00hello")
    result = strip_png(png, KEEP_DEFAULT)
    assert result.data == out.getvalue() and result.removed == ["Comment"]


def test_png_refuses_an_unknown_critical_chunk_and_a_bad_crc() -> None:
    png = png_with_metadata()
    with pytest.raises(MedialaneError) as err:
        strip_png(insert_png_chunk(png, b"ZZZZ", b"?"), KEEP_DEFAULT)
    assert err.value.code == "strip_unsupported_format"
    idat = png.index(b"IDAT")
    with pytest.raises(MedialaneError) as err:
        strip_png(png[: idat + 6] + bytes([png[idat + 6] ^ 1]) + png[idat + 7 :], KEEP_DEFAULT)
    assert err.value.code == "corrupt_media"


def test_webp(exiftool: ExifTool) -> None:
    source = Image.open(SAMPLES / "exif-samples" / "jpg" / "orientation" / "landscape_6.jpg")
    out = io.BytesIO()
    source.save(out, "WEBP", exif=source.info["exif"], icc_profile=source.info["icc_profile"], xmp=b"<x/>")
    webp = out.getvalue()
    result = strip_metadata(webp, KEEP_DEFAULT, exiftool)
    assert result.kept == ["ICC_Profile", "Orientation"] and {"EXIF", "XMP"} <= set(result.removed)
    cleaned = Image.open(io.BytesIO(result.data))
    assert dict(cleaned.getexif()) == {0x0112: 6} and cleaned.info["icc_profile"] == source.info["icc_profile"]
    assert image_frames(result.data) == image_frames(webp)
    assert_nothing_left(exiftool.extract(result.data, "webp"), KEEP_DEFAULT)
    bare = strip_metadata(webp, frozenset(), exiftool)
    assert bare.kept == [] and image_frames(bare.data) == image_frames(webp)
    assert_nothing_left(exiftool.extract(bare.data, "webp"), frozenset())


def test_gif(exiftool: ExifTool) -> None:
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50)
    gif = exiftool.write(out.getvalue(), "gif", "-Comment=where I live", "-XMP:Creator=me", "-XMP:City=Paris")
    assert {"Comment", "XMP"} <= metadata_groups(exiftool.extract(gif, "gif"))
    result = strip_metadata(gif, KEEP_DEFAULT, exiftool)
    assert {"Comment", "XMP"} <= set(result.removed)
    assert image_frames(result.data) == image_frames(gif)
    assert_nothing_left(exiftool.extract(result.data, "gif"), KEEP_DEFAULT)


def test_mp4_loses_location_and_xmp(exiftool: ExifTool, tmp_path: Path) -> None:
    mp4 = tmp_path / "clip.mp4"
    with av.open(str(mp4), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tagged = exiftool.write(
        mp4.read_bytes(), "mp4", "-XMP:GPSLatitude=48.85", "-XMP:GPSLongitude=2.35", "-Keys:GPSCoordinates=48.85 2.35",
        "-UserData:GPSCoordinates=48.85 2.35", "-ItemList:Title=holiday", "-XMP:Creator=me",
    )  # fmt: skip
    assert {"GPS", "XMP"} <= metadata_groups(exiftool.extract(tagged, "mp4"))
    result = strip_metadata(tagged, KEEP_DEFAULT, exiftool)
    assert {"GPS", "XMP", "ItemList"} <= set(result.removed)
    assert media_data(result.data) == media_data(tagged)
    assert video_frames(result.data) == video_frames(tagged)
    assert_nothing_left(exiftool.extract(result.data, "mp4"), KEEP_DEFAULT)


# --- broken input, parameters, the exiftool writer ------------------------------------------------


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_jpeg_is_corrupt(cut: float, exiftool: ExifTool) -> None:
    data = (SAMPLES / "exif-samples" / "jpg" / "gps" / "DSCN0012.jpg").read_bytes()
    with pytest.raises(MedialaneError) as err:
        strip_metadata(data[: int(len(data) * cut)], KEEP_DEFAULT, exiftool)
    assert err.value.code == "corrupt_media"


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe1\x00", b"\xff\xd8\xff\xe1\xff\xff" + b"x" * 10, b"\xff\xd8\xff\xe1\x00\x01\xff\xd9"],
    ids=["header", "long-segment", "short-length"],
)
def test_broken_jpeg_segments_are_corrupt(data: bytes) -> None:
    with pytest.raises(MedialaneError) as err:
        strip_jpeg(data, KEEP_DEFAULT)
    assert err.value.code == "corrupt_media"


def test_truncated_png_is_corrupt(exiftool: ExifTool) -> None:
    png = png_with_metadata()
    for data in (png[:-12], png[: len(png) // 2]):
        with pytest.raises(MedialaneError) as err:
            strip_png(data, KEEP_DEFAULT)
        assert err.value.code == "corrupt_media"



def test_exiftool_write(exiftool: ExifTool) -> None:
    data = (SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg").read_bytes()
    written = exiftool.write(data, "jpg", "-Artist=someone")
    assert exiftool.extract(written, "jpg")["EXIF:IFD0:Artist"]["val"] == "someone"
    assert list(Path(exiftool._tmpdir).iterdir()) == []


def test_exiftool_write_refuses_line_breaks_and_reports_unwritable_files(exiftool: ExifTool) -> None:
    data = (SAMPLES / "exif-samples" / "jpg" / "Canon_40D.jpg").read_bytes()
    with pytest.raises(ValueError):
        exiftool.write(data, "jpg", "-Artist=x\n-execute")
    with pytest.raises(ExtractFailed) as err:
        exiftool.write((SAMPLES / "exiftool-formats" / "RIFF.webp").read_bytes(), "webp", "-all=")
    assert err.value.code == "write_failed"
    assert list(Path(exiftool._tmpdir).iterdir()) == []
    assert exiftool.write(data, "jpg", "-all=").startswith(b"\xff\xd8")


def test_exiftool_write_times_out_and_cleans_up(tmp_path: Path) -> None:
    hangs_on_every_command = (
        "while read -r line; do\n"
        '  case "$line" in -execute*) sleep 60;; esac\n'
        "done\n"
    )
    script = tmp_path / "exiftool"
    script.write_text("#!/bin/sh\n" + hangs_on_every_command)
    script.chmod(0o755)
    with ExifTool(str(script), timeout=1.0) as tool:
        start = time.monotonic()
        with pytest.raises(ExtractFailed) as err:
            tool.write(b"\xff\xd8\xff\xd9", "jpg", "-all=")
        assert err.value.code == "extract_timeout" and time.monotonic() - start < 5
        assert list(Path(tool._tmpdir).iterdir()) == []


# --- fuzzing --------------------------------------------------------------------------------------


def small_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112], exif[0x8298] = 3, "(c)"
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (1, 2, 3)).save(out, "JPEG", exif=exif.tobytes(), icc_profile=b"icc" * 10, comment=b"c")
    return out.getvalue()


mutations = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8)


def mutate(seed: bytes, changes: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed[: max(cut, 2)])
    for position, value in changes:
        data[position % len(data)] = value
    return bytes(data)


@pytest.mark.parametrize("strip", [strip_jpeg, strip_png], ids=["jpeg", "png"])
def test_fuzzed_input_gives_a_result_or_a_typed_error(strip) -> None:
    seed = small_jpeg() if strip is strip_jpeg else png_with_metadata()

    @settings(max_examples=400, deadline=200, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(changes=mutations, cut=st.integers(0, len(seed)))
    def check(changes: list[tuple[int, int]], cut: int) -> None:
        for keep in (KEEP_DEFAULT, frozenset({"copyright"})):
            try:
                result = strip(mutate(seed, changes, cut), keep)
            except MedialaneError:
                continue
            assert isinstance(result.data, bytes) and len(result.data) <= cut + 64

    check()


# --- helpers --------------------------------------------------------------------------------------


def pixels(im: Image.Image) -> tuple[str, tuple[int, int], bytes]:
    return im.mode, im.size, im.tobytes()


def image_frames(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    """Every frame; for JPEG only the primary image, since an MPO's further images are removed."""
    with Image.open(io.BytesIO(data)) as im:
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
